"""The tightest policy that lets recorded traffic through (`cors-learn`): built as policy objects, written as YAML.

Per host, one CORS plug-in: the exact origins that were seen (wildcards only when asked), the methods and
request headers the pages used, credentials only if credentialed requests were seen (cookies or
Authorization), the non-safelisted response headers the upstream sent as expose_headers, max_age 600.
APIs per host, method and path, the way a reader names them: path segments that are ids (numbers, UUIDs,
long hex) become `{id}` parameters, and a first segment with more than COLLAPSE_AT paths under it for one
method becomes a single prefix (SWA) API. The policy is validated by the loader before it is written.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from addon.core.fields import is_token
from addon.core.origins import parse_origin, parse_origin_rule
from addon.core.policy import MAX_YAML_BYTES, METHODS, Api, CorsContent, CorsPlugin, Gateway, Plugin, Policy, parse_policy
from addon.core.routing import parse_path
from addon.tools.recordings import Exchange, Recording

SCHEMA = Path(__file__).resolve().parents[2] / "policies" / "schema.json"
MAX_AGE = 600  # short enough that a policy change reaches browsers in minutes, long enough to spare preflights
COLLAPSE_AT = 10  # paths under one first segment (per host and method) before they become one prefix API
_METHOD_ORDER = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")
_SAFELISTED_RESPONSE = frozenset(
    {"cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"}
)
# Not worth exposing: the browser's own business (hop-by-hop, cookies, CORS itself, caching keys).
_NOT_EXPOSED = frozenset(
    {"set-cookie", "set-cookie2", "vary", "connection", "keep-alive", "transfer-encoding", "te", "trailer",
     "upgrade", "proxy-connection", "proxy-authenticate"}
)
_ID_SEGMENT = re.compile(
    r"[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|"
    r"(?=[a-zA-Z]*[0-9])[0-9a-fA-F]{12,}|(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,}"
)
_LITERAL = re.compile(r"[^{}\s?#]*")
_NAME_JUNK = re.compile(r"[^a-z0-9]+")

# Reasons an exchange is read but not learned from (beside the reader's own).
NULL_ORIGIN = "Origin null (sandboxed or file: pages; allow_null_origin is never learned)"
BAD_ORIGIN = "Origin that is not a serialised origin"
BAD_METHOD = "method that is not a token"


class LearnError(Exception):
    """Nothing to learn from, or a learned policy that does not load (a bug): str() says which."""


@dataclass
class _Host:
    """What the pages did with one host."""

    origins: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case -> as written
    expose: dict[str, str] = field(default_factory=dict)
    credentials: bool = False
    routes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # method -> path patterns


@dataclass
class Learned:
    """The policy and what it was learned from."""

    policy: Policy
    recording: Recording
    exchanges: int
    preflighted: int
    failed: int  # no response recorded (failed in the browser, or never sent)
    not_learned: Counter[str]


def learn(exchanges: Iterable[Exchange], recording: Recording, *, wildcards: bool = False,
          max_age: int = MAX_AGE, credentials: bool = False) -> Learned:
    """The tightest policy for the exchanges; LearnError when there are none. `credentials` allows them on
    every host (a thin HAR shows no cookies)."""
    hosts: dict[str, _Host] = defaultdict(_Host)
    count = preflighted = failed = 0
    not_learned: Counter[str] = Counter()
    for exchange in exchanges:
        if exchange.origin == "null":
            not_learned[NULL_ORIGIN] += 1
            continue
        origin = parse_origin(exchange.origin)
        if origin is None:
            not_learned[BAD_ORIGIN] += 1
            continue
        if not is_token(exchange.method):
            not_learned[BAD_METHOD] += 1
            continue
        count += 1
        preflighted += exchange.preflight is not None
        failed += exchange.status is None
        _note(hosts[exchange.host.lower()], exchange, str(origin))
    if not count:
        raise LearnError("no cross-origin exchange to learn from" + _skipped_text(recording.skipped + not_learned))
    many_hosts = len(hosts) > 1
    plugins: dict[str, Plugin] = {}
    apis: list[Api] = []
    names: set[str] = set()
    for host in sorted(hosts):
        seen = hosts[host]
        seen.credentials |= credentials
        plugin = _unique(f"cors-{_slug(host) or 'host'}", plugins)
        plugins[plugin] = CorsPlugin(type="cors", content=_content(seen, wildcards, max_age))
        for method in sorted(seen.routes, key=_method_key):
            for path, mode in _grouped(seen.routes[method]):
                api_method = method if method in METHODS else "ANY"
                name = _unique(f"{method.lower()}{_slug(path, '-') or '-root'}" + (f"@{host}" if many_hosts else ""),
                               names)
                names.add(name)
                apis.append(Api(name=name, method=api_method, path=path, match_mode=mode,
                                host=host if many_hosts else None, plugins=(plugin,)))
    policy = Policy(version=1, gateway=Gateway(request_id=False, server=None), plugins=plugins, apis=tuple(apis))
    return Learned(policy, recording, count, preflighted, failed, not_learned)


def _note(seen: _Host, exchange: Exchange, origin: str) -> None:
    """Add one exchange's facts; names that are not tokens (a hostile recording's) are never learned."""
    seen.origins.add(origin)
    method = exchange.method.upper() if exchange.method.upper() in _METHOD_ORDER else exchange.method
    seen.methods.add(method)
    for name in filter(is_token, exchange.unsafe_headers):
        seen.headers.setdefault(name.lower(), _title(name))
    if exchange.credentialed:
        seen.credentials = True
    for name, _ in exchange.upstream_headers or ():
        low = name.lower()
        learnable = is_token(name) and not low.startswith("access-control-")
        if learnable and low not in _SAFELISTED_RESPONSE and low not in _NOT_EXPOSED:
            seen.expose.setdefault(low, name)
    seen.routes[method].add(_pattern(exchange.path))


def _content(seen: _Host, wildcards: bool, max_age: int) -> CorsContent:
    origins = _wildcarded(seen.origins) if wildcards else sorted(seen.origins)
    return CorsContent(
        allow_origin=tuple(origins),
        allow_methods=tuple(sorted(seen.methods, key=_method_key)),
        allow_headers=tuple(sorted(seen.headers.values(), key=str.lower)),
        expose_headers=tuple(sorted(seen.expose.values(), key=str.lower)),
        max_age=max_age,
        allow_credentials=seen.credentials,
    )


def _pattern(path: str) -> str:
    """A request path as an APIG path: id segments become {id}, {id2}...; what APIG cannot name, {rest+}."""
    parts = path.split("/")[1:]
    out: list[str] = []
    ids = 0
    for i, part in enumerate(parts):
        if (part == "" and i != len(parts) - 1) or not _LITERAL.fullmatch(part):
            out.append("{rest+}")
            break
        if _ID_SEGMENT.fullmatch(part):
            ids += 1
            out.append("{id}" if ids == 1 else f"{{id{ids}}}")
        else:
            out.append(part)
    return "/" + "/".join(out)


def _grouped(patterns: set[str]) -> list[tuple[str, str]]:
    """(path, match mode) APIs for one host and method: more than COLLAPSE_AT paths under a first segment
    become one prefix API on that segment."""
    by_first: dict[str, list[str]] = defaultdict(list)
    for pattern in patterns:
        by_first[pattern.split("/")[1]].append(pattern)
    out: list[tuple[str, str]] = []
    for first, group in sorted(by_first.items()):
        if len(group) > COLLAPSE_AT and _LITERAL.fullmatch(first) and "{" not in first and first:
            out.append((f"/{first}", "SWA"))
        else:
            out += [(pattern, "NORMAL") for pattern in sorted(group) if _parses(pattern)]
    return out


def _parses(path: str) -> bool:
    try:
        parse_path(path)
    except ValueError:
        return False
    return True


def _wildcarded(origins: set[str]) -> list[str]:
    """Exact origins, where two or more share scheme, port and parent domain replaced by `scheme://*.parent`
    (never over a bare top-level domain or an IP address)."""
    groups: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    keep: set[str] = set()
    for value in origins:
        origin = parse_origin(value)
        labels = origin.host.split(".") if origin is not None else []
        if origin is None or len(labels) < 3 or labels[-1].isdigit() or origin.host.startswith("["):
            keep.add(value)
            continue
        groups[(origin.scheme, ".".join(labels[1:]), origin.port)].add(value)
    for (scheme, parent, port), members in groups.items():
        if len(members) < 2:
            keep |= members
            continue
        default = {"http": 80, "https": 443}.get(scheme)
        rule = f"{scheme}://*.{parent}" + ("" if port == default else f":{port}")
        try:
            parse_origin_rule(rule)
        except ValueError:
            keep |= members
            continue
        keep.add(rule)
    return sorted(keep)


# -- writing --------------------------------------------------------------------------------------------


def render(learned: Learned, out: Path | None = None) -> str:
    """The policy as YAML: schema line, a header saying what it was learned from, then the policy.

    The text is loaded back before it is returned: what is written is what corsgate will load."""
    policy = learned.policy
    document = {
        "version": 1,
        "gateway": policy.gateway.model_dump(),
        "plugins": {
            name: {"type": plugin.type, "content": _content_dict(plugin.content)}
            for name, plugin in policy.plugins.items()
        },
        "apis": [_api_dict(api) for api in policy.apis],
    }
    stream = StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    yaml.dump(document, stream)
    text = _header(learned, out) + stream.getvalue()
    if len(text.encode()) > MAX_YAML_BYTES:
        raise LearnError(f"the learned policy ({len(policy.apis)} APIs) is larger than a YAML policy may be "
                         f"({MAX_YAML_BYTES} bytes): learn from fewer hosts, or group more paths")
    try:
        parse_policy(text, str(out or "<learned>"))
    except Exception as e:  # the writer's own fault, never the input's: say so plainly
        raise LearnError(f"the learned policy does not load (a cors-learn bug): {e}") from e
    return text


def _content_dict(content: CorsContent) -> dict[str, object]:
    out: dict[str, object] = {"allow_origin": ",".join(content.allow_origin)}
    for key in ("allow_methods", "allow_headers", "expose_headers"):
        if getattr(content, key):
            out[key] = ",".join(getattr(content, key))
    out["max_age"] = content.max_age
    out["allow_credentials"] = content.allow_credentials
    return out


def _api_dict(api: Api) -> dict[str, object]:
    out: dict[str, object] = {"name": api.name, "method": api.method, "path": api.path, "match_mode": api.match_mode}
    if api.host:
        out["host"] = api.host
    out["plugins"] = plugins = CommentedSeq(api.plugins)
    plugins.fa.set_flow_style()
    return out


def _header(learned: Learned, out: Path | None) -> str:
    recording = learned.recording
    schema = os.path.relpath(SCHEMA, out.resolve().parent) if out is not None else str(SCHEMA)
    files = [Path(f).name for f in recording.files]
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    lines = [
        f"# yaml-language-server: $schema={schema}",
        f"# Learned by cors-learn from {len(files)} file{'s' if len(files) != 1 else ''}: {shown}",
        f"# {learned.exchanges} cross-origin exchange{'s' if learned.exchanges != 1 else ''} "
        f"({learned.preflighted} with a recorded preflight, {learned.failed} without a recorded response)"
        + (f", {_when(recording.first)} to {_when(recording.last)}" if recording.first is not None else ""),
    ]
    skipped = recording.skipped + learned.not_learned
    if skipped:
        lines.append("# Not learned from: " + ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())))
    lines.append("# Per host: the origins seen, the methods and request headers the pages used, the response")
    lines.append("# headers the upstream sent (exposed); credentials only where cookies or Authorization were sent.")
    return "\n".join(lines) + "\n"


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(stamp or 0))


def _skipped_text(skipped: Counter[str]) -> str:
    if not skipped:
        return ""
    return " (read but not learned from: " + ", ".join(f"{n} {r}" for r, n in sorted(skipped.items())) + ")"


def summary(learned: Learned) -> str:
    """What cors-learn prints: the counts and what was left out."""
    policy = learned.policy
    text = (f"learned {len(policy.apis)} API(s) on {len(policy.plugins)} host(s) from {learned.exchanges} "
            f"cross-origin exchange(s) of {learned.recording.seen} recorded")
    return text + _skipped_text(learned.recording.skipped + learned.not_learned)


def _method_key(method: str) -> tuple[int, str]:
    return (_METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER), method)


def _title(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _slug(text: str, lead: str = "") -> str:
    slug = _NAME_JUNK.sub("-", text.lower().replace("{", "").replace("}", "")).strip("-")
    return lead + slug if slug else ""


def _unique(name: str, taken: Sequence[str] | set[str] | dict[str, object]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"
