"""An independent model of what an allow-list admits, and hypothesis strategies built on it.

Written from DESIGN §4.4 and the URL Standard's origin serialisation, not from
addon/core/origins.py: candidate Origin values are *built* from parts (scheme, host
labels, port, and optional decorations such as userinfo or a path), so the model
knows what each value is without parsing it back. A rule's plain meaning is then
a few lines of set logic (`admits`).

Vocabulary:
- canonical origin: (scheme, host, port), scheme and host lower-case, port filled
  in from the scheme's default;
- serialised: the value is `scheme://host[:port]` and nothing else (DESIGN §4.4
  compares after lower-casing and dropping default ports, so case and an explicit
  default port do not make a value unserialised);
- may_refuse: the value is a serialised origin, but an unusual one (a 64+ character
  label, port 0, a trailing dot) that the gateway may refuse without being wrong.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
SCHEMES = tuple(DEFAULT_PORTS)
Canon = tuple[str, str, int]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_LABEL_CHARS = _LETTERS + "0123456789"


@dataclass(frozen=True)
class Candidate:
    """An Origin header value and what it is."""

    value: str
    origin: Canon | None  # the canonical origin if the value is serialised, else None
    how: str  # how it was built, for failure messages
    may_refuse: bool = False


@dataclass(frozen=True)
class Meaning:
    """The plain meaning of one allow-list entry."""

    kind: str  # "any" | "exact" | "wildcard" | "regex"
    origin: Canon | None = None  # exact; wildcard: (scheme, suffix, port)
    pattern: str = ""


@dataclass(frozen=True)
class AllowList:
    """An allow_origin list as written in a policy, with the meaning of each entry."""

    entries: tuple[str, ...]
    regexes: tuple[str, ...]
    allow_null: bool
    meanings: tuple[Meaning, ...]

    def admits(self, cand: Candidate) -> bool:
        """Does the list's plain meaning admit this Origin value?"""
        if cand.value == "null":
            return self.allow_null
        if cand.origin is None:
            return False
        return any(_admits(m, cand) for m in self.meanings)


def _admits(meaning: Meaning, cand: Candidate) -> bool:
    assert cand.origin is not None
    scheme, host, port = cand.origin
    if meaning.kind == "any":
        return True
    if meaning.kind == "regex":
        return re.fullmatch(meaning.pattern, cand.value) is not None
    assert meaning.origin is not None
    if meaning.kind == "exact":
        return cand.origin == meaning.origin
    rule_scheme, suffix, rule_port = meaning.origin
    # One or more whole labels before the suffix; an IP address is nobody's subdomain.
    return (
        scheme == rule_scheme
        and port == rule_port
        and host.endswith("." + suffix)
        and not is_ip(host)
    )


def is_ip(host: str) -> bool:
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def serialise(origin: Canon) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" if DEFAULT_PORTS.get(scheme) == port else f"{scheme}://{host}:{port}"


# -- building blocks (module-level strategies: building them per draw costs more than drawing) --

def _digits(n: int, alphabet: str) -> str:
    """n written in the given alphabet: one integer draw per label instead of one draw per character."""
    out = alphabet[n % len(alphabet)]
    while n := n // len(alphabet):
        out = alphabet[n % len(alphabet)] + out
    return out


_PLAIN_LABEL = st.one_of(st.integers(0, 36**3), st.integers(0, 36**10)).map(lambda n: _digits(n, _LABEL_CHARS))
LABEL = st.one_of(
    _PLAIN_LABEL,
    _PLAIN_LABEL,
    st.builds(lambda a, b: f"{a}-{b}", _PLAIN_LABEL, _PLAIN_LABEL),
    st.sampled_from(["xn--bcher-kva", "xn--mnchen-3ya", "xn--fiqs8s", "xn--80ak6aa92e"]),  # IDNs, as browsers send them
)
# Never numeric: a numeric last label makes the host an IPv4 address.
_TLD = st.integers(26, 26**6).map(lambda n: _digits(n, _LETTERS))
SUFFIX = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(LABEL, max_size=2), _TLD)
DOMAIN = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(LABEL, max_size=3), _TLD)
_IPV6 = st.builds(lambda n: f"[{ipaddress.IPv6Address(n).compressed}]", st.integers(0, 2**128 - 1))
_IPV4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
HOST = st.one_of(DOMAIN, DOMAIN, DOMAIN, _IPV4, _IPV6, st.just("localhost"))
PORT = st.integers(1, 65535)
_PORTS = st.one_of(st.none(), st.none(), PORT, st.sampled_from([80, 443, 8080, 5173]))
CANON: st.SearchStrategy[Canon] = st.builds(
    lambda scheme, h, port: (scheme, h, port if port is not None else DEFAULT_PORTS[scheme]),
    st.sampled_from(SCHEMES), HOST, _PORTS,
)
_SCHEME = st.sampled_from(SCHEMES)
_MAYBE_PORT = st.one_of(st.none(), PORT)
_THREE = st.integers(0, 2)
_ONE_IN_FIVE = st.integers(0, 4)
_ONE_IN_SIX = st.integers(0, 5)
_ONE_IN_TEN = st.integers(0, 9)
_ENTRY_COUNT = st.integers(1, 5)
_INDEX = st.integers(0, 2**16)
_CASE_MASK = st.one_of(st.just(0), st.integers(0, 2**64 - 1))  # bit i upper-cases character i (mod 64)
_EXTRA = _PLAIN_LABEL


def _pick(draw: st.DrawFn, options: Sequence[T]) -> T:
    """One of options, with a single cached integer draw (sampled_from over a fresh list builds a strategy)."""
    return options[draw(_INDEX) % len(options)]


def spell(draw: st.DrawFn, origin: Canon, how: str) -> Candidate:
    """A serialised origin as a client may spell it: any case, the default port explicit or not."""
    scheme, h, port = origin
    mask = draw(_CASE_MASK)
    if mask:
        scheme = "".join(c.upper() if mask >> (i % 64) & 1 else c for i, c in enumerate(scheme))
        h = "".join(c.upper() if mask >> ((i + 7) % 64) & 1 else c for i, c in enumerate(h))
    explicit = port != DEFAULT_PORTS.get(scheme.lower()) or draw(st.booleans())
    value = f"{scheme}://{h}:{port}" if explicit else f"{scheme}://{h}"
    return Candidate(value, origin, how)


# Ways to turn a serialised origin into something that is not one. Each takes the
# clean value and returns the spoiled value; none of them can yield a serialised origin.
DECORATIONS: dict[str, Callable[[str, str], str]] = {
    "userinfo": lambda v, x: v.replace("://", f"://{x}@", 1),
    "userinfo-pw": lambda v, x: v.replace("://", f"://{x}:pw@", 1),
    "suffix-as-userinfo": lambda v, x: v + f"@{x}.evil.net",
    "path": lambda v, x: v + "/" + x,
    "slash": lambda v, x: v + "/",
    "query": lambda v, x: v + "?" + x,
    "fragment": lambda v, x: v + "#" + x,
    "fragment-dot": lambda v, x: v.replace("://", "://evil.net#.", 1),
    "path-dot": lambda v, x: v.replace("://", "://evil.net/.", 1),
    "query-dot": lambda v, x: v.replace("://", "://evil.net?.", 1),
    "backslash": lambda v, x: v.replace("://", "://evil.net\\.", 1),
    "percent-dot": lambda v, x: v.replace(".", "%2e", 1) if "." in v.split("://", 1)[1] else v + "%2e",
    "percent-host": lambda v, x: v.replace("://", "://%61", 1),
    "leading-space": lambda v, x: " " + v,
    "trailing-space": lambda v, x: v + " ",
    "tab": lambda v, x: v + "\t",
    "inner-space": lambda v, x: v.replace("://", ":// ", 1),
    "cr": lambda v, x: v + "\r",
    "lf": lambda v, x: v + "\n",
    "crlf-header": lambda v, x: v + "\r\nSet-Cookie: a=b",
    "obs-fold": lambda v, x: v + "\r\n " + x,
    "nul": lambda v, x: v + "\x00",
    "nul-inside": lambda v, x: v.replace("://", "://\x00", 1),
    "no-slashes": lambda v, x: v.replace("://", ":", 1),
    "one-slash": lambda v, x: v.replace("://", ":/", 1),
    "three-slashes": lambda v, x: v.replace("://", ":///", 1),
    "empty-port": lambda v, x: v + ":" if v.count(":") == 1 else v + "#",
    "port-zero-padded": lambda v, x: v + ":0443" if v.count(":") == 1 else v + "/",
    "port-too-big": lambda v, x: v + ":65536" if v.count(":") == 1 else v + "?",
    "port-plus": lambda v, x: v + ":+443" if v.count(":") == 1 else v + "#x",
    "port-junk": lambda v, x: v + ":443x" if v.count(":") == 1 else v + "x/",
    "two-origins": lambda v, x: f"{v} https://{x}.example.com",
    "comma-list": lambda v, x: f"{v}, https://{x}.example.com",
    "unicode-host": lambda v, x: v.replace("://", "://bücher.", 1),
    "fullwidth-dot": lambda v, x: v.replace(".", "\uff0e", 1) if "." in v else v + "\uff0e",
    "kelvin-sign": lambda v, x: v.replace("k", "\u212a", 1) if "k" in v else v + "\u212a",
    "dotless-i": lambda v, x: v + "\u0131",
    "latin1-byte": lambda v, x: v + "\xff",
    "surrogate": lambda v, x: v + "\udcff",
    "scheme-missing": lambda v, x: v.split("://", 1)[-1],
    "scheme-empty": lambda v, x: "://" + v.split("://", 1)[-1],
    "scheme-digit": lambda v, x: "1" + v,
    "empty-label": lambda v, x: v.replace("://", "://.", 1),
    "double-dot": lambda v, x: v.replace(".", "..", 1) if "." in v.split("://", 1)[-1] else v + "..",
    "bad-ipv6": lambda v, x: v.split("://", 1)[0] + "://[" + x[:3] + ":::]",
    "null-upper": lambda v, x: "NULL",
    "null-padded": lambda v, x: " null",
    "star": lambda v, x: "*",
    "empty": lambda v, x: "",
    "huge": lambda v, x: v + "/" + "a" * 70000,
}


# Hosts no browser serialises: IP literals in a form the URL Standard would have rewritten, or invalid.
_BAD_HOSTS = {
    "ipv6-empty": "[]", "ipv6-colon": "[:]", "ipv6-dots": "[...]", "ipv6-number": "[1]", "ipv6-unbracketed": "::1",
    "ipv4-octet-256": "1.2.3.256", "ipv4-leading-zero": "127.0.0.01", "ipv4-short": "127.1",
    "ipv4-hex": "0x7f.0.0.1", "ipv4-number": "2130706433", "ipv4-five-parts": "1.2.3.4.5", "hex-last-label": "a.0x1f",
}


def _with_host(host: str) -> Callable[[str, str], str]:
    return lambda v, x: v.split("://", 1)[0] + "://" + host


DECORATIONS.update({name: _with_host(host) for name, host in _BAD_HOSTS.items()})
_DECORATION_NAMES = st.sampled_from(sorted(DECORATIONS))
_UNUSUAL = st.sampled_from(["long-label", "port-0", "trailing-dot", "leading-hyphen", "long-host"])
_LONG_LABEL = st.integers(64, 300)
_MANY_LABELS = st.integers(33, 40)  # 63-character labels: a host past the 2048-character cap


def spoil(draw: st.DrawFn, base: Candidate) -> Candidate:
    """base spoiled by one decoration: never a serialised origin."""
    name = draw(_DECORATION_NAMES)
    value = DECORATIONS[name](base.value, draw(_EXTRA))
    return Candidate(value, None, f"{base.how} + {name}")


def odd(draw: st.DrawFn, base: Canon) -> Candidate:
    """Serialised, but odd enough that refusing it is fine: long labels, port 0, a trailing dot."""
    scheme, h, port = base
    kind = draw(_UNUSUAL) if not is_ip(h) else "port-0"
    if kind == "long-label":
        h = "a" * draw(_LONG_LABEL) + "." + h
    elif kind == "long-host":
        h = ".".join(["b" * 63] * draw(_MANY_LABELS)) + "." + h
    elif kind == "trailing-dot":
        h += "."
    elif kind == "leading-hyphen":
        h = "-x." + h
    else:
        port = 0
    origin = (scheme, h, port)
    return Candidate(serialise(origin), origin, f"unusual {kind}", may_refuse=True)


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    """Any origin value: a clean spelling, a spoiled one, or an odd one."""
    base = spell(draw, draw(CANON), "clean")
    kind = draw(_THREE)
    return base if kind == 0 else spoil(draw, base) if kind == 1 else odd(draw, draw(CANON))


# -- allow-lists -------------------------------------------------------------------------------

def _exact(draw: st.DrawFn) -> tuple[str, Meaning]:
    origin = draw(CANON)
    text = spell(draw, origin, "rule").value
    if draw(_ONE_IN_TEN) == 0:
        text += "/"  # tolerated (the linter warns): browsers never send the slash
    return text, Meaning("exact", origin)


def _wildcard(draw: st.DrawFn) -> tuple[str, Meaning]:
    scheme = draw(_SCHEME)
    suffix = draw(SUFFIX)
    port = draw(_MAYBE_PORT)
    text = f"{scheme}://*.{suffix}" + (f":{port}" if port is not None else "")
    return text, Meaning("wildcard", (scheme, suffix, port if port is not None else DEFAULT_PORTS[scheme]))


def _regex(draw: st.DrawFn) -> tuple[str, Meaning]:
    origin = draw(CANON)
    scheme, h, port = origin
    text = serialise(origin)
    port_part = f":{port}" if port != DEFAULT_PORTS[scheme] else ""
    pattern = _pick(draw, [
        re.escape(text),
        "^" + re.escape(text) + "$",
        f"{scheme}://[a-z0-9-]+\\.{re.escape(h)}{port_part}",
        f"{scheme}://.*",  # over-broad on purpose: the regex alone must never admit a non-origin
        ".*",
        f"(?i){re.escape(text)}",
    ])
    return pattern, Meaning("regex", pattern=pattern)


_MAKERS = {"exact": _exact, "wildcard": _wildcard, "regex": _regex}


@st.composite
def allow_lists(draw: st.DrawFn, kinds: tuple[str, ...] = ("exact", "wildcard", "regex", "any")) -> AllowList:
    """An allow_origin list (plus allow_origin_regex and allow_null_origin) and its plain meaning."""
    makers = [_MAKERS[k] for k in kinds if k in _MAKERS]
    entries = [_pick(draw, makers)(draw) for _ in range(draw(_ENTRY_COUNT))]
    texts = tuple(t for t, m in entries if m.kind != "regex")
    regexes = tuple(t for t, m in entries if m.kind == "regex")
    meanings = tuple(m for _, m in entries)
    if "any" in kinds and draw(_ONE_IN_SIX) == 0:
        texts += ("*",)
        meanings += (Meaning("any"),)
    if not texts:
        # allow_origin needs one entry; an origin nothing generates leaves the list's meaning alone.
        texts = ("https://allow-list-placeholder.invalid",)
        meanings += (Meaning("exact", ("https", "allow-list-placeholder.invalid", 443)),)
    return AllowList(texts, regexes, draw(st.booleans()), meanings)


def _bases(allow: AllowList) -> list[Canon]:
    """Origins the list is about: its exact origins, a subdomain and the apex of each wildcard."""
    out: list[Canon] = []
    for m in allow.meanings:
        if m.kind == "exact" and m.origin:
            out.append(m.origin)
        elif m.kind == "wildcard" and m.origin:
            scheme, suffix, port = m.origin
            out += [(scheme, "www." + suffix, port), m.origin]
    return out


_MOVES = st.sampled_from([
    "same", "same", "other-port", "other-scheme", "sub", "apex-of", "sibling", "suffix-in-host",
    "label-glued", "unusual", "decorated", "decorated", "null", "fresh",
])


@st.composite
def near_misses(draw: st.DrawFn, allow: AllowList) -> Candidate:
    """A candidate built around the list's own entries: hits, near misses and spoiled hits."""
    bases = _bases(allow)
    base = _pick(draw, bases) if bases and draw(_ONE_IN_FIVE) else draw(CANON)
    scheme, h, port = base
    move = draw(_MOVES)
    if move == "same":
        return spell(draw, base, "same")
    if move == "other-port":
        return spell(draw, (scheme, h, port % 65535 + 1), "other-port")
    if move == "other-scheme":
        return spell(draw, (_pick(draw, [s for s in SCHEMES if s != scheme]), h, port), "other-scheme")
    if move == "unusual":
        return odd(draw, base)
    if move == "decorated":
        return spoil(draw, spell(draw, base, "base"))
    if move == "null":
        return Candidate("null", None, "null")
    if move == "fresh" or is_ip(h):
        return spell(draw, draw(CANON), "fresh")
    label = draw(LABEL)
    host = {
        "sub": f"{label}.{h}",
        "apex-of": h.split(".", 1)[1] if "." in h else h,
        "sibling": "bad" + h,
        "suffix-in-host": f"{h}.{label}.net",
        "label-glued": f"{label}-{h}",
    }[move]
    return spell(draw, (scheme, host, port), move)
