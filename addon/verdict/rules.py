"""Browser simulation: would Chromium, Firefox and WebKit accept this exchange, and if not, why?

This module runs the Fetch Standard's CORS check and CORS-preflight fetch (https://fetch.spec.whatwg.org)
once, the way Chromium implements them, on an exchange as the proxy saw it, and answers `ok` or the first
failing rule. Where Firefox or WebKit differ (chromium.py, firefox.py and webkit.py say how), the verdict
is derived from that judgement, not judged again. Each verdict words itself in its engine's language
only when asked (`Verdict.message`, `console_text`), so a flow nobody reads costs no text.

It is the judge of what cors.py produces, so it shares none of its logic (only the field-list syntax of
fields.py) and imports nothing from mitmproxy.

Where the wording and the order of the checks come from (Chromium source):
- third_party/blink/renderer/platform/loader/cors/cors_error_string.cc: every message text;
- services/network/public/cpp/cors/cors.cc: CheckAccess (the CORS check), IsCorsSafelistedHeader,
  CorsUnsafeRequestHeaderNames;
- services/network/cors/preflight_controller.cc: a redirect fails first, then the CORS check, then the
  status, then Private Network Access, then parsing and checking the allow lists;
- services/network/cors/preflight_result.cc: parsing Access-Control-Allow-Methods/-Headers, the method
  and header checks;
- net/http/http_util.cc: forbidden request-header names.
All of it but Private Network Access was checked against Chromium 156.0.8078.108 (headless, Debian
bookworm package): the messages below are the ones it printed.

Header text is taken as bytes decoded one byte per character (latin-1), as gateway.py hands it over;
characters above U+00FF are taken as UTF-8.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from addon.core.fields import is_token, split_list
from addon.verdict import chromium, firefox, webkit
from addon.verdict.text import header_bytes as _bytes

Headers = Sequence[tuple[str, str]]

# Chromium 156.0.8078.108: fetch() with `Authorization: Bearer x` from http://127.0.0.1:A to
# http://127.0.0.1:B, preflight answered 204 with `Access-Control-Allow-Origin: *` and
# `Access-Control-Allow-Headers: *`: the preflight carried `Access-Control-Request-Headers: authorization`,
# the actual GET followed, fetch resolved with 200 and the console stayed silent. The Fetch Standard's
# rule (authorization is a "CORS non-wildcard request-header name") sits behind the feature
# CorsNonWildcardRequestHeadersSupport, off by default; with --enable-features=CorsNonWildcardRequestHeadersSupport
# the same fetch is blocked: "Access to fetch at '...' from origin '...' has been blocked by CORS policy:
# Request header field authorization is not allowed by Access-Control-Allow-Headers in preflight response."
CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED = False

AUTHORIZATION_NOTE = (
    "Access-Control-Allow-Headers: * never covers Authorization under the Fetch Standard (list it by name); "
    + (
        "this Chromium enforces that"
        if CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED
        else "Chromium 156 still lets it pass (feature CorsNonWildcardRequestHeadersSupport is off by default), "
        "browsers that follow the standard block it"
    )
)
PRIVATE_NETWORK_NOTE = (
    "Private Network Access preflight judged as the Chromium releases that enforced it; newer Chromium "
    "replaced it with Local Network Access, a permission prompt no response header can satisfy"
)

ENGINES = ("chromium", "firefox", "webkit")
_WORDING = {"chromium": chromium, "firefox": firefox, "webkit": webkit}
NAMES = {engine: module.NAME for engine, module in _WORDING.items()}
"""The engines by the names users know them by: Chrome, Firefox, Safari."""
_INDEX = {engine: i for i, engine in enumerate(ENGINES)}

ACAO = "access-control-allow-origin"
ACAC = "access-control-allow-credentials"
ACAM = "access-control-allow-methods"
ACAH = "access-control-allow-headers"
ACEH = "access-control-expose-headers"
ACAPN = "access-control-allow-private-network"
ACMA = "access-control-max-age"

# Fetch "normalize": only these are upper-cased by browsers; `patch` stays `patch`.
_NORMALIZED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
_SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})

# net::IsRedirectResponseCode; a 3xx without a Location is no redirect, just not an ok status.
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_SAFELISTED_RESPONSE_HEADERS = frozenset(
    {"cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"}
)
_NEVER_EXPOSED = frozenset({"set-cookie", "set-cookie2"})

# net::HttpUtil::IsSafeHeader: names a page cannot set (the browser may), so never in a preflight's list.
_FORBIDDEN_REQUEST_HEADERS = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers", "access-control-request-method",
        "access-control-request-private-network", "connection", "content-length", "cookie", "cookie2", "date",
        "dnt", "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "via",
    }
)  # fmt: skip
_FORBIDDEN_PREFIXES = ("proxy-", "sec-")
_METHOD_OVERRIDE_HEADERS = frozenset({"x-http-method", "x-http-method-override", "x-method-override"})
_FORBIDDEN_METHODS = frozenset({"connect", "trace", "track"})

_SAFELIST_VALUE_MAX = 128
_SAFELIST_TOTAL_MAX = 1024
_SAFELISTED_MIME_ESSENCES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
# Fetch "CORS-unsafe request-header byte".
_UNSAFE_BYTES = frozenset([*range(0x00, 0x09), *range(0x0A, 0x20), *b'"():<>?@[\\]{}', 0x7F])
_LANGUAGE_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz *,-.;=")
_DIGITS = frozenset("0123456789")
_HTTP_WHITESPACE = "\t\n\r "
# Client hints Chromium safelists beyond the standard (cors.cc), with the value each must have.
_CHROMIUM_DECIMAL_HINTS = frozenset({"device-memory", "dpr", "downlink"})
_CHROMIUM_INTEGER_HINTS = frozenset({"width", "viewport-width", "rtt"})
_CHROMIUM_ECT_VALUES = frozenset({"slow-2g", "2g", "3g", "4g"})

_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_FORBIDDEN_HOST_CHARS = frozenset([*map(chr, range(0x21)), "\x7f", *"#/:<>?@[\\]^|"])
_HEX = frozenset("0123456789abcdefABCDEF")
_IPV6_CHARS = _HEX | {":", "."}
_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TO_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one engine concludes about one exchange in one credentials mode."""

    ok: bool
    rule: str
    """Stable short id of the failing rule, "ok" when nothing failed; engine-neutral where the engines agree."""
    hints: tuple[str, ...] = ()
    """What the message quotes (a header value, a method, a header name), as received."""
    notes: tuple[str, ...] = ()
    """Remarks that do not change the outcome here but may elsewhere (another engine, a later request)."""
    engine: str = "chromium"
    preflight: bool = False
    """Judged on a preflight response."""
    status: int = 0
    origin: str = ""

    @property
    def message(self) -> str:
        """The engine's words, built when asked: Chrome's text after "... has been blocked by CORS policy: "
        (without the initiator's tail), Firefox's reason, WebKit's console line; empty when ok."""
        return "" if self.ok else _WORDING[self.engine].message(self)


OK = Verdict(True, "ok")


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Both credentials modes of one flow, since a proxy cannot always tell which one the page used,
    for every engine."""

    kind: str
    """One of: preflight, actual, same-origin, no-origin, no-cors (navigations, <img> and the like may
    carry an Origin, but no CORS check applies to them)."""
    credentials: bool | None
    """True if the request shows credentials (a Cookie), None if it cannot be told (always for preflights)."""
    without_credentials: Verdict
    """Chromium's, as `engines[0]`."""
    with_credentials: Verdict
    engines: tuple[tuple[Verdict, Verdict], ...] = ()
    """(without, with credentials) per engine of ENGINES; empty: every engine as Chromium."""
    origin: str = ""
    _shown: dict[tuple[str, ...], tuple[str, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """(summary, blocked) per choice of engines, built when first asked: a remembered diagnosis serves
    the same exchange again and again (diagnose_raw), and its line is the same each time."""

    @property
    def verdict(self) -> Verdict:
        """Chromium's verdict for the mode the request used; a default fetch() sends no credentials."""
        return self.with_credentials if self.credentials else self.without_credentials

    @property
    def blocked(self) -> bool:
        """Whether Chromium blocks it; `blocked_in` asks about other engines."""
        return not self.verdict.ok

    def modes(self, engine: str) -> tuple[Verdict, Verdict]:
        """One engine's verdicts, without and with credentials."""
        return self.engines[_INDEX[engine]] if self.engines else (self.without_credentials, self.with_credentials)

    def verdict_in(self, engine: str) -> Verdict:
        return self.modes(engine)[1 if self.credentials else 0]

    def blocked_in(self, engines: Sequence[str]) -> bool:
        """Whether any of these engines blocks it in the mode the request used."""
        return self._line(tuple(engines))[1]

    def summary(self, engines: Sequence[str] = ("chromium",)) -> str:
        """One line for these engines; both modes when the mode is unknown and they differ. Engines that
        agree read as one verdict; where they differ, it says which blocks and why."""
        return self._line(tuple(engines))[0]

    def told(self, engines: Sequence[str], url: str, status: int | None = None) -> str:
        """The blocked-flow line: each of these engines that blocks, in the words its console prints for a
        request to `url` (the URL the page fetched; Firefox quotes it) answered with `status` ("blocked in
        Chrome: ...; in Firefox: ... [key]; in Safari: ..."), then "ok in ..." for those that pass. Built
        each time it is asked, so only for what is logged or shown."""
        return self._both(tuple(engines), lambda chosen, verdicts: _tell(chosen, verdicts, url, status))

    def _line(self, engines: tuple[str, ...]) -> tuple[str, bool]:
        shown = self._shown.get(engines)
        if shown is None:
            mode = 1 if self.credentials else 0
            blocked = any(not self.modes(engine)[mode].ok for engine in engines)
            shown = self._shown[engines] = (self._both(engines, _describe), blocked)
        return shown

    def _both(self, engines: tuple[str, ...], describe: Callable[[tuple[str, ...], list[Verdict]], str]) -> str:
        """`describe` for the mode the request used, and for the credentialed one too where the mode is
        unknown and the two read differently."""
        mode = 1 if self.credentials else 0
        pairs = [self.modes(engine) for engine in engines]
        chosen = describe(engines, [pair[mode] for pair in pairs])
        if self.credentials is None:
            other = describe(engines, [pair[1] for pair in pairs])
            chosen = chosen if other == chosen else f"{chosen} (with credentials: {other})"
        return chosen


def _tell(engines: Sequence[str], verdicts: Sequence[Verdict], url: str, status: int | None) -> str:
    blocked = [(engine, v) for engine, v in zip(engines, verdicts) if not v.ok]
    if not blocked:
        return "ok"
    passing = [engine for engine, v in zip(engines, verdicts) if v.ok]
    told = "; ".join(f"in {NAMES[engine]}: {_in_words(engine, v, url, status)}" for engine, v in blocked)
    return f"blocked {told}" + (f"; ok in {engine_names(passing)}" if passing else "")


def _in_words(engine: str, v: Verdict, url: str, status: int | None) -> str:
    """What the engine's console prints: Chrome's text after "... has been blocked by CORS policy: " (its
    tail depends on the initiator, which a proxy cannot see), Firefox's message and key, WebKit's line."""
    if engine == "chromium":
        return v.message
    key = message_key(v, engine)
    text = console_text(v, engine=engine, url=url, status=status)
    return f"{text} [{key}]" if key else text


def _describe(engines: Sequence[str], verdicts: Sequence[Verdict]) -> str:
    blocked = [(engine, v) for engine, v in zip(engines, verdicts) if not v.ok]
    if not blocked:
        return "ok"
    if len(blocked) == len(verdicts):
        return f"blocked: {blocked[0][1].message}"
    passing = [engine for engine, v in zip(engines, verdicts) if v.ok]
    return "; ".join([*(f"blocked in {NAMES[engine]}: {v.message}" for engine, v in blocked),
                      f"ok in {engine_names(passing)}"])


_ALIASES = {"chrome": "chromium", "safari": "webkit"}


def parse_engines(value: str) -> tuple[str, ...]:
    """A comma-separated choice of engines ("chromium,webkit"; Chrome and Safari by those names too), in
    ENGINES order; ValueError when empty or unknown."""
    chosen = set()
    for item in value.split(","):
        name = item.strip().lower()
        if name:
            engine = _ALIASES.get(name, name)
            if engine not in ENGINES:
                raise ValueError(f"unknown browser engine {item.strip()!r}: choose from {', '.join(ENGINES)}")
            chosen.add(engine)
    if not chosen:
        raise ValueError(f"choose at least one browser engine of {', '.join(ENGINES)}")
    return tuple(engine for engine in ENGINES if engine in chosen)


def engine_names(engines: Sequence[str]) -> str:
    """"Chrome", "Chrome and Firefox", "Chrome, Firefox and Safari"."""
    names = [NAMES[engine] for engine in engines]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def console_text(
    verdict: Verdict, initiator: str = "fetch", engine: str | None = None, url: str = "", status: int | None = None
) -> str:
    """The console text of `engine` (default: the verdict's own, Chromium unless judged for another) for a
    request to `url` started by `initiator` ("fetch" or "xmlhttprequest"); "" when the console stays silent.

    chromium: the text after "... has been blocked by CORS policy: ", with the tail Chrome appends to some
    messages depending on the initiator. firefox: the console's whole errorMessage ("Cross-Origin Request
    Blocked: ... (Reason: ...). Status code: N."), or its warning on a verdict that passes with one. webkit:
    the line it writes ("Origin O is not allowed by Access-Control-Allow-Origin. Status code: N").
    `status` replaces the verdict's status where the text quotes it.
    """
    return _WORDING[engine or verdict.engine].console_text(verdict, initiator, url, status)


def message_key(verdict: Verdict, engine: str = "firefox") -> str:
    """Firefox's message key (the nsIScriptError category) for this verdict; "" if Firefox logs nothing,
    and for the engines that have no keys."""
    return firefox.message_key(verdict) if engine == "firefox" else ""


# -- request side ------------------------------------------------------------------------------------


def normalize_method(method: str) -> str:
    """Fetch's method normalisation: DELETE GET HEAD OPTIONS POST PUT are upper-cased, nothing else."""
    upper = _upper(method)
    return upper if upper in _NORMALIZED_METHODS else method


def needs_preflight(method: str, headers: Headers) -> bool:
    """Whether a page's request with this method and these headers makes the browser send a preflight."""
    return normalize_method(method) not in _SAFELISTED_METHODS or bool(unsafe_request_headers(headers))


def unsafe_request_headers(headers: Headers) -> list[str]:
    """Fetch's "CORS-unsafe request-header names" as Chromium computes them for
    Access-Control-Request-Headers: sorted, lower-cased, without duplicates.

    Forbidden names (Cookie, Sec-*, ...) are left out: a page cannot set them, the browser adds them.
    Fields of one name are combined as the browser holds them. Chromium also safelists a few client
    hints (DPR, Width, Save-Data, ...) that the standard does not.

    `headers` are the request's as the page made it (plus the Content-Type fetch() gives a body), not as
    it reaches the wire: Chromium's network stack adds fields below CORS that never count (Cache-Control
    and Pragma: no-cache for `cache: 'no-store'`), so a request seen by a proxy may name more.
    """
    unsafe: set[str] = set()
    safelisted: set[str] = set()
    total = 0
    for name, value in _combine(headers).items():
        if _is_forbidden_request_header(name, value):
            continue
        if _is_safelisted_request_header(name, value):
            safelisted.add(name)
            total += len(_bytes(value))
        else:
            unsafe.add(name)
    if total > _SAFELIST_TOTAL_MAX:
        unsafe |= safelisted
    return sorted(unsafe)


def _is_forbidden_request_header(name: str, value: str) -> bool:
    if name in _FORBIDDEN_REQUEST_HEADERS or name.startswith(_FORBIDDEN_PREFIXES):
        return True
    return name in _METHOD_OVERRIDE_HEADERS and any(
        _lower(method) in _FORBIDDEN_METHODS for method in split_list(value)
    )


def _is_safelisted_request_header(name: str, value: str) -> bool:
    """Fetch "CORS-safelisted request-header", plus Chromium's client hints (cors.cc)."""
    raw = _bytes(value)
    if len(raw) > _SAFELIST_VALUE_MAX:
        return False
    if name == "accept":
        return not _UNSAFE_BYTES.intersection(raw)
    if name in ("accept-language", "content-language"):
        return _LANGUAGE_BYTES.issuperset(raw)
    if name == "content-type":
        return not _UNSAFE_BYTES.intersection(raw) and _mime_essence(value) in _SAFELISTED_MIME_ESSENCES
    if name == "range":
        return _is_simple_range(value)
    if name in _CHROMIUM_DECIMAL_HINTS:
        whole, dot, fraction = value.partition(".")
        return _is_digits(whole) and (not dot or _is_digits(fraction))
    if name in _CHROMIUM_INTEGER_HINTS:
        return _is_digits(value)
    if name == "ect":
        return value in _CHROMIUM_ECT_VALUES
    if name == "save-data":
        return _lower(value) == "on"
    return name == "intervention"


def _mime_essence(value: str) -> str | None:
    """The WHATWG MIME type parser, as far as the essence: lower-cased type/subtype, or None."""
    value = value.strip(_HTTP_WHITESPACE)
    kind, slash, rest = value.partition("/")
    subtype = rest.partition(";")[0].rstrip(_HTTP_WHITESPACE)
    if not slash or not is_token(kind) or not is_token(subtype):
        return None
    return f"{kind}/{subtype}".lower()


def _is_simple_range(value: str) -> bool:
    """Fetch "simple range header value": `bytes=N-` or `bytes=N-M` with N <= M, nothing else."""
    if not value.startswith("bytes="):
        return False
    start, dash, end = value[6:].partition("-")
    if not dash or not _is_digits(start) or not (end == "" or _is_digits(end)):
        return False
    return end == "" or int(start) <= int(end)


# -- response side -----------------------------------------------------------------------------------


def check_actual(
    origin: str, status: int, response_headers: Headers, credentials: bool, *, engine: str = "chromium"
) -> Verdict:
    """The CORS check on a response to a cross-origin request (any status: errors are shared too), as
    `engine` makes it."""
    fields = _combine(response_headers)
    return _derive(_check_actual(origin, status, fields, credentials), engine, fields, _repeated_acao(response_headers))


def _check_actual(origin: str, status: int, fields: dict[str, str], credentials: bool) -> Verdict:
    notes: tuple[str, ...] = ()
    if status in _REDIRECT_STATUSES and fields.get("location"):
        notes = (
            "redirect: the browser follows Location only if this check passes, and a hop to yet another "
            "origin makes it send `Origin: null` next",
        )
    failure = _cors_check(origin, fields, credentials)
    if failure is not None:
        return Verdict(False, failure[0], failure[1:], notes, status=status, origin=origin)
    return Verdict(True, "ok", (), notes) if notes else OK


def check_preflight(
    origin: str,
    method: str,
    request_header_names: Sequence[str],
    status: int,
    response_headers: Headers,
    credentials: bool,
    private_network: bool = False,
    *,
    address_space: str = "local",
    engine: str = "chromium",
) -> Verdict:
    """The CORS-preflight fetch's checks on a preflight response, as `engine` makes them.

    `method` is the actual request's (Access-Control-Request-Method), `request_header_names` the names in
    Access-Control-Request-Headers, `credentials` the actual request's credentials mode. `private_network`
    and `address_space` are Chromium's Private Network Access ("local" was loopback, "private" RFC 1918 in
    Chromium's naming of that time); the other engines never sent such preflights.
    """
    fields = _combine(response_headers)
    judged = _check_preflight(origin, method, request_header_names, status, fields, credentials, private_network,
                              address_space)
    repeated = _repeated_acao(response_headers)
    return _derive(judged, engine, fields, repeated, method, request_header_names, credentials)


def _check_preflight(
    origin: str,
    method: str,
    request_header_names: Sequence[str],
    status: int,
    fields: dict[str, str],
    credentials: bool,
    private_network: bool,
    address_space: str,
) -> Verdict:
    """Chromium's order: a redirect fails first, then the CORS check, the status, Private Network Access,
    parsing and checking the allow lists."""
    if status in _REDIRECT_STATUSES and fields.get("location"):
        return Verdict(False, "preflight-redirect", (), (), preflight=True, status=status, origin=origin)
    failure = _cors_check(origin, fields, credentials)
    if failure is not None:
        return Verdict(False, failure[0], failure[1:], (), preflight=True, status=status, origin=origin)
    if not 200 <= status <= 299:
        return Verdict(False, "preflight-status", (), (), preflight=True, status=status, origin=origin)

    if private_network:
        notes = (PRIVATE_NETWORK_NOTE,)
        allow_private_network = fields.get(ACAPN)
        if allow_private_network is None:
            return Verdict(False, "pna-missing", (address_space,), notes, preflight=True, status=status, origin=origin)
        if allow_private_network != "true":
            hints = (address_space, allow_private_network)
            return Verdict(False, "pna-invalid", hints, notes, preflight=True, status=status, origin=origin)
    verdict = _check_lists(method, request_header_names, fields, credentials, CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED)
    if private_network:
        return Verdict(verdict.ok, verdict.rule, verdict.hints, (PRIVATE_NETWORK_NOTE, *verdict.notes), preflight=True)
    return verdict


def _check_lists(
    method: str, request_header_names: Sequence[str], fields: dict[str, str], credentials: bool,
    enforce_authorization: bool,
) -> Verdict:
    """Parsing Access-Control-Allow-Methods/-Headers and checking the method and the headers against them."""
    notes: list[str] = []

    def blocked(rule: str, *hints: str) -> Verdict:
        return Verdict(False, rule, hints, tuple(notes), preflight=True)

    methods = _allow_list(fields.get(ACAM))
    if methods is None:
        return blocked("acam-parse", fields.get(ACAM, ""))
    allowed_headers = _allow_list(fields.get(ACAH))
    if allowed_headers is None:
        return blocked("acah-parse", fields.get(ACAH, ""))

    method = normalize_method(method)
    if not (method in _SAFELISTED_METHODS or method in methods or (not credentials and "*" in methods)):
        if _upper(method) in {_upper(m) for m in methods}:
            notes.append(
                f"methods compare case-sensitively: {method} is not listed, only another spelling of it; "
                "browsers upper-case only DELETE, GET, HEAD, OPTIONS, POST and PUT"
            )
        return blocked("method-not-allowed", method)

    allowed = {_lower(name) for name in allowed_headers}
    names = sorted({_lower(name.strip(" \t")) for name in request_header_names} - {""})
    if not credentials and "*" in allowed:
        if "authorization" in names and "authorization" not in allowed:
            notes.append(AUTHORIZATION_NOTE)
            if enforce_authorization:
                return blocked("header-not-allowed", "authorization")
    else:
        for name in names:
            if name not in allowed:
                return blocked("header-not-allowed", name)
    return Verdict(True, "ok", (), tuple(notes), preflight=True)


# -- where the other engines differ ------------------------------------------------------------------

_ACAO_RULES = frozenset({"acao-multiple", "acao-invalid", "acao-mismatch"})
# What a preflight can fail on before its status is looked at, in Chromium's order.
_BEFORE_STATUS = _ACAO_RULES | {"preflight-redirect", "acao-missing", "acao-wildcard-credentials", "acac-not-true"}
_ENGINE_NOTES = {  # Chromium's note -> each engine's
    "firefox": {AUTHORIZATION_NOTE: firefox.AUTHORIZATION_NOTE, PRIVATE_NETWORK_NOTE: ""},
    "webkit": {AUTHORIZATION_NOTE: webkit.AUTHORIZATION_NOTE, PRIVATE_NETWORK_NOTE: ""},
}


def _derive(
    judged: Verdict, engine: str, fields: dict[str, str], repeated_acao: bool,
    method: str = "", request_header_names: Sequence[str] = (), credentials: bool = False,
) -> Verdict:
    """`judged` (Chromium's judgement) as `engine` concludes on the same exchange: the engine modules say
    where they differ; the rules are not run again, but for the allow lists of a preflight that failed
    on what only Chromium checks (Private Network Access, Authorization under *)."""
    module = _WORDING[engine]
    if engine == "chromium":
        return _with_cache_notes(judged, engine, fields)
    if judged.preflight and not judged.ok and (
        judged.rule.startswith("pna-") or (judged.rule == "header-not-allowed" and AUTHORIZATION_NOTE in judged.notes)
    ):
        judged = _check_lists(method, request_header_names, fields, credentials, False)
    rule, hints = judged.rule, judged.hints
    status_first = judged.preflight and module.PREFLIGHT_STATUS_FIRST and not 200 <= judged.status <= 299
    if status_first and rule in _BEFORE_STATUS:
        rule, hints = "preflight-status", ()
    elif rule in _ACAO_RULES:
        separators = module.ACAO_LIST_SEPARATORS
        multiple = any(c in hints[0] for c in separators) if separators else repeated_acao
        rule, hints = ("acao-multiple", hints) if multiple else ("acao-mismatch", hints)
    mapped = _ENGINE_NOTES[engine]
    notes = tuple(mapped.get(note, note) for note in judged.notes if mapped.get(note, note))
    derived = Verdict(rule == "ok", rule, hints, notes, engine, judged.preflight, judged.status, judged.origin)
    return _with_cache_notes(derived, engine, fields)


def _with_cache_notes(v: Verdict, engine: str, fields: dict[str, str]) -> Verdict:
    """An ok preflight's notes on how long `engine` caches it: its Max-Age cap, Firefox's refusal to cache
    an answer with a literal * in Access-Control-Allow-Methods/-Headers."""
    if not (v.ok and v.preflight):
        return v
    module = _WORDING[engine]
    notes = []
    age = fields.get(ACMA, "")
    if _is_digits(age) and (len(age) > 9 or int(age) > module.MAX_AGE):
        notes.append(f"{module.NAME} caches this preflight for at most {module.MAX_AGE} s, not the {age} s of "
                     "Access-Control-Max-Age")
    if module.NEVER_CACHES_WILDCARD and age != "0" and (
        "*" in (_allow_list(fields.get(ACAM)) or ()) or "*" in (_allow_list(fields.get(ACAH)) or ())
    ):
        notes.append(firefox.WILDCARD_NOTE)
    if not notes:
        return v
    return Verdict(True, "ok", (), (*v.notes, *notes), engine, True)


def _repeated_acao(response_headers: Headers) -> bool:
    """More than one Access-Control-Allow-Origin field (Firefox tells that apart from a list in one)."""
    return sum(_lower(name) == ACAO for name, _ in response_headers) > 1


def _cors_check(origin: str, fields: dict[str, str], credentials: bool) -> tuple[str, ...] | None:
    """Chromium's CheckAccess: the failing rule and its hint, or None."""
    allow_origin = fields.get(ACAO)
    if allow_origin == "*":
        return ("acao-wildcard-credentials",) if credentials else None
    if allow_origin is None:
        return ("acao-missing",)
    if allow_origin != origin:
        if " " in allow_origin or "," in allow_origin:
            return "acao-multiple", allow_origin
        if allow_origin != "null" and not _parses_as_url(allow_origin):
            return "acao-invalid", allow_origin
        return "acao-mismatch", allow_origin
    allow_credentials = fields.get(ACAC)
    if credentials and allow_credentials != "true":
        return "acac-not-true", allow_credentials or ""
    return None


def readable_response_headers(response_headers: Headers, credentials: bool) -> list[str]:
    """The response header names a page's script can read (sorted, lower-cased): the safelisted ones and
    those in Access-Control-Expose-Headers (`*` meaning all only without credentials), never Set-Cookie.
    An Access-Control-Expose-Headers that is not a token list exposes nothing (as Chromium 156 does)."""
    fields = _combine(response_headers)
    exposed = {_lower(name) for name in _allow_list(fields.get(ACEH)) or ()}
    everything = not credentials and "*" in exposed
    return sorted(
        name
        for name in fields
        if name not in _NEVER_EXPOSED and (everything or name in _SAFELISTED_RESPONSE_HEADERS or name in exposed)
    )


# -- one flow ----------------------------------------------------------------------------------------


def diagnose(method: str, request_headers: Headers, status: int, response_headers: Headers) -> Diagnosis:
    """Judge one flow as the proxy saw it, in both credentials modes, for every engine."""
    request = _combine(request_headers)
    origin = request.get("origin")
    if request.get("sec-fetch-site") == "same-origin":
        return Diagnosis("same-origin", None, OK, OK)
    if origin is None:
        return Diagnosis("no-origin", None, OK, OK)
    if request.get("sec-fetch-mode", "cors") != "cors":
        return Diagnosis("no-cors", None, OK, OK)
    requested_method = request.get("access-control-request-method")
    fields = _combine(response_headers)
    repeated = _repeated_acao(response_headers)
    if _upper(method) == "OPTIONS" and requested_method is not None:
        names = split_list(request.get("access-control-request-headers"))
        private_network = request.get("access-control-request-private-network") == "true"
        plain, credentialed = (
            _check_preflight(origin, requested_method, names, status, fields, mode, private_network, "local")
            for mode in (False, True)
        )
        engines = tuple(
            (_derive(plain, engine, fields, repeated, requested_method, names, False),
             _derive(credentialed, engine, fields, repeated, requested_method, names, True))
            for engine in ENGINES
        )
        return Diagnosis("preflight", None, *engines[0], engines, origin)
    plain, credentialed = (_check_actual(origin, status, fields, mode) for mode in (False, True))
    engines = tuple(
        (_derive(plain, engine, fields, repeated), _derive(credentialed, engine, fields, repeated))
        for engine in ENGINES
    )
    return Diagnosis("actual", True if "cookie" in request else None, *engines[0], engines, origin)


# What `diagnose` reads: of the request these fields (a Cookie only by its presence), of the response
# Location and the Access-Control-* fields. Everything else can vary without changing the diagnosis.
_DIAGNOSED_REQUEST_FIELDS = frozenset({
    b"origin", b"sec-fetch-site", b"sec-fetch-mode", b"access-control-request-method",
    b"access-control-request-headers", b"access-control-request-private-network", b"cookie",
})
_REMEMBERED_BYTES = 4096  # larger inputs (hostile ones, mostly) are judged afresh and not kept
RawFields = Sequence[tuple[bytes, bytes]]


def diagnose_raw(method: str, request_fields: RawFields, status: int, response_fields: RawFields) -> Diagnosis:
    """`diagnose` on raw (bytes) fields as a proxy holds them, remembered by the fields it reads:
    a page repeats the same few exchanges, and the judgement is a pure function of these."""
    # Plain loops, the sizes summed on the way: this runs on every cross-origin flow.
    size = 0
    request = []
    for name, value in request_fields:
        low = name.lower()
        if low in _DIAGNOSED_REQUEST_FIELDS:
            if low == b"cookie":
                value = b""
            request.append((name, value))
            size += len(name) + len(value)
    response = []
    for name, value in response_fields:
        low = name.lower()
        if low[:15] == b"access-control-" or low == b"location":
            response.append((name, value))
            size += len(name) + len(value)
    if size > _REMEMBERED_BYTES:
        return _diagnose_bytes(method, tuple(request), status, tuple(response))
    return _remembered(method, tuple(request), status, tuple(response))


def _diagnose_bytes(
    method: str, request: tuple[tuple[bytes, bytes], ...], status: int, response: tuple[tuple[bytes, bytes], ...]
) -> Diagnosis:
    return diagnose(method, _latin1(request), status, _latin1(response))


_remembered = functools.lru_cache(maxsize=2048)(_diagnose_bytes)


def _latin1(fields: tuple[tuple[bytes, bytes], ...]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]


# -- helpers -----------------------------------------------------------------------------------------


def _combine(headers: Headers) -> dict[str, str]:
    """Fields by lower-cased name, values trimmed and joined with ", " (Chromium's GetNormalizedHeader):
    two Access-Control-Allow-Origin fields become one value with a comma, as the browser sees them."""
    combined: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, value in headers:
        key = _lower(name)
        if key in combined:
            repeated.setdefault(key, [combined[key]]).append(value.strip(" \t"))
        else:
            combined[key] = value.strip(" \t")
    for key, values in repeated.items():
        combined[key] = ", ".join(values)
    return combined


def _allow_list(value: str | None) -> list[str] | None:
    """An Access-Control-Allow-*/-Expose-* list (empty items skipped), or None if an item is not a token."""
    items = split_list(value)
    return items if all(map(is_token, items)) else None


def _parses_as_url(value: str) -> bool:
    """Roughly whether Chromium's GURL takes `value` as a valid URL; it only decides between Chrome's
    "invalid value" and "not equal" messages, never between ok and blocked."""
    try:
        text = _bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isascii() or not scheme[0].isalpha():
        return False
    if not _SCHEME_CHARS.issuperset(scheme):
        return False
    if scheme.lower() not in _SPECIAL_SCHEMES:
        return True
    authority = rest.lstrip("/\\")
    for stop in "/?#\\":
        authority = authority.partition(stop)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        literal, bracket, after = host[1:].partition("]")
        if not bracket or not literal or not _IPV6_CHARS.issuperset(literal) or after[:1] not in ("", ":"):
            return False
        return _is_port(after[1:])
    host, _, port = host.partition(":")
    if not host or _FORBIDDEN_HOST_CHARS.intersection(host) or not _is_port(port):
        return False
    return all(len(escape) >= 2 and _HEX.issuperset(escape[:2]) for escape in host.split("%")[1:])


def _is_port(value: str) -> bool:
    return value == "" or (len(value) <= 5 and _is_digits(value) and int(value) <= 65535)


def _is_digits(value: str) -> bool:
    return bool(value) and _DIGITS.issuperset(value)


def _lower(value: str) -> str:
    """ASCII lower-casing only, as browsers do: the Kelvin sign must not become the k of "cookie"."""
    return value.lower() if value.isascii() else value.translate(_TO_LOWER)


def _upper(value: str) -> str:
    return value.upper() if value.isascii() else value.translate(_TO_UPPER)
