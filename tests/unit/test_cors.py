"""The CORS engine, rule by rule (DESIGN §4.2-4.4), on plain values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from addon.core.cors import APIG_PREFLIGHT_HEADERS, Decision, Engine, RequestFacts, merge_vary, response_edit
from addon.core.origins import OriginMatcher, parse_origin, parse_origin_rule
from addon.core.policy import load_policy, parse_policy

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ORIGIN = "https://app.example.com"


def engine(content: str = "", apis: str = "", gateway: str = "") -> Engine:
    text = "version: 1\n"
    if gateway:
        text += f"gateway: {gateway}\n"
    if content:
        text += f"plugins:\n  web:\n    type: cors\n    content: {content}\n"
    text += "apis:\n" + (apis or "  - {name: api, method: ANY, path: /, match_mode: SWA, plugins: [web]}\n")
    return Engine(parse_policy(text))


def preflight(e: Engine, origin: str = ORIGIN, method: str = "PUT", headers: tuple[str, ...] = (),
              path: str = "/x", pna: bool = False) -> Decision:
    return e.decide(RequestFacts("OPTIONS", "h", path, origin, method, headers, pna))


def actual(e: Engine, origin: str | None = ORIGIN, method: str = "GET", path: str = "/x",
           auth: bool = False) -> Decision:
    return e.decide(RequestFacts(method, "h", path, origin, authorization=auth))


def hdrs(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        assert k.lower() not in out, f"duplicate header {k}"
        out[k.lower()] = v
    return out


def decorated(d: Decision, backend: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """The final headers of a forwarded request's response, applied the way gateway.py applies them."""
    headers = list(backend or [])
    edit = response_edit(d.cors, headers)
    if edit.strip_cors:
        headers = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
    out = {k.lower(): v for k, v in headers}
    for k, v in edit.set:
        out[k.lower()] = v
    if edit.vary:
        merged = merge_vary([out["vary"]] if "vary" in out else [], edit.vary)
        if merged:
            out["vary"] = merged
    return out


# -- preflight detection ---------------------------------------------------------------------------

def test_preflight_needs_options_origin_and_request_method() -> None:
    assert RequestFacts("OPTIONS", "h", "/", ORIGIN, "PUT").preflight
    assert not RequestFacts("OPTIONS", "h", "/", ORIGIN, None).preflight
    assert not RequestFacts("OPTIONS", "h", "/", None, "PUT").preflight
    assert not RequestFacts("GET", "h", "/", ORIGIN, "PUT").preflight


def test_non_preflight_options_is_forwarded() -> None:
    e = engine("{allow_origin: '*'}")
    d = e.decide(RequestFacts("OPTIONS", "h", "/x", ORIGIN))
    assert d.action == "forward"


# -- plug-in preflight -----------------------------------------------------------------------------

def test_plugin_answers_preflight_with_configured_lists() -> None:
    e = engine("{allow_origin: 'https://app.example.com,https://b.example.com', allow_methods: 'GET,PUT', "
               "allow_headers: 'Content-Type,X-Sdk-Date', expose_headers: X-Request-Id, max_age: 600}")
    d = preflight(e, headers=("x-sdk-date",))
    assert d.action == "respond" and d.response is not None and d.response.status == 200
    h = hdrs(d.response.headers)
    assert h["access-control-allow-origin"] == ORIGIN
    assert h["access-control-allow-methods"] == "GET,PUT"
    assert h["access-control-allow-headers"] == "Content-Type,X-Sdk-Date"
    assert h["access-control-max-age"] == "600"
    assert h["access-control-expose-headers"] == "X-Request-Id"
    assert "access-control-allow-credentials" not in h
    assert h["vary"] == "Origin"


def test_disallowed_origin_preflight_is_403_json_without_cors_headers() -> None:
    e = engine("{allow_origin: 'https://app.example.com', allow_methods: GET}")
    d = preflight(e, origin="https://evil.example.net")
    assert d.response is not None and d.response.status == 403
    assert not any(k.lower().startswith("access-control-") for k, _ in d.response.headers)
    body = json.loads(d.response.body)
    assert set(body) == {"error_code", "error_msg", "request_id"}
    assert "https://evil.example.net" in body["error_msg"]
    assert any("not allowed" in step for step in d.trail)


def test_method_not_allowed_still_200_with_configured_list_not_echo() -> None:
    e = engine("{allow_origin: '*', allow_methods: 'GET,POST', allow_headers: Content-Type}")
    d = preflight(e, method="DELETE", headers=("x-custom",))
    assert d.response is not None and d.response.status == 200
    h = hdrs(d.response.headers)
    assert h["access-control-allow-methods"] == "GET,POST"
    assert h["access-control-allow-headers"] == "Content-Type"
    assert any("method DELETE is not in allow_methods" in s for s in d.trail)
    assert any("header x-custom is not in allow_headers" in s for s in d.trail)


def test_credentials_echo_every_star() -> None:
    e = engine("{allow_origin: '*', allow_methods: '*', allow_headers: '*', expose_headers: '*', "
               "allow_credentials: true}")
    d = preflight(e, method="PATCH", headers=("authorization", "x-sdk-date"))
    assert d.response is not None
    h = hdrs(d.response.headers)
    assert h["access-control-allow-origin"] == ORIGIN
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-allow-methods"] == "PATCH"
    assert h["access-control-allow-headers"] == "authorization,x-sdk-date"
    assert "access-control-expose-headers" not in h  # '*' with credentials has no names to list on a preflight
    assert h["vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def test_star_without_credentials_is_sent_literally() -> None:
    e = engine("{allow_origin: '*', allow_methods: '*', allow_headers: '*'}")
    d = preflight(e, headers=("authorization",))
    assert d.response is not None
    h = hdrs(d.response.headers)
    assert h["access-control-allow-origin"] == "*"
    assert h["access-control-allow-headers"] == "*"
    assert "vary" not in h
    assert any("header authorization is not in allow_headers" in s for s in d.trail)


def test_echo_never_reflects_non_tokens() -> None:
    e = engine("{allow_origin: '*', allow_methods: '*', allow_headers: '*', allow_credentials: true}")
    d = preflight(e, method="GET\r\nX: y", headers=("ok-name", "bad name", "x\"y"))
    assert d.response is not None
    h = hdrs(d.response.headers)
    assert h["access-control-allow-methods"] == "*"  # the configured list, not the reflected junk
    assert h["access-control-allow-headers"] == "ok-name"


def test_private_network_only_when_requested_and_allowed() -> None:
    on = engine("{allow_origin: '*', allow_private_network: true}")
    off = engine("{allow_origin: '*'}")
    assert ("Access-Control-Allow-Private-Network", "true") in preflight(on, pna=True).response.headers  # type: ignore[union-attr]
    assert "access-control-allow-private-network" not in hdrs(preflight(on).response.headers)  # type: ignore[union-attr]
    assert "access-control-allow-private-network" not in hdrs(preflight(off, pna=True).response.headers)  # type: ignore[union-attr]


def test_preflight_forward_mode_decorates_upstream_answer() -> None:
    e = engine("{allow_origin: 'https://app.example.com', allow_methods: PUT, preflight: forward}")
    d = preflight(e)
    assert d.action == "forward"
    h = decorated(d, [("Allow", "GET, PUT")])
    assert h["access-control-allow-origin"] == ORIGIN
    assert h["access-control-allow-methods"] == "PUT"


# -- APIG Method 1 and the simple switch -----------------------------------------------------------

def test_apig_method1_fixed_preflight_set() -> None:
    e = Engine(load_policy(POLICIES / "apig-seed.yaml"))
    d = preflight(e, origin="http://www.cors.com", headers=("X-Sdk-Date",), path="/simple")
    assert d.action == "respond" and d.response is not None and d.response.status == 200
    assert d.cors is not None and d.cors.kind == "apig-preflight"
    assert response_edit(d.cors, list(d.response.headers)).set == APIG_PREFLIGHT_HEADERS


def test_simple_switch_is_scenario_1() -> None:
    e = Engine(load_policy(POLICIES / "apig-seed.yaml"))
    d = actual(e, origin="http://www.cors.com", path="/simple")
    assert d.action == "forward" and d.request_id and len(d.request_id) == 32
    assert decorated(d) == {"access-control-allow-origin": "*"}


def test_backend_cors_headers_win_scenario_2() -> None:
    e = Engine(load_policy(POLICIES / "apig-seed.yaml"))
    d = actual(e, origin="http://www.cors.com", path="/simple")
    assert decorated(d, [("Access-Control-Allow-Origin", "http://www.cors.com")]) == {
        "access-control-allow-origin": "http://www.cors.com"
    }


def test_preflight_on_cors_api_without_plugin_or_options_api_gets_only_acao_star() -> None:
    e = engine(apis="  - {name: any, method: ANY, path: /, match_mode: SWA, cors: true}\n")
    d = preflight(e)
    assert d.action == "forward"
    assert decorated(d) == {"access-control-allow-origin": "*"}
    assert any("not enough for a preflight" in s for s in d.trail)


def test_preflight_without_any_api() -> None:
    passing = engine(apis="  - {name: a, method: GET, path: /only, cors: true}\n")
    assert preflight(passing).action == "pass"
    rejecting = engine(apis="  - {name: a, method: GET, path: /only, cors: true}\n", gateway="{unmatched: reject}")
    d = preflight(rejecting)
    assert d.response is not None and d.response.status == 404
    assert json.loads(d.response.body)["error_code"] == "APIG.0101"
    assert d.cors is None
    assert any("OPTIONS API" in s for s in d.trail)


def test_plugin_beats_simple_switch() -> None:
    e = engine("{allow_origin: 'https://app.example.com'}",
               "  - {name: a, method: GET, path: /x, cors: true, plugins: [web]}\n")
    assert decorated(actual(e)) == {"access-control-allow-origin": ORIGIN, "vary": "Origin"}


def test_more_specific_options_api_beats_plugin_on_shorter_path() -> None:
    e = engine("{allow_origin: '*'}",
               "  - {name: a, method: ANY, path: /, match_mode: SWA, plugins: [web]}\n"
               "  - {name: o, method: OPTIONS, path: /x, cors: true, backend: {type: mock}}\n")
    assert preflight(e).cors.kind == "apig-preflight"  # type: ignore[union-attr]
    assert preflight(e, path="/y").response.headers[0] == ("Access-Control-Allow-Origin", "*")  # type: ignore[union-attr]


# -- actual requests -------------------------------------------------------------------------------

def test_actual_with_plugin_several_origins_echo_and_vary() -> None:
    e = engine("{allow_origin: 'https://app.example.com,https://*.example.org', expose_headers: X-Request-Id}")
    h = decorated(actual(e, origin="https://a.b.example.org"), [("Vary", "Accept-Encoding")])
    assert h["access-control-allow-origin"] == "https://a.b.example.org"
    assert h["access-control-expose-headers"] == "X-Request-Id"
    assert h["vary"] == "Accept-Encoding, Origin"


def test_actual_disallowed_origin_gets_nothing_but_vary() -> None:
    e = engine("{allow_origin: 'https://app.example.com'}")
    d = actual(e, origin="https://evil.example.net")
    assert d.action == "forward"
    assert decorated(d) == {"vary": "Origin"}


def test_precedence_gateway_strips_backend_cors() -> None:
    e = engine("{allow_origin: 'https://app.example.com', precedence: gateway}")
    backend = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET")]
    assert decorated(actual(e), backend) == {"access-control-allow-origin": ORIGIN, "vary": "Origin"}
    assert decorated(actual(e, origin="https://evil.example.net"), backend) == {"vary": "Origin"}


def test_precedence_backend_keeps_backend_set_whole() -> None:
    e = engine("{allow_origin: 'https://app.example.com', allow_credentials: true}")
    backend = [("Access-Control-Allow-Origin", "https://other.example.com")]
    assert decorated(actual(e), backend) == {"access-control-allow-origin": "https://other.example.com"}


def test_expose_star_with_credentials_lists_response_names() -> None:
    e = engine("{allow_origin: '*', expose_headers: '*', allow_credentials: true}")
    backend = [("X-Request-Id", "1"), ("Set-Cookie", "a=b"), ("Content-Type", "text/plain"), ("x-request-id", "2")]
    h = decorated(actual(e), backend)
    assert h["access-control-expose-headers"] == "X-Request-Id,Content-Type"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-allow-origin"] == ORIGIN


def test_no_origin_no_cors_headers_but_request_id() -> None:
    e = Engine(load_policy(POLICIES / "apig-seed.yaml"))
    d = actual(e, origin=None, path="/simple")
    assert d.cors is None and d.request_id
    assert response_edit(d.cors, []).set == ()


def test_auth_api_without_authorization_is_401_with_cors() -> None:
    e = engine("{allow_origin: 'https://app.example.com'}",
               "  - {name: a, method: GET, path: /x, auth: app, plugins: [web]}\n")
    d = actual(e)
    assert d.response is not None and d.response.status == 401
    assert json.loads(d.response.body)["error_code"] == "APIG.0303"
    assert decorated(d)["access-control-allow-origin"] == ORIGIN
    assert actual(e, auth=True).action == "forward"


def test_mock_backend_answers_with_cors() -> None:
    e = engine(apis="  - {name: m, method: GET, path: /x, cors: true, backend: {type: mock, status: 418, body: tea}}\n")
    d = actual(e)
    assert d.response is not None and d.response.status == 418 and d.response.body == b"tea"
    assert decorated(d) == {"access-control-allow-origin": "*"}


def test_request_id_off() -> None:
    e = engine("{allow_origin: '*'}", gateway="{request_id: false}")
    assert actual(e).request_id is None


# -- Vary ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("existing", "tokens", "merged"),
    [
        ([], ["Origin"], "Origin"),
        (["Accept-Encoding"], ["Origin"], "Accept-Encoding, Origin"),
        (["origin"], ["Origin"], None),
        (["*"], ["Origin"], None),
        (["A", "B, origin"], ["Origin", "X"], "A, B, origin, X"),
    ],
)
def test_merge_vary(existing: list[str], tokens: list[str], merged: str | None) -> None:
    assert merge_vary(existing, tokens) == merged


# -- origins ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("rules", "origin", "admitted"),
    [
        (("https://app.example.com",), "https://app.example.com", True),
        (("https://app.example.com",), "https://APP.example.com", True),
        (("https://app.example.com",), "https://app.example.com:443", True),
        (("https://app.example.com",), "http://app.example.com", False),
        (("https://app.example.com",), "https://app.example.com:8443", False),
        (("https://app.example.com",), "https://app.example.com.evil.net", False),
        (("https://app.example.com/",), "https://app.example.com", True),
        (("https://*.example.com",), "https://a.example.com", True),
        (("https://*.example.com",), "https://a.b.example.com", True),
        (("https://*.example.com",), "https://example.com", False),
        (("https://*.example.com",), "https://badexample.com", False),
        (("https://*.example.com",), "https://a.example.com.evil.net", False),
        (("https://*.example.com",), "https://evil.net#.example.com", False),
        (("https://*.example.com",), "https://evil.net/.example.com", False),
        (("https://*.example.com",), "https://user@a.example.com", False),
        (("https://*.example.com",), "https://a.example.com:8443", False),
        (("*",), "null", False),
        (("*",), "https://anything.test", True),
        (("*",), "not an origin", False),
    ],
)
def test_origin_rules(rules: tuple[str, ...], origin: str, admitted: bool) -> None:
    assert (OriginMatcher(rules).match(origin) is not None) is admitted


def test_null_and_regex_origins() -> None:
    m = OriginMatcher(("https://a.example.com",), (r"https://pr-[0-9]+\.preview\.example\.com",), allow_null=True)
    assert m.match("null") == "allow_null_origin"
    assert m.match("https://pr-12.preview.example.com")
    assert m.match("https://pr-12.preview.example.com.evil.net") is None  # matched in full


@pytest.mark.parametrize("rule", ["https://a.com/path", "https://*.com*", "*.example.com", "https://a.*.com", "ftp:/x"])
def test_bad_origin_rules(rule: str) -> None:
    with pytest.raises(ValueError):
        parse_origin_rule(rule)


def test_parse_origin_canonical() -> None:
    assert str(parse_origin("HTTPS://A.Example.COM:443")) == "https://a.example.com"
    assert str(parse_origin("http://a:8080")) == "http://a:8080"
    assert parse_origin("https://a.com/") is None
    assert parse_origin("https://a.com:99999") is None
