"""Generated policies and requests for the header and echo properties, run through the real glue.

Requests go through `Engine.decide` and the response headers are produced by
gateway.py's own `make_response`/`apply_edit`, so the properties judge the bytes a
client would receive, not an intermediate value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from mitmproxy import http

from addon.core.cors import Decision, Engine, RequestFacts
from addon.core.fields import split_list
from addon.gateway import apply_edit, make_response
from addon.core.policy import LoadedPolicy, Policy
from tests.property.origin_model import AllowList, Candidate, allow_lists, near_misses, spoil

METHOD_POOL = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "X-Custom", "patch")
HEADER_POOL = ("Content-Type", "Authorization", "X-Requested-With", "X-Sdk-Date", "x-lower", "X-Request-Id")
PLUGIN_APIS = ("all", "auth")  # the generated APIs that carry the CORS plug-in
API_PATHS = ("/", "/x", "/apig/x", "/simple/x", "/auth/x", "/off/x")


@dataclass(frozen=True)
class Setup:
    """A generated policy: its allow-list model, the CORS plug-in content and the compiled engine."""

    allow: AllowList
    content: dict[str, Any]
    engine: Engine

    @property
    def credentials(self) -> bool:
        return bool(self.content["allow_credentials"])


def _star_or(pool: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    """'*', a list from the pool, or '*' next to a name (the '*, Authorization' shape)."""
    return st.one_of(st.just(["*"]), st.lists(st.sampled_from(pool), max_size=4, unique=True), st.just(["*", pool[1]]))


_METHOD_LISTS = _star_or(METHOD_POOL)
_HEADER_LISTS = _star_or(HEADER_POOL)
_MAX_AGE = st.one_of(st.none(), st.integers(0, 10**6))
_PREFLIGHT = st.sampled_from(("answer", "forward"))
_PRECEDENCE = st.sampled_from(("backend", "gateway"))
_UNMATCHED = st.sampled_from(("pass", "reject"))
_API_PATH = st.sampled_from(API_PATHS)


@st.composite
def setups(draw: st.DrawFn, credentials: bool | None = None) -> Setup:
    """A policy with one CORS plug-in on every path, plus APIG Method-1, CORS-switch-only, auth and CORS-off APIs."""
    allow = draw(allow_lists())
    content = {
        "allow_origin": list(allow.entries),
        "allow_origin_regex": list(allow.regexes),
        "allow_null_origin": allow.allow_null,
        "allow_methods": draw(_METHOD_LISTS),
        "allow_headers": draw(_HEADER_LISTS),
        "expose_headers": draw(_HEADER_LISTS),
        "max_age": draw(_MAX_AGE),
        "allow_credentials": draw(st.booleans()) if credentials is None else credentials,
        "allow_private_network": draw(st.booleans()),
        "preflight": draw(_PREFLIGHT),
        "precedence": draw(_PRECEDENCE),
    }
    doc = {
        "version": 1,
        "gateway": {"request_id": draw(st.booleans()), "unmatched": draw(_UNMATCHED)},
        "plugins": {"web": {"type": "cors", "content": content}},
        "apis": [
            {"name": "all", "method": "ANY", "path": "/", "match_mode": "SWA", "cors": True, "plugins": ["web"]},
            {"name": "apig", "method": "OPTIONS", "path": "/apig", "match_mode": "SWA", "cors": True,
             "backend": {"type": "mock", "status": 200, "headers": {"Content-Type": "application/json"}}},
            {"name": "simple", "method": "ANY", "path": "/simple", "match_mode": "SWA", "cors": True},
            {"name": "auth", "method": "ANY", "path": "/auth", "match_mode": "SWA", "auth": "app", "plugins": ["web"]},
            {"name": "off", "method": "ANY", "path": "/off", "match_mode": "SWA"},
        ],
    }
    return Setup(allow, content, Engine(LoadedPolicy(Policy.model_validate(doc), "<generated>", "generated")))


def _repeat(unit: str, n: int) -> str:
    return unit * n


# Access-Control-Request-Method values: tokens, lower case, forbidden methods, junk, 64 KiB.
request_methods = st.one_of(
    st.sampled_from(["GET", "PUT", "PATCH", "patch", "DELETE", "CONNECT", "TRACE", "TRACK", "X-Custom", "*"]),
    st.sampled_from(["", " PUT", "PUT ", "PU T", "PUT\r\nX-Injected: 1", "PUT\r", "PUT\n", "PUT\x00", "PÜT",
                     "PUT,GET"]),
    st.text(max_size=20),
    st.builds(_repeat, st.sampled_from(["A", "PUT,", "\r\n"]), st.integers(1, 65536)),
)
_MAYBE_REQUEST_METHOD = st.one_of(st.none(), request_methods)

_HEADER_ITEM = st.one_of(
    st.sampled_from(HEADER_POOL),
    st.sampled_from(["CONTENT-TYPE", "content-type", "authorization", "AUTHORIZATION", "Cookie", "x-a"]),
    st.sampled_from(["", " ", "\t", "x y", "x\r\ny", "x\ry", "x\ny", "x\x00", "é", "a:b", "(x)", "x/y", '"x"',
                     "\udcff"]),
    st.text(max_size=12),
)
_SEPARATOR = st.sampled_from([",", ", ", " ,", ",,", ", ,\t"])
_ITEMS = st.lists(st.tuples(_HEADER_ITEM, _SEPARATOR), max_size=12)
_SHAPE = st.sampled_from(["items"] * 6 + ["thousands", "huge", "none"])
_THOUSANDS = st.integers(1000, 5000)
_HUGE_UNIT = st.sampled_from(["x", "x,", " , ", "a b"])
_HUGE_COUNT = st.integers(16384, 65536)
_REPEATS = st.integers(1, 3)
_SPOIL = st.integers(0, 5)


@st.composite
def request_header_values(draw: st.DrawFn) -> list[str]:
    """Raw Access-Control-Request-Headers field values (one or several fields): empty items, duplicates,
    whitespace, mixed case, thousands of names, 64 KiB values."""
    shape = draw(_SHAPE)
    if shape == "none":
        return []
    if shape == "thousands":
        return [",".join(f"x-h{i}" if i % 7 else "X-H0" for i in range(draw(_THOUSANDS)))]
    if shape == "huge":
        return [draw(_HUGE_UNIT) * draw(_HUGE_COUNT)]
    value = "".join(item + sep for item, sep in draw(_ITEMS))
    return [value] * draw(_REPEATS)  # the field repeated


def origins(draw: st.DrawFn, allow: AllowList) -> Candidate:
    cand = draw(near_misses(allow))
    return spoil(draw, cand) if draw(_SPOIL) == 0 else cand


@st.composite
def preflights(draw: st.DrawFn, setup: Setup) -> tuple[RequestFacts, Candidate]:
    cand = origins(draw, setup.allow)
    facts = RequestFacts(
        method="OPTIONS",
        host="api.example.com",
        path=draw(_API_PATH),
        origin=cand.value,
        request_method=draw(request_methods),
        request_headers=tuple(split_list(draw(request_header_values()))),
        private_network=draw(st.booleans()),
        authorization=draw(st.booleans()),
    )
    return facts, cand


_METHOD = st.one_of(st.sampled_from(["GET", "POST", "OPTIONS", "OPTIONS", "PUT", "patch", "CONNECT", "TRACE"]),
                    st.text(max_size=10))
_HOST = st.sampled_from(["api.example.com", "", "ÄPI", "a" * 300])
_ANY_PATH = st.one_of(_API_PATH, st.text(max_size=30).map(lambda t: "/" + t))


@st.composite
def any_requests(draw: st.DrawFn, setup: Setup, with_origin: bool = False) -> tuple[RequestFacts, Candidate | None]:
    """Any request: preflights, actual requests, OPTIONS without Origin, odd methods."""
    cand = origins(draw, setup.allow) if with_origin or draw(st.booleans()) else None
    acrm = draw(_MAYBE_REQUEST_METHOD)
    facts = RequestFacts(
        method=draw(_METHOD),
        host=draw(_HOST),
        path=draw(_ANY_PATH),
        origin=cand.value if cand else None,
        request_method=acrm if cand else None,
        request_headers=tuple(split_list(draw(request_header_values()))),
        private_network=draw(st.booleans()),
        authorization=draw(st.booleans()),
    )
    return facts, cand


backend_headers = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["Content-Type", "X-Backend", "Set-Cookie", "X-Trace-Id", "ETag"]), st.just("v")),
        st.tuples(st.just("Vary"), st.sampled_from(["Accept-Encoding", "*", "origin", "", "Accept, Origin"])),
        st.tuples(st.just("Access-Control-Allow-Origin"), st.sampled_from(["*", "https://backend.example"])),
    ),
    max_size=6,
)


def final_headers(
    setup: Setup, decision: Decision, backend: list[tuple[str, str]]
) -> tuple[int | None, list[tuple[str, str]]]:
    """The status and header fields the client receives, produced by gateway.py's functions.

    "respond": the gateway's own response (make_response). "forward": the backend's
    response decorated in responseheaders (apply_edit), as gateway.py does. "pass": untouched.
    """
    if decision.action == "respond":
        assert decision.response is not None
        response = make_response(decision.response, decision, setup.engine.policy.gateway.server)
        return response.status_code, _text(response.headers)
    headers = http.Headers([(k.encode(), v.encode()) for k, v in backend])
    if decision.action == "forward":
        apply_edit(headers, decision)
    return None, _text(headers)


def _text(headers: http.Headers) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.fields]


def field(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]
