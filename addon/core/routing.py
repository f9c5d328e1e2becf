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


def route_signature(host: str | None, method: str, path: str, match_mode: str) -> tuple[object, ...]:
    """Two APIs with the same signature match exactly the same requests: a load-time tie."""
    shape = tuple(kind if kind != "lit" else text for kind, text in parse_path(path))
    return (host or None, method, match_mode, shape)


def precedence(host: str | None, method: str, path: str, match_mode: str, index: int) -> tuple[int, ...]:
    """Sort key of DESIGN §4.1: smaller is more specific."""
    segments = parse_path(path)
    literal = sum(len(text) + 1 for kind, text in segments if kind == "lit")
    params = sum(1 for kind, _ in segments if kind != "lit")
    return (host is None, match_mode == "SWA", -literal, params, method == "ANY", index)


@dataclass(frozen=True, slots=True)
class Route:
    """What a lookup found: the API's index in the policy, and how many APIs matched."""

    index: int
    candidates: int


@dataclass(slots=True)
class _Entry:
    key: tuple[int, ...]
    method: str


@dataclass(slots=True)
class _Node:
    lit: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    exact: list[_Entry] = field(default_factory=list)  # NORMAL patterns ending here
    prefix: list[_Entry] = field(default_factory=list)  # SWA patterns ending here
    rest: list[_Entry] = field(default_factory=list)  # patterns whose last segment {x+} starts here


class Router:
    """A compiled routing table; built once per policy, read by every request."""

    __slots__ = ("_hosts", "_any")

    def __init__(self, apis: Sequence[tuple[str | None, str, str, str]]) -> None:
        """apis: (host, method, path, match_mode) per API, in file order."""
        self._hosts: dict[str, _Node] = {}
        self._any = _Node()
        for index, (host, method, path, mode) in enumerate(each(apis)):
            root = self._any if host is None else self._hosts.setdefault(host.lower(), _Node())
            node = root
            segments = parse_path(path)
            entry = _Entry(precedence(host, method, path, mode, index), method)
            for kind, text in segments:
                if kind == "rest":
                    node.rest.append(entry)
                    break
                if kind == "param":
                    node.param = node.param or _Node()
                    node = node.param
                else:
                    node = node.lit.setdefault(text, _Node())
            else:
                (node.prefix if mode == "SWA" else node.exact).append(entry)

    @property
    def by_host(self) -> bool:
        """Does any route name a host? If not, lookups need no host (and callers need not find it)."""
        return bool(self._hosts)

    def lookup(self, host: str, method: str, path: str) -> Route | None:
        """The best API for a request, or None; path is the URL path without the query."""
        segments = path[1:].split("/") if path.startswith("/") and path != "/" else []
        tree = self._hosts.get(host.lower()) if self._hosts else None
        found = _walk(tree, segments, method) if tree is not None else None
        return found or _walk(self._any, segments, method)


def _walk(root: _Node, segments: list[str], method: str) -> Route | None:
    best: _Entry | None = None
    count = 0
    n = len(segments)
    stack = [(root, 0)]
    while stack:
        node, i = stack.pop()
        hits = node.prefix if i < n else node.prefix + node.exact
        if node.rest and i < n:
            hits = hits + node.rest
        for entry in hits:
            if entry.method == method or entry.method == "ANY":
                count += 1
                if best is None or entry.key < best.key:
                    best = entry
        if i < n:
            child = node.lit.get(segments[i])
            if child is not None:
                stack.append((child, i + 1))
            if node.param is not None and segments[i]:
                stack.append((node.param, i + 1))
    return Route(best.key[-1], count) if best else None
