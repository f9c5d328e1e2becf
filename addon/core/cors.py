"""The CORS engine: request facts + policy -> what the gateway answers and which headers it sets.

Pure (no mitmproxy): DESIGN §4.2-4.4. `Engine` is compiled once per policy;
`Engine.decide` runs once per request and returns a `Decision`; `response_edit`
turns a decision's `CorsPlan` into the header changes for the final response,
whoever made it (upstream, mock, or gateway error).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from addon.core.fields import is_token, split_list
from addon.core.origins import OriginMatcher
from addon.core.pacing import each
from addon.core.policy import Api, CorsContent, LoadedPolicy, group_domains
from addon.core.resp_headers import RespHeaderRule
from addon.core.responses import (
    API_NOT_FOUND,
    APP_AUTH_MISSING,
    IAM_AUTH_MISSING,
    ORIGIN_NOT_ALLOWED,
    GatewayResponse,
    error_response,
    mock_response,
    new_request_id,
)
from addon.core.routing import PROTOCOL, Router, precedence

# APIG's documented answer of the Method-1 OPTIONS mock API ("CORS Calling of an Open API").
APIG_PREFLIGHT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Origin", "*"),
    (
        "Access-Control-Allow-Headers",
        "X-Stage,X-Sdk-Date,X-Sdk-Nonce,X-Proxy-Signed-Headers,X-Sdk-Content-Sha256,X-Forwarded-For,"
        "Authorization,Content-Type,Accept,Accept-Ranges,Cache-Control,Range",
    ),
    (
        "Access-Control-Expose-Headers",
        "X-Request-Id,X-Apig-Latency,X-Apig-Upstream-Latency,X-Apig-RateLimit-Api,X-Apig-RateLimit-User,"
        "X-Apig-RateLimit-App,X-Apig-RateLimit-Ip,X-Apig-RateLimit-Api-Allenv",
    ),
    ("Access-Control-Allow-Methods", "GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH"),
    ("Access-Control-Max-Age", "172800"),
)
SIMPLE_HEADERS: tuple[tuple[str, str], ...] = (("Access-Control-Allow-Origin", "*"),)
_NEVER_EXPOSED = frozenset({"set-cookie", "set-cookie2"})


class RequestFacts(NamedTuple):
    """What the engine needs to know about a request; gateway.py extracts it from the flow.

    A named tuple rather than a frozen dataclass: one is built and hashed for every request, and a
    frozen dataclass's __init__ (an object.__setattr__ per field) cost ~2.5 µs of that, against ~0.8 µs.
    """

    method: str
    host: str
    path: str  # without the query
    origin: str | None = None
    request_method: str | None = None  # Access-Control-Request-Method
    request_headers: tuple[str, ...] = ()  # Access-Control-Request-Headers items, as sent
    private_network: bool = False  # Access-Control-Request-Private-Network: true
    authorization: bool = False  # an Authorization header is present
    tls: bool = False  # the request reached the gateway over TLS (req_protocol)

    @property
    def preflight(self) -> bool:
        """DESIGN §4.2: OPTIONS with Origin and Access-Control-Request-Method, nothing less."""
        return self.method == "OPTIONS" and self.origin is not None and self.request_method is not None


class CorsRule:
    """A CORS plug-in compiled for the hot path: matcher and pre-joined header values."""

    __slots__ = (
        "name", "content", "matcher", "any_origin", "credentials", "methods", "any_methods", "headers",
        "any_headers", "allowed_headers", "expose", "any_expose", "max_age", "depends_on_origin",
    )

    def __init__(self, name: str, content: CorsContent) -> None:
        self.name = name
        self.content = content
        self.matcher = OriginMatcher(content.allow_origin, content.allow_origin_regex, content.allow_null_origin)
        self.any_origin = self.matcher.any
        self.credentials = content.allow_credentials
        self.methods = ",".join(content.allow_methods)
        self.any_methods = "*" in content.allow_methods
        self.headers = ",".join(content.allow_headers)
        self.any_headers = "*" in content.allow_headers
        self.allowed_headers = frozenset(h.lower() for h in content.allow_headers)
        self.expose = ",".join(content.expose_headers)
        self.any_expose = "*" in content.expose_headers
        self.max_age = None if content.max_age is None else str(content.max_age)
        # '*' without credentials is the one answer that is the same for every origin.
        self.depends_on_origin = not (self.any_origin and not self.credentials)

    def allow_origin_value(self, origin: str) -> str:
        return origin if self.depends_on_origin else "*"


@dataclass(frozen=True, slots=True)
class CorsPlan:
    """How to decorate the final response of a flow."""

    kind: Literal["plugin", "simple", "apig-preflight"]
    origin: str
    rule: CorsRule | None = None
    allowed: bool = True  # for plug-ins: the origin passed the allow-list
    preflight: bool = False  # decorate as a preflight answer (forwarded preflight)
    request_method: str = ""
    request_headers: tuple[str, ...] = ()
    private_network: bool = False

    @property
    def precedence(self) -> str:
        return self.rule.content.precedence if self.rule else "backend"


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """Changes to a response's headers: strip backend CORS headers, set these, merge Vary tokens."""

    set: tuple[tuple[str, str], ...] = ()
    strip_cors: bool = False
    vary: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """What the gateway does with a request, and why."""

    action: Literal["pass", "respond", "forward"]
    api: Api | None = None
    response: GatewayResponse | None = None  # for "respond"
    cors: CorsPlan | None = None  # decorates the final response (also of "respond")
    request_id: str | None = None
    trail: tuple[str, ...] = ()
    resp_headers: RespHeaderRule | None = None  # the API's set_resp_headers plug-in, for upstream and mock answers


PASS = Decision("pass", trail=("no API matched; unmatched: pass leaves the request untouched",))


@dataclass(frozen=True, slots=True)
class _ApiInfo:
    api: Api
    rule: CorsRule | None
    headers: RespHeaderRule | None
    label: str
    rank: tuple[int, ...]  # precedence without method and file order


class Engine:
    """One policy, compiled: the router, the plug-ins, and per-API facts."""

    def __init__(self, loaded: LoadedPolicy) -> None:
        policy = loaded.policy
        self.loaded = loaded
        self.policy = policy
        rules = {name: CorsRule(name, p.content) for name, p in policy.plugins.items() if p.type == "cors"}
        edits = {name: RespHeaderRule(name, p.content) for name, p in policy.plugins.items()
                 if p.type == "set_resp_headers"}
        self._apis = tuple(
            _ApiInfo(
                api,
                next((rules[n] for n in api.plugins if n in rules), None),
                next((edits[n] for n in api.plugins if n in edits), None),
                _label(api),
                precedence(api.host, api.method, api.path, api.match_mode, 0)[:-2],
            )
            for api in each(policy.apis)
        )
        self._router = Router([(a.host, a.method, a.path, a.match_mode) for a in policy.apis],
                              [(group_domains(policy, a), a.req_protocol) for a in policy.apis])
        self._request_ids = policy.gateway.request_id
        self._reject = policy.gateway.unmatched == "reject"

    @property
    def api_count(self) -> int:
        return len(self._apis)

    @property
    def makes_request_ids(self) -> bool:
        """Does every decision carry a new X-Request-Id? Otherwise a decision depends on the request facts only."""
        return self._request_ids

    @property
    def by_host(self) -> bool:
        """Does the policy route by host? Otherwise RequestFacts.host is never read."""
        return self._router.by_host

    def route(self, req: RequestFacts, method: str, trail: list[str] | None = None) -> tuple[_ApiInfo, int] | None:
        """The API a request with this method hits; why better-ranked APIs were passed over goes to trail."""
        found = self._router.lookup(req.host, method, req.path, req.tls)
        if found is None:
            return None
        if found.missed and trail is not None:
            trail.extend(self._missed(req, method, index, why) for index, why in found.missed)
        return (self._apis[found.index], found.candidates) if found.index >= 0 else None

    def _missed(self, req: RequestFacts, method: str, index: int, why: str) -> str:
        info = self._apis[index]
        if why == PROTOCOL:
            over = "TLS" if req.tls else "plain HTTP"
            return (f"{method} {req.path}: {info.label} not used: its req_protocol is {info.api.req_protocol} and "
                    f"this request came over {over}")
        domains = ", ".join(group_domains(self.policy, info.api))
        return (f"{method} {req.path}: {info.label} not used: its group {info.api.group!r} is bound to {domains}, "
                f"not to host {req.host!r}")

    def decide(self, req: RequestFacts) -> Decision:
        """The gateway's decision for one request (DESIGN §4.2-4.3)."""
        if req.preflight:
            return self._preflight(req)
        missed: list[str] = []
        hit = self.route(req, req.method, missed)
        if hit is None:
            return self._unmatched(req, missed)
        info, candidates = hit
        trail = [f"{info.label} matched ({candidates} candidate{'s' if candidates != 1 else ''})", *missed]
        return self._to_api(req, info, self._actual_plan(req, info, trail), trail)

    def _preflight(self, req: RequestFacts) -> Decision:
        assert req.origin is not None and req.request_method is not None
        missed: list[str] = []
        as_options = self.route(req, "OPTIONS", missed)
        as_actual = self.route(req, req.request_method, missed)
        plugin_api = as_actual[0] if as_actual and as_actual[0].rule else None
        if plugin_api is not None and as_options is not None and as_options[0] is not plugin_api:
            if as_options[0].api.method == "OPTIONS" and _more_specific(as_options[0], plugin_api):
                plugin_api = None  # an explicit OPTIONS API on a more specific path answers instead
        if plugin_api is not None and plugin_api.rule is not None:
            trail = [f"preflight for {req.request_method}: {plugin_api.label} has CORS plug-in {plugin_api.rule.name!r}"]
            return self._plugin_preflight(req, plugin_api, plugin_api.rule, [*trail, *missed])
        if as_options is None:
            decision = self._unmatched(req, missed)
            return Decision(decision.action, response=decision.response, request_id=decision.request_id,
                            trail=decision.trail + ("a preflight needs an OPTIONS API (APIG Method 1) or a CORS "
                                                    "plug-in (Method 2) on this path, in the API's group and "
                                                    "protocol",))
        info = as_options[0]
        trail = [f"preflight: {info.label} matched as the OPTIONS request", *missed]
        if info.rule is not None:
            return self._plugin_preflight(req, info, info.rule, trail)
        if info.api.cors and info.api.method == "OPTIONS":
            trail.append("APIG Method 1: OPTIONS API with CORS on answers with APIG's fixed preflight headers")
            plan = CorsPlan("apig-preflight", req.origin)
        elif info.api.cors:
            trail.append("CORS switch on but no plug-in and no OPTIONS API: forwarded like any request, "
                         "and only Access-Control-Allow-Origin: * is added (not enough for a preflight)")
            plan = CorsPlan("simple", req.origin)
        else:
            trail.append("CORS is off for this API: no CORS headers")
            plan = None
        return self._to_api(req, info, plan, trail)

    def _plugin_preflight(self, req: RequestFacts, info: _ApiInfo, rule: CorsRule, trail: list[str]) -> Decision:
        assert req.origin is not None
        matched = rule.matcher.match(req.origin)
        request_id = new_request_id() if self._request_ids else None
        plan = CorsPlan("plugin", req.origin, rule, matched is not None, True, req.request_method or "",
                        req.request_headers, req.private_network)
        if matched is None:
            trail.append(f"origin {req.origin} is not allowed by plug-in {rule.name!r}{_admits(rule)}: 403, no CORS headers")
            response = error_response(ORIGIN_NOT_ALLOWED, request_id or "", req.origin)
            return Decision("respond", info.api, response, plan, request_id, tuple(trail))
        trail.append(f"origin {req.origin} allowed by {matched!r}")
        trail.extend(_preflight_findings(req, rule))
        if rule.content.preflight == "forward":
            trail.append("preflight: forward — sent upstream, then decorated")
            _note_headers(info, trail)
            return Decision("forward", info.api, None, plan, request_id, tuple(trail), info.headers)
        trail.append("preflight answered by the gateway")
        edit = response_edit(plan, ())
        headers = edit.set + ((("Vary", ", ".join(edit.vary)),) if edit.vary else ())
        response = GatewayResponse(200, headers, b"")
        return Decision("respond", info.api, response, None, request_id, tuple(trail))

    def _actual_plan(self, req: RequestFacts, info: _ApiInfo, trail: list[str]) -> CorsPlan | None:
        if req.origin is None:
            return None
        if info.rule is not None:
            matched = info.rule.matcher.match(req.origin)
            if matched is None:
                trail.append(f"origin {req.origin} is not allowed by plug-in {info.rule.name!r}{_admits(info.rule)}: "
                             "no CORS headers")
            else:
                trail.append(f"origin {req.origin} allowed by {matched!r} (plug-in {info.rule.name!r})")
            return CorsPlan("plugin", req.origin, info.rule, matched is not None)
        if info.api.cors:
            trail.append("CORS switch on (APIG scenario 1): Access-Control-Allow-Origin: *")
            return CorsPlan("simple", req.origin)
        trail.append("CORS is off for this API: no CORS headers")
        return None

    def _to_api(self, req: RequestFacts, info: _ApiInfo, plan: CorsPlan | None, trail: list[str]) -> Decision:
        """Auth check, then mock or upstream, for a request that hit an API."""
        api = info.api
        request_id = new_request_id() if self._request_ids else None
        if api.auth != "none" and not req.authorization:
            error = IAM_AUTH_MISSING if api.auth == "iam" else APP_AUTH_MISSING
            trail.append(f"auth {api.auth}: no Authorization header: 401")
            return Decision("respond", api, error_response(error, request_id or ""), plan, request_id, tuple(trail))
        if api.backend.type == "mock":
            trail.append(f"mock backend: {api.backend.status}")
            _note_headers(info, trail)
            response = mock_response(api.backend.status, api.backend.body, api.backend.headers)
            return Decision("respond", api, response, plan, request_id, tuple(trail), info.headers)
        _note_headers(info, trail)
        return Decision("forward", api, None, plan, request_id, tuple(trail), info.headers)

    def _unmatched(self, req: RequestFacts, missed: Sequence[str] = ()) -> Decision:
        if not self._reject:
            return Decision("pass", trail=(*PASS.trail, *missed)) if missed else PASS
        request_id = new_request_id() if self._request_ids else None
        return Decision("respond", None, error_response(API_NOT_FOUND, request_id or ""), None, request_id,
                        ("no API matched; unmatched: reject answers APIG.0101 404", *missed))


def _note_headers(info: _ApiInfo, trail: list[str]) -> None:
    if info.headers is not None:
        trail.append(f"set_resp_headers plug-in {info.headers.name!r} edits the response before the CORS headers")


def _admits(rule: CorsRule) -> str:
    """For the trail: say so when a plug-in admits no origin at all (it means "no cross-origin caller")."""
    return " (it admits no origin: allow_origin and allow_origin_regex empty, allow_null_origin off)" \
        if rule.content.admits_no_origin else ""


def _more_specific(a: _ApiInfo, b: _ApiInfo) -> bool:
    """Does API a rank before API b on everything but the method and file order (DESIGN §4.1)?"""
    return a.rank < b.rank


def _preflight_findings(req: RequestFacts, rule: CorsRule) -> list[str]:
    """What the configured lists say about the requested method and headers (for the trail)."""
    out = []
    method = req.request_method or ""
    if method not in ("GET", "HEAD", "POST") and not rule.any_methods and method not in rule.content.allow_methods:
        out.append(f"method {method} is not in allow_methods ({rule.methods or 'empty'}): the browser will refuse")
    for name in req.request_headers:
        low = name.lower()
        if low in rule.allowed_headers or (rule.any_headers and rule.credentials):
            continue
        if rule.any_headers and low != "authorization":
            continue
        out.append(f"header {low} is not in allow_headers ({rule.headers or 'empty'}): the browser will refuse")
    return out


def response_edit(plan: CorsPlan | None, response_headers: Sequence[tuple[str, str]]) -> HeaderEdit:
    """The header changes for a flow's final response (DESIGN §4.3 precedence, §4.4 rules)."""
    if plan is None:
        return HeaderEdit()
    backend_has_cors = any(name.lower() == "access-control-allow-origin" for name, _ in response_headers)
    if plan.kind == "apig-preflight":
        return HeaderEdit() if backend_has_cors else HeaderEdit(APIG_PREFLIGHT_HEADERS)
    if plan.kind == "simple":
        return HeaderEdit() if backend_has_cors else HeaderEdit(SIMPLE_HEADERS)
    rule = plan.rule
    assert rule is not None
    if backend_has_cors and rule.content.precedence == "backend":
        return HeaderEdit()
    strip = rule.content.precedence == "gateway"
    vary = ("Origin",) if rule.depends_on_origin else ()
    if not plan.allowed:
        return HeaderEdit((), strip, vary)
    out = [("Access-Control-Allow-Origin", rule.allow_origin_value(plan.origin))]
    if rule.credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    if plan.preflight:
        out.extend(_preflight_headers(plan, rule))
        if rule.credentials and (rule.any_methods or rule.any_headers):
            vary += ("Access-Control-Request-Method", "Access-Control-Request-Headers")
        if rule.expose and not (rule.any_expose and rule.credentials):
            out.append(("Access-Control-Expose-Headers", rule.expose))  # APIG sends it on preflights too
    else:
        expose = _expose_value(rule, response_headers)
        if expose:
            out.append(("Access-Control-Expose-Headers", expose))
    return HeaderEdit(tuple(out), strip, vary)


def _preflight_headers(plan: CorsPlan, rule: CorsRule) -> list[tuple[str, str]]:
    out = []
    if rule.any_methods and rule.credentials and is_token(plan.request_method):
        out.append(("Access-Control-Allow-Methods", plan.request_method))
    elif rule.methods:
        out.append(("Access-Control-Allow-Methods", rule.methods))
    if rule.any_headers and rule.credentials:
        echoed = [name for name in plan.request_headers if is_token(name)]  # never reflect what is not a name
        if echoed:
            out.append(("Access-Control-Allow-Headers", ",".join(echoed)))
    elif rule.headers:
        out.append(("Access-Control-Allow-Headers", rule.headers))
    if rule.max_age is not None:
        out.append(("Access-Control-Max-Age", rule.max_age))
    if plan.private_network and rule.content.allow_private_network:
        out.append(("Access-Control-Allow-Private-Network", "true"))
    return out


def _expose_value(rule: CorsRule, response_headers: Iterable[tuple[str, str]]) -> str:
    """Expose-Headers for an actual response; '*' with credentials lists the response's own names."""
    if not (rule.any_expose and rule.credentials):
        return rule.expose
    return _listed_names(tuple(name for name, _ in response_headers), rule.content.expose_headers)


@functools.lru_cache(maxsize=512)  # an upstream sends the same few sets of names again and again
def _listed_names(names: tuple[str, ...], configured: tuple[str, ...]) -> str:
    seen: dict[str, str] = {}
    for name in names:
        low = name.lower()
        # Only field names: with validate_inbound_headers off, mitmproxy passes any upstream name through.
        if is_token(name) and low not in _NEVER_EXPOSED and not low.startswith("access-control-"):
            seen.setdefault(low, name)
    for name in configured:
        if name != "*":
            seen.setdefault(name.lower(), name)
    return ",".join(seen.values())


def merge_vary(existing: Sequence[str], tokens: Sequence[str]) -> str | None:
    """Vary with tokens added (case-insensitively, never replacing); None when nothing changes."""
    current = split_list(existing)
    if "*" in current:
        return None
    have = {t.lower() for t in current}
    added = [t for t in tokens if t.lower() not in have]
    if not added:
        return None
    return ", ".join(current + added)


def _label(api: Api) -> str:
    where = api.host or "any host"
    return f"API {api.name!r} ({api.method} {api.path} {api.match_mode}, {where})"
