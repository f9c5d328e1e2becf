"""Origin parsing and allow-list matching (DESIGN §4.4).

Pure and strict: a request origin is admitted only if it is a serialised origin
(scheme://host[:port], nothing else) that a rule admits in its plain meaning.
Comparison is on the canonical form (lower-case scheme and host, default port
dropped); what the gateway echoes is always the request's own header value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SCHEME = r"[a-z][a-z0-9+.-]*"
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])"
_PORT = r"[1-9][0-9]{0,4}"
_ORIGIN_RE = re.compile(rf"({_SCHEME})://({_HOST})(?::({_PORT}))?", re.IGNORECASE | re.ASCII)
_WILDCARD_RE = re.compile(rf"({_SCHEME})://\*\.({_LABEL}(?:\.{_LABEL})*)(?::({_PORT}))?", re.IGNORECASE | re.ASCII)
# The URL Standard parses a host whose last label is a number as an IPv4 address.
_ENDS_IN_NUMBER = re.compile(r"(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$")


@dataclass(frozen=True, slots=True)
class Origin:
    """A canonical serialised origin."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{self.host}" if self.port == default else f"{self.scheme}://{self.host}:{self.port}"


@lru_cache(maxsize=4096)
def parse_origin(value: str) -> Origin | None:
    """The canonical origin of a request's Origin header, or None if it is not a serialised origin."""
    if len(value) > 2048:
        return None
    m = _ORIGIN_RE.fullmatch(value)
    if m is None:
        return None
    scheme, host, port_text = m.group(1).lower(), m.group(2).lower(), m.group(3)
    port = int(port_text) if port_text else DEFAULT_PORTS.get(scheme)
    if port is None or port > 65535 or not _serialised_host(host):
        return None
    return Origin(scheme, host, port)


def _serialised_host(host: str) -> bool:
    """Is a lower-case host in the one form a browser serialises: IPv6 compressed, IPv4 dotted decimal?"""
    if host.startswith("["):
        try:
            return host == f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return False
    if _ENDS_IN_NUMBER.search(host):
        try:
            return host == str(ipaddress.IPv4Address(host))
        except ValueError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class OriginRule:
    """One allow_origin entry: '*', 'null', an exact origin, or a wildcard-subdomain origin."""

    kind: str  # "any" | "null" | "exact" | "wildcard"
    origin: Origin | None = None  # exact; for wildcard: scheme, suffix (as host) and port

    def admits(self, origin: Origin) -> bool:
        """Does this exact/wildcard rule admit a (non-null) canonical origin?"""
        if self.kind == "any":
            return True
        rule = self.origin
        if rule is None or origin.scheme != rule.scheme or origin.port != rule.port:
            return False
        if self.kind == "exact":
            return origin.host == rule.host
        # wildcard: one or more labels, then ".suffix"; never the apex, never an IP address
        # (parse_origin_rule refuses suffixes that end in a number, so no IPv4 address ends in one).
        return origin.host.endswith("." + rule.host) and not origin.host.startswith("[")


def parse_origin_rule(text: str) -> OriginRule:
    """Parse an allow_origin entry; ValueError says what is wrong with it."""
    rule = text.strip()
    if rule == "*":
        return OriginRule("any")
    if rule.lower() == "null":
        return OriginRule("null")
    trimmed = rule[:-1] if rule.endswith("/") else rule  # lint warns; browsers never send the slash
    if "*" in trimmed:
        m = _WILDCARD_RE.fullmatch(trimmed)
        if m is None:
            raise ValueError(
                f"origin {text!r}: a wildcard must be the whole first label of the host, "
                "as in https://*.example.com (scheme required, no path)"
            )
        scheme, suffix, port_text = m.group(1).lower(), m.group(2).lower(), m.group(3)
        if _ENDS_IN_NUMBER.search(suffix):
            raise ValueError(f"origin {text!r}: a wildcard suffix must be a domain name, not part of an IP address")
        port = int(port_text) if port_text else DEFAULT_PORTS.get(scheme)
        if port is None or port > 65535:
            raise ValueError(f"origin {text!r}: give a port for scheme {scheme!r}")
        return OriginRule("wildcard", Origin(scheme, suffix, port))
    origin = parse_origin(trimmed)
    if origin is None:
        raise ValueError(
            f"origin {text!r} is not scheme://host[:port] (no path, query, user or trailing text)"
        )
    return OriginRule("exact", origin)


class OriginMatcher:
    """A compiled allow-list: exact origins in a set, the rest checked in order."""

    __slots__ = ("any", "null", "exact", "wildcards", "regexes")

    def __init__(self, rules: tuple[str, ...], regexes: tuple[str, ...] = (), allow_null: bool = False) -> None:
        parsed = [parse_origin_rule(r) for r in rules]
        self.any = any(r.kind == "any" for r in parsed)
        self.null = allow_null
        self.exact = frozenset(r.origin for r in parsed if r.kind == "exact")
        self.wildcards = tuple(r for r in parsed if r.kind == "wildcard")
        self.regexes = tuple(re.compile(p) for p in regexes)

    def match(self, value: str) -> str | None:
        """The rule that admits the Origin header value, or None; the name is for the decision trail."""
        if value == "null":
            return "allow_null_origin" if self.null else None
        origin = parse_origin(value)
        if origin is None:
            return None
        if self.any:
            return "*"
        if origin in self.exact:
            return str(origin)
        for rule in self.wildcards:
            if rule.admits(origin):
                return f"{rule.origin.scheme}://*.{rule.origin.host}" if rule.origin else "*"
        for regex in self.regexes:
            if regex.fullmatch(value):
                return f"allow_origin_regex {regex.pattern}"
        return None
