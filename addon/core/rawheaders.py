"""Reading and editing raw header fields (name, value bytes pairs) in one pass each.

mitmproxy's `Headers` scans and re-encodes the whole field list on every get and
rebuilds it on every set; a flow through corsgate needs some fifteen of those, about
a third of the addon's cost per request. These functions do the same reads and the
same edits, with the same results, in a single pass. Pure: no mitmproxy import.
Values are text the way mitmproxy's `Headers` decodes them (UTF-8, surrogateescape),
so a value read here and written back is the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

Fields = Sequence[tuple[bytes, bytes]]

# Request fields the engine reads (cors.RequestFacts).
ORIGIN = b"origin"
REQUEST_METHOD = b"access-control-request-method"
REQUEST_HEADERS = b"access-control-request-headers"
PRIVATE_NETWORK = b"access-control-request-private-network"
AUTHORIZATION = b"authorization"
HOST = b"host"
_READ = frozenset({ORIGIN, REQUEST_METHOD, REQUEST_HEADERS, PRIVATE_NETWORK, AUTHORIZATION, HOST})
_CORS_PREFIX = b"access-control-"
VARY = b"vary"
# mitmproxy's url.parse_authority: host (or [IPv6]) and an optional port.
_AUTHORITY = re.compile(r"^(?P<host>[^:]+|\[.+\])(?::\d+)?$")


def text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def raw(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def read(fields: Fields) -> dict[bytes, list[str]]:
    """The values of the request fields the engine reads, by lower-cased name, in order."""
    found: dict[bytes, list[str]] = {}
    for name, value in fields:
        low = name.lower()
        if low in _READ:
            found.setdefault(low, []).append(text(value))
    return found


def joined(found: dict[bytes, list[str]], name: bytes) -> str | None:
    """A field's value as `Headers.get` gives it: repeated fields joined with ", ", None when absent."""
    values = found.get(name)
    return None if values is None else ", ".join(values)


def authority_host(authority: str) -> str:
    """The host of a Host header, brackets of an IPv6 literal removed, as mitmproxy's `pretty_host`.

    mitmproxy also checks the host's syntax and, when that fails, returns the whole value;
    here a malformed host comes back as it is. The two differ only for hosts no policy can
    name (policy hosts are plain host names), so routing is the same.
    """
    m = _AUTHORITY.match(authority)
    if m is None:
        return authority
    host = m.group("host")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def setting(pairs: Iterable[tuple[str, str]]) -> dict[bytes, tuple[bytes, bytes]]:
    """Fields to set for `edited`, by lower-cased name; of pairs with the same name the last one wins."""
    return {raw(name).lower(): (raw(name), raw(value)) for name, value in pairs}


def edited(
    fields: Fields, to_set: Mapping[bytes, tuple[bytes, bytes]], strip_cors: bool = False
) -> tuple[tuple[bytes, bytes], ...]:
    """fields with every Access-Control-* field dropped (strip_cors), then each field of to_set set in
    turn the way `Headers[name] = value` sets one: the first field of that name keeps its place
    and spelling and takes the value, later ones go, a new name is appended."""
    out: list[tuple[bytes, bytes]] = []
    done: set[bytes] = set()
    for name, value in fields:
        low = name.lower()
        if strip_cors and low.startswith(_CORS_PREFIX):
            continue
        new = to_set.get(low)
        if new is None:
            out.append((name, value))
        elif low not in done:
            done.add(low)
            out.append((name, new[1]))
    out.extend(new for low, new in to_set.items() if low not in done)
    return tuple(out)


def values_of(fields: Fields, name: bytes) -> tuple[bytes, ...]:
    """Every raw value of one field (lower-case name); decoded with `text`, what `Headers.get_all` gives."""
    return tuple(value for key, value in fields if key.lower() == name)
