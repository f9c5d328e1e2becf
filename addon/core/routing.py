"""Which API a request hits: APIG path patterns, match modes and precedence (DESIGN §4.1).

Patterns are compiled once per policy into a segment trie per host, so a lookup
walks the request path's segments instead of testing every API: routing costs
the same for ten APIs as for ten thousand.

Precedence, best first: host-specific before any-host, NORMAL before SWA, longer
literal path before shorter, fewer parameters before more, a named method before
ANY, then file order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from addon.core.pacing import each

_PARAM_RE = re.compile(r"\{([A-Za-z0-9_][A-Za-z0-9_.-]*)(\+?)\}")
_LITERAL_RE = re.compile(r"[^{}\s?#]*")

Segment = tuple[str, str]  # ("lit", text) | ("param", name) | ("rest", name)


def parse_path(path: str) -> tuple[Segment, ...]:
    """Split an APIG req_uri into segments; ValueError says what is wrong."""
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/'")
    parts = path[1:].split("/") if path != "/" else []
    segments: list[Segment] = []
    for i, part in enumerate(parts):
        m = _PARAM_RE.fullmatch(part)
        if m:
            if m.group(2) and i != len(parts) - 1:
                raise ValueError(f"path {path!r}: {{{m.group(1)}+}} must be the last segment")
            segments.append(("rest" if m.group(2) else "param", m.group(1)))
        elif not _LITERAL_RE.fullmatch(part):
            raise ValueError(
                f"path {path!r}: segment {part!r} is neither a literal nor a whole {{param}} "
                "(APIG front-end paths do not support prefix-{param} segments)"
            )
        elif part == "" and i != len(parts) - 1:
            raise ValueError(f"path {path!r} has an empty segment ('//')")
        else:
            segments.append(("lit", part))
    return tuple(segments)


def route_signature(
    host: str | None, method: str, path: str, match_mode: str, domains: Sequence[str] = ()
) -> tuple[object, ...]:
    """Two APIs with the same signature match exactly the same requests: a load-time tie. The request protocol
    is not part of it: APIG refuses two APIs of one group with the same method, path and match mode."""
    shape = tuple(kind if kind != "lit" else text for kind, text in parse_path(path))
    return (host or None, tuple(sorted(domains)), method, match_mode, shape)


def precedence(host: str | None, method: str, path: str, match_mode: str, index: int) -> tuple[int, ...]:
    """Sort key of DESIGN §4.1: smaller is more specific (an API of a group with domains counts as host-specific)."""
    segments = parse_path(path)
    literal = sum(len(text) + 1 for kind, text in segments if kind == "lit")
    params = sum(1 for kind, _ in segments if kind != "lit")
    return (host is None, match_mode == "SWA", -literal, params, method == "ANY", index)


PROTOCOL = "protocol"  # a miss: the API takes another request protocol (req_protocol)
DOMAINS = "domains"  # a miss: the API's group is bound to other domains


@dataclass(frozen=True, slots=True)
class Route:
    """What a lookup found: the API's index in the policy, how many APIs matched, and the better-ranked APIs
    that fit the method and path but were passed over (index, PROTOCOL or DOMAINS), for the decision trail."""

    index: int
    candidates: int
    missed: tuple[tuple[int, str], ...] = ()


@dataclass(slots=True)
class _Entry:
    key: tuple[int, ...]
    method: str
    protocol: str  # "BOTH" | "HTTP" | "HTTPS"


@dataclass(slots=True)
class _Node:
    lit: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    exact: list[_Entry] = field(default_factory=list)  # NORMAL patterns ending here
    prefix: list[_Entry] = field(default_factory=list)  # SWA patterns ending here
    rest: list[_Entry] = field(default_factory=list)  # patterns whose last segment {x+} starts here


class Router:
    """A compiled routing table; built once per policy, read by every request."""

    __slots__ = ("_hosts", "_any", "_bound", "_domains")

    def __init__(
        self,
        apis: Sequence[tuple[str | None, str, str, str]],
        conditions: Sequence[tuple[Sequence[str], str]] = (),
    ) -> None:
        """apis: (host, method, path, match_mode) per API, in file order; conditions, where given: (the domains
        of the API's group, its req_protocol) per API. An API of a group with domains is routed as if it named
        each of them as its host (or only its own host, when it names one)."""
        self._hosts: dict[str, _Node] = {}
        self._any = _Node()
        self._bound: _Node | None = None  # every domain-bound API, whatever the host: to say why one was missed
        self._domains: dict[int, frozenset[str]] = {}
        for index, (host, method, path, mode) in enumerate(each(apis)):
            domains, protocol = conditions[index] if conditions else ((), "BOTH")
            hosts = [host.lower()] if host else sorted({d.lower() for d in domains})
            entry = _Entry(precedence(host or (hosts[0] if hosts else None), method, path, mode, index), method,
                           protocol)
            for root in [self._hosts.setdefault(h, _Node()) for h in hosts] or [self._any]:
                _insert(root, path, mode, entry)
            if domains:
                self._domains[index] = frozenset(d.lower() for d in domains)
                self._bound = self._bound or _Node()
                _insert(self._bound, path, mode, entry)

    @property
    def by_host(self) -> bool:
        """Does any route name a host? If not, lookups need no host (and callers need not find it)."""
        return bool(self._hosts)

    def lookup(self, host: str, method: str, path: str, tls: bool = False) -> Route | None:
        """The best API for a request, or None; path is the URL path without the query, tls whether the
        request reached the gateway over TLS."""
        segments = path[1:].split("/") if path.startswith("/") and path != "/" else []
        protocol = "HTTPS" if tls else "HTTP"
        tree = self._hosts.get(host.lower()) if self._hosts else None
        best, count, missed = _walk(tree, segments, method, protocol) if tree is not None else (None, 0, None)
        if best is None:
            best, count, more = _walk(self._any, segments, method, protocol)
            missed = more if missed is None else missed + (more or [])
        if not missed and self._bound is None:  # the common case: nothing passed over, nothing more to walk
            return Route(best.key[-1], count) if best is not None else None
        reasons = [(e, PROTOCOL) for e in missed] if missed else []
        if self._bound is not None:  # only policies whose groups have domains pay for this walk
            low = host.lower()
            reasons += [(e, DOMAINS) for e in _walk(self._bound, segments, method, None)[2] or ()
                        if low not in self._domains[e.key[-1]]]
        if reasons:  # the trail's business only: computed when some API was passed over
            passed = tuple((e.key[-1], why) for e, why in sorted(reasons, key=lambda r: r[0].key)
                           if best is None or e.key < best.key)
            if best is None:
                return Route(-1, 0, passed) if passed else None
            return Route(best.key[-1], count, passed)
        return Route(best.key[-1], count) if best is not None else None  # domain-bound APIs, none passed over


def _insert(root: _Node, path: str, mode: str, entry: _Entry) -> None:
    node = root
    for kind, text in parse_path(path):
        if kind == "rest":
            node.rest.append(entry)
            return
        if kind == "param":
            node.param = node.param or _Node()
            node = node.param
        else:
            node = node.lit.setdefault(text, _Node())
    (node.prefix if mode == "SWA" else node.exact).append(entry)


def _walk(root: _Node, segments: list[str], method: str, protocol: str | None
          ) -> tuple[_Entry | None, int, list[_Entry] | None]:
    """The best entry for the method and path taking the protocol, how many did, and those that fit the method
    and path but not the protocol, or None (with protocol None: every entry that fits, as misses)."""
    best: _Entry | None = None
    count = 0
    missed: list[_Entry] | None = None  # rarely any: no list is built for the common case
    n = len(segments)
    stack = [(root, 0)]
    while stack:
        node, i = stack.pop()
        hits = node.prefix if i < n else node.prefix + node.exact
        if node.rest and i < n:
            hits = hits + node.rest
        for entry in hits:
            if entry.method == method or entry.method == "ANY":
                if protocol is None or (entry.protocol != "BOTH" and entry.protocol != protocol):
                    missed = [*(missed or ()), entry]
                    continue
                count += 1
                if best is None or entry.key < best.key:
                    best = entry
        if i < n:
            child = node.lit.get(segments[i])
            if child is not None:
                stack.append((child, i + 1))
            if node.param is not None and segments[i]:
                stack.append((node.param, i + 1))
    return best, count, missed
