"""`cors-export nginx` through real nginx, next to corsgate, in front of the same backend (issue 16, item 2).

Every exchange is sent to a real mitmdump with the policy and to real nginx running the policy's
`--standalone` export; status, Access-Control-* fields and values, Vary tokens and X-Request-Id must be
the same (tests/support/nginx.py: cors_view). APIG's three seed exchanges come first, then the rest of
DESIGN §4: routing precedence, plug-in preflights, origins, auth, mocks, reject, 403, 502/504, precedence.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.nginx import Nginx, cors_view, differences, unavailable_reason, warned_fields
from tests.support.procs import Backend, Proxy, free_port, http

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"nginx tests: {REASON}")

POLICIES = Path(__file__).resolve().parents[2] / "policies"
CORS_COM = "http://www.cors.com"
APP = "https://app.example.com"

# A policy that reaches every branch of cors.Engine.decide the shipped ones do not.
EVERYTHING = """\
version: 1
gateway: {request_id: true, server: api-gateway, unmatched: reject}
plugins:
  allow:
    type: cors
    content:
      allow_origin: "https://app.example.com,https://*.example.org:8443,null"
      allow_origin_regex: ["https://pr-[0-9]+\\\\.preview\\\\.example\\\\.com"]
      allow_null_origin: true
      allow_methods: GET,POST,PUT
      allow_headers: Content-Type,X-Sdk-Date
      expose_headers: X-Request-Id,X-Total
      max_age: 600
      allow_credentials: true
      allow_private_network: true
  echo:
    type: cors
    content:
      allow_origin: "*"
      allow_methods: "*"
      allow_headers: "*"
      allow_credentials: true
      precedence: gateway
  forward:
    type: cors
    content: {allow_origin: "*", allow_methods: "GET,DELETE", preflight: forward}
apis:
  - {name: items, method: ANY, path: /items, match_mode: SWA, plugins: [allow]}
  - {name: item, method: GET, path: "/items/{id}", plugins: [echo]}
  - {name: files, method: ANY, path: "/files/{path+}", plugins: [forward]}
  - {name: iam, method: ANY, path: /iam, auth: iam, cors: true}
  - {name: app, method: GET, path: /app, auth: app, plugins: [allow]}
  - name: mock
    method: ANY
    path: /mock
    cors: true
    backend: {type: mock, status: 418, body: '{"teapot": "$1"}', headers: {Content-Type: application/json, X-Mock: "yes"}}
  - {name: options-item, method: OPTIONS, path: "/items/special", cors: true, backend: {type: mock}}
  - {name: host-only, method: GET, path: /host, host: api.example.com, cors: true}
  - {name: any-host, method: GET, path: /host, plugins: [allow]}
  - {name: plain, method: GET, path: /plain}
"""


def _preflight(origin: str, method: str, headers: str = "", **extra: str) -> dict[str, str]:
    fields = {"Origin": origin, "Access-Control-Request-Method": method, **extra}
    if headers:
        fields["Access-Control-Request-Headers"] = headers
    return fields


Exchange = tuple[str, str, dict[str, str]]  # method, path with query, request headers

SEED_EXCHANGES: list[Exchange] = [
    # APIG's CORS page: the simple GET, the preflight with X-Sdk-Date, the PUT.
    ("GET", "/simple", {"Origin": CORS_COM}),
    ("OPTIONS", "/simple", _preflight(CORS_COM, "PUT", "X-Sdk-Date")),
    ("PUT", "/simple", {"Origin": CORS_COM, "X-Sdk-Date": "20261128T000000Z"}),
    # and around them
    ("OPTIONS", "/", _preflight(CORS_COM, "PUT", "X-Sdk-Date")),
    ("GET", f"/simple?acao={CORS_COM}", {"Origin": CORS_COM}),
    ("OPTIONS", "/simple", {"Origin": CORS_COM}),
    ("GET", "/simple", {}),
    ("POST", "/not-an-api?x=1", {"Origin": CORS_COM}),
    ("GET", "/simple?status=500", {"Origin": CORS_COM}),
]
EVERYTHING_EXCHANGES: list[Exchange] = [
    ("GET", "/items", {"Origin": APP}),
    ("GET", "/items/", {"Origin": "HTTPS://APP.example.com:443"}),
    ("POST", "/items/x/y?header=X-Total:3", {"Origin": "https://a.b.example.org:8443"}),
    ("GET", "/items", {"Origin": "https://example.org:8443"}),  # the apex is not a wildcard's
    ("GET", "/items", {"Origin": "https://pr-12.preview.example.com"}),
    ("GET", "/items", {"Origin": "https://pr-12.preview.example.com.evil.net"}),
    ("GET", "/items", {"Origin": "null"}),
    ("GET", "/items", {"Origin": "https://app.example.com/"}),
    ("GET", "/items", {"Origin": "https://1.2.3.04"}),
    ("OPTIONS", "/items", _preflight(APP, "PUT", "content-type,x-sdk-date")),
    ("OPTIONS", "/items", _preflight(APP, "DELETE", "authorization")),
    ("OPTIONS", "/items", _preflight("https://evil.net", "PUT")),
    ("OPTIONS", "/items", _preflight(APP, "GET", **{"Access-Control-Request-Private-Network": "true"})),
    ("OPTIONS", "/items/7", _preflight("http://localhost:3000", "GET", "x-a,x-b")),
    ("GET", f"/items/7?acao={APP}&header=Access-Control-Allow-Credentials:false", {"Origin": "http://localhost:3000"}),
    ("GET", f"/items/7?acao={APP}", {}),
    ("GET", f"/items?acao={APP}", {"Origin": "https://evil.net"}),
    ("GET", f"/items?acao={APP}&header=Vary:Accept", {"Origin": APP}),
    ("GET", "/items?header=Vary:*", {"Origin": APP}),
    ("OPTIONS", "/items/special", _preflight(APP, "GET")),  # an OPTIONS API more specific than the plug-in's
    ("OPTIONS", "/items/other", _preflight(APP, "GET")),
    ("OPTIONS", "/files/a/b", _preflight(APP, "DELETE")),  # preflight: forward
    ("DELETE", "/files/a/b", {"Origin": APP}),
    ("GET", "/files", {"Origin": APP}),  # {path+} needs a segment: unmatched, reject
    ("GET", "/iam", {"Origin": APP}),
    ("GET", "/iam", {"Origin": APP, "Authorization": "x"}),
    ("OPTIONS", "/iam", _preflight(APP, "GET")),
    ("GET", "/app", {"Origin": APP}),
    ("OPTIONS", "/app", _preflight(APP, "GET")),
    ("POST", "/mock", {"Origin": APP}),
    ("GET", "/host", {"Origin": APP, "Host": "api.example.com"}),
    ("GET", "/host", {"Origin": APP, "Host": "other.example.com"}),
    ("GET", "/plain", {"Origin": APP}),
    ("GET", "/nothing", {"Origin": APP}),
    ("OPTIONS", "/nothing", _preflight(APP, "GET")),
]


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    with Backend() as server:
        yield server


def _pair(policy: str | os.PathLike[str], upstream: str, extra: Sequence[str] = ()) -> tuple[Proxy, Nginx]:
    """corsgate and nginx with the same policy in front of the same upstream."""
    proxy = Proxy(policy, mode=f"reverse:{upstream}", extra=extra)
    try:
        return proxy, Nginx(policy, upstream)
    except BaseException:
        proxy.stop()
        raise


def _both(pair: tuple[Proxy, Nginx], exchanges: Sequence[Exchange]) -> list[str]:
    """Send each exchange to corsgate and to nginx; the differences, one line per exchange that differs."""
    proxy, nginx = pair
    problems = []
    for method, path, headers in exchanges:
        body = None if method in ("GET", "OPTIONS") else "{}"
        a_status, a_headers, a_body = http(method, proxy.url + path, headers, body=body)
        b_status, b_headers, b_body = http(method, nginx.url + path, headers, body=body)
        found = differences(cors_view(a_status, a_headers), cors_view(b_status, b_headers),
                            warned_fields(nginx.warnings))
        found += _made_differences(a_headers, a_body, b_headers, b_body)
        if found:
            problems.append(f"{method} {path} {headers}: " + "; ".join(found))
    return problems


def _made_differences(a_headers: list[tuple[str, str]], a_body: bytes, b_headers: list[tuple[str, str]],
                      b_body: bytes) -> list[str]:
    """For gateway-made answers: the same Server, Content-Type and body (APIG error codes, request id)."""
    def server(headers: list[tuple[str, str]]) -> list[str]:
        return [v for k, v in headers if k.lower() == "server"]

    if server(a_headers) != ["api-gateway"]:
        return []
    out = [] if server(b_headers) == ["api-gateway"] else [f"Server: nginx {server(b_headers)}"]
    ct_a = [v for k, v in a_headers if k.lower() == "content-type"]
    ct_b = [v for k, v in b_headers if k.lower() == "content-type"]
    if ct_a != ct_b:
        out.append(f"Content-Type: corsgate {ct_a}, nginx {ct_b}")
    if ct_a == ["application/json"] and a_body.startswith(b'{"error_code"'):
        a, b = json.loads(a_body), json.loads(b_body)
        rid = next(v for k, v in b_headers if k.lower() == "x-request-id")
        if a["error_code"] != b["error_code"] or b["request_id"] != rid:
            out.append(f"body: corsgate {a}, nginx {b}")
    elif a_body != b_body:
        out.append(f"body: corsgate {a_body!r}, nginx {b_body!r}")
    return out


def test_seed_exchanges_header_by_header(backend: Backend) -> None:
    proxy, nginx = pair = _pair(POLICIES / "apig-seed.yaml", backend.url)
    with proxy, nginx:
        assert _both(pair, SEED_EXCHANGES) == []
        # The preflight really was answered by nginx, with APIG's fixed set.
        status, headers, _ = http("OPTIONS", nginx.url + "/simple", _preflight(CORS_COM, "PUT", "X-Sdk-Date"))
        assert status == 200 and ("Access-Control-Max-Age", "172800") in headers


@pytest.mark.parametrize("name", ["default.yaml", "apig-default.yaml", "strict-allowlist.yaml"])
def test_shipped_policies_answer_alike(backend: Backend, name: str) -> None:
    exchanges = SEED_EXCHANGES + [
        ("GET", "/api/users", {"Origin": APP}), ("GET", "/api/users", {"Origin": "https://evil.example.net"}),
        ("OPTIONS", "/api/users", _preflight(APP, "PUT", "content-type")),
        ("OPTIONS", "/api/users", _preflight("https://evil.example.net", "PUT")),
        ("GET", f"/api/users?acao={APP}", {"Origin": "https://x.example.com"}),
    ]
    pair = _pair(POLICIES / name, backend.url)
    with pair[0], pair[1]:
        assert _both(pair, exchanges) == []


def _by_host(backend: Backend, policy: Path, text: str) -> tuple[Proxy, Nginx]:
    """_pair for a policy text that routes by host. keep_host_header: in reverse mode mitmproxy otherwise
    rewrites Host to the upstream's before corsgate routes, while nginx routes by the client's Host, as APIG
    does by domain."""
    policy.write_text(text)
    return _pair(policy, backend.url, ("--set", "keep_host_header=true"))


def test_everything_answers_alike(backend: Backend, tmp_path: Path) -> None:
    proxy, nginx = pair = _by_host(backend, tmp_path / "everything.yaml", EVERYTHING)
    with proxy, nginx:
        assert _both(pair, EVERYTHING_EXCHANGES) == []
        # Access-Control-Request-Headers is echoed only as valid tokens, never raw: corsgate drops the bad
        # item, nginx (which cannot loop over a list) echoes nothing, as the exporter warns.
        asked = _preflight("http://localhost:3000", "GET", "x-a, bad\"header")
        for url, echoed in ((proxy.url, ["x-a"]), (nginx.url, [])):
            status, headers, _ = http("OPTIONS", url + "/items/7", asked)
            assert status == 200 and [v for k, v in headers if k == "Access-Control-Allow-Headers"] == echoed


@pytest.mark.parametrize("name", ["apig-seed.yaml", "default.yaml"])
def test_unreachable_upstream_is_a_cors_readable_502(tmp_path: Path, name: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxy, nginx = pair = _pair(POLICIES / name, dead)
    with proxy, nginx:
        assert _both(pair, [("GET", "/simple", {"Origin": CORS_COM}), ("PUT", "/simple", {"Origin": CORS_COM})]) == []
        status, headers, body = http("GET", nginx.url + "/simple", {"Origin": CORS_COM})
    assert status == 502 and json.loads(body)["error_code"] == "APIG.0201"
    assert [v for k, v in headers if k == "Access-Control-Allow-Origin"] == (["*"] if "seed" in name else [CORS_COM])


# Issue 18's shapes: set_resp_headers (all five actions, on upstream duplicates and on a mock), a regex-only
# and an admits-nothing plug-in, a group bound to a domain, HTTP- and HTTPS-only APIs (nginx listens on
# plain HTTP, as the mitmdump here does: an HTTPS-only API is missed by both).
ISSUE18 = """\
version: 1
gateway: {request_id: true, server: api-gateway}
groups:
  shop: {domains: [shop.example.com]}
plugins:
  web:
    type: cors
    content: {allow_origin: "https://app.example.com", allow_methods: "GET,PUT",
              expose_headers: "X-Override,X-Append,X-Skip,X-Add,X-Absent-Skip"}
  previews:
    type: cors
    content: {allow_origin_regex: ["https://pr-[0-9]+\\\\.preview\\\\.example\\\\.com"], allow_methods: "GET,PUT"}
  nobody:
    type: cors
    content: {allow_methods: GET}
  headers:
    type: set_resp_headers
    content:  # names in other cases than the backend's: matched case-insensitively, as corsgate does
      response_headers: [{name: x-override, value: mine, action: override}, {name: X-APPEND, value: "mi$ne",
                          action: append}, {name: x-delete, action: delete}, {name: x-skip, value: mine, action: skip},
                         {name: X-add, value: mine, action: add}, {name: X-Absent-Skip, value: mine, action: skip}]
apis:
  - {name: up, method: ANY, path: /up, match_mode: SWA, plugins: [web, headers]}
  - {name: mock, method: GET, path: /mock, plugins: [web, headers],
     backend: {type: mock, headers: {X-Override: m, X-Delete: m, X-Skip: m, X-Add: m}}}
  - {name: locked, method: GET, path: /locked, auth: app, plugins: [web, headers]}
  - {name: previews, method: ANY, path: /previews, plugins: [previews]}
  - {name: nobody, method: ANY, path: /nobody, plugins: [nobody]}
  - {name: shop, method: GET, path: /shop, group: shop, plugins: [web]}
  - {name: shop-any, method: GET, path: /shop, cors: true}
  - {name: tls, method: GET, path: /tls, req_protocol: HTTPS, plugins: [web]}
  - {name: tls-any, method: ANY, path: /tls}
  - {name: http-only, method: GET, path: /http, req_protocol: HTTP, cors: true}
"""
EDITED = ("X-Override", "X-Append", "X-Delete", "X-Skip", "X-Add", "X-Absent-Skip")
DUPLICATES = "&".join(f"header={k}:{v}" for k in EDITED[:-1] for v in ("1", "2"))
SINGLES = "&".join(f"header={k}:1" for k in EDITED[:-1])
PREVIEW = "https://pr-12.preview.example.com"
ISSUE18_EXCHANGES: list[Exchange] = [
    ("GET", f"/up?{SINGLES}", {"Origin": APP}),
    ("PUT", f"/up/x?{SINGLES}&status=500", {"Origin": APP}),  # upstream errors are edited too
    ("GET", "/up", {"Origin": APP}),
    ("GET", "/mock", {"Origin": APP}),
    ("GET", "/locked", {"Origin": APP}),  # a gateway-made 401: not edited
    ("OPTIONS", "/up", _preflight(APP, "PUT")),  # a gateway-answered preflight: not edited
    ("GET", "/previews", {"Origin": PREVIEW}),
    ("GET", "/previews", {"Origin": PREVIEW + ".evil.net"}),
    ("GET", "/previews", {"Origin": "https://preview.example.com"}),
    ("OPTIONS", "/previews", _preflight(PREVIEW, "PUT")),
    ("OPTIONS", "/previews", _preflight("https://pr-1.preview.example.com.evil.net", "PUT")),
    ("GET", "/nobody", {"Origin": APP}),
    ("OPTIONS", "/nobody", _preflight(APP, "GET")),
    ("GET", "/shop", {"Origin": APP, "Host": "shop.example.com"}),
    ("GET", "/shop", {"Origin": APP, "Host": "other.example.com"}),
    ("GET", "/tls", {"Origin": APP}),
    ("GET", "/http", {"Origin": APP}),
]


def _edited(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    return {n: [v for k, v in headers if k.lower() == n.lower()] for n in EDITED}


def test_issue18_shapes_answer_alike(backend: Backend, tmp_path: Path) -> None:
    proxy, nginx = pair = _by_host(backend, tmp_path / "issue18.yaml", ISSUE18)
    with proxy, nginx:
        assert _both(pair, ISSUE18_EXCHANGES) == []
        for method, path, headers in ISSUE18_EXCHANGES:  # the plug-in's headers, field by field
            a = _edited(http(method, proxy.url + path, headers)[1])
            b = _edited(http(method, nginx.url + path, headers)[1])
            assert a == b, (method, path)
        assert _edited(http("GET", f"{nginx.url}/up?{SINGLES}", {"Origin": APP})[1]) == {
            "X-Override": ["mine"], "X-Append": ["1,mi$ne"], "X-Delete": [], "X-Skip": ["1"], "X-Add": ["1", "mine"],
            "X-Absent-Skip": ["mine"]}
        # The backend's duplicate fields: exact but for what the exporter warns about (nginx 1.22 reads one
        # field per name): append joins only the first, and a hidden name is put back as its first field only.
        a = _edited(http("GET", f"{proxy.url}/up?{DUPLICATES}", {"Origin": APP})[1])
        b = _edited(http("GET", f"{nginx.url}/up?{DUPLICATES}", {"Origin": APP})[1])
        assert a["X-Append"] == ["1,2,mi$ne"] and b["X-Append"] == ["1,mi$ne"]
        assert {k: v for k, v in a.items() if k != "X-Append"} == {k: v for k, v in b.items() if k != "X-Append"}
        a = _edited(http("GET", f"{proxy.url}/previews?{DUPLICATES}", {"Origin": APP})[1])
        b = _edited(http("GET", f"{nginx.url}/previews?{DUPLICATES}", {"Origin": APP})[1])
        assert a["X-Override"] == ["1", "2"] and b["X-Override"] == ["1"] and a["X-Skip"] == b["X-Skip"] == ["1", "2"]
    line = {word: 1 + ISSUE18[:ISSUE18.index(word)].count("\n") for word in ("action: append", "protocol: HTTPS")}
    assert f"{line['action: append']}: plugins.headers.content.response_headers[1].action: append" in nginx.warnings
    assert f"issue18.yaml:{line['protocol: HTTPS']}: apis[7].req_protocol: HTTPS" in nginx.warnings
