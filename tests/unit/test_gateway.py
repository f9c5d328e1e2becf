"""The addon's hooks and options with mitmproxy's own test helpers (taddons/tflow), no network."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from mitmproxy import exceptions, hooks, http
from mitmproxy.addons.script import load_script
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHeadersHook, HttpResponseHook
from mitmproxy.test import taddons, tflow, tutils

from addon.core.cors import Decision
from addon.gateway import BLOCKED_MARK, CorsGateway, made_fields, make_response, parse_flag, request_facts
from addon.core.responses import GatewayResponse

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
ORIGIN = "http://localhost:5173"


def flow(method: str = "GET", path: str = "/simple", headers: dict[str, str] | None = None) -> http.HTTPFlow:
    req = tutils.treq(method=method.encode(), path=path.encode(), headers=http.Headers(**(headers or {})))
    return tflow.tflow(req=req)


def run(addon: CorsGateway, f: http.HTTPFlow, response: http.Response | None = None) -> http.HTTPFlow:
    """request -> (upstream response) -> responseheaders -> response, as the proxy runs them."""
    addon._up_until[(f.request.host, f.request.port)] = float("inf")  # no upstream probe in unit tests
    asyncio.run(addon.request(f))
    if f.response is None:
        f.response = response or tutils.tresp(headers=http.Headers(content_type="text/plain"))
    addon.responseheaders(f)
    addon.response(f)
    return f


@pytest.fixture
def gw():
    addon = CorsGateway()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_policy=str(POLICIES / "apig-seed.yaml"))
        yield addon, tctx


def test_options_are_validated_in_configure(gw) -> None:
    addon, tctx = gw
    with pytest.raises(exceptions.OptionsError, match="cors_mode must be one of"):
        tctx.configure(addon, cors_mode="zzz")
    with pytest.raises(exceptions.OptionsError, match="cors_reload must be true or false"):
        tctx.configure(addon, cors_reload="maybe")
    with pytest.raises(exceptions.OptionsError, match="Cannot load cors_policy"):
        tctx.configure(addon, cors_policy="/nonexistent.yaml")
    assert addon.engine is not None and addon.engine.loaded.source.endswith("apig-seed.yaml")  # last good kept


@pytest.mark.parametrize(("text", "value"), [("true", True), ("OFF", False), ("1", True), ("no", False)])
def test_parse_flag(text: str, value: bool) -> None:
    assert parse_flag("x", text) is value


def test_the_script_module_has_every_hook_name_yet_mitmproxy_calls_only_the_gateways_hooks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The entry point binds the hook names it lacks to None (a found attribute, not a costly miss on 3.11);
    through mitmproxy's own AddonManager, a flow still reaches exactly the gateway's hooks, with no warning."""
    ns = load_script(str(ROOT / "addon" / "cors_gateway.py"))
    assert ns is not None
    unbound = [name for name in hooks.all_hooks if name != "add_log" and getattr(ns, name, "missing") is not None]
    assert unbound == []
    assert not hasattr(ns, "add_log")  # mitmproxy warns about any addon that has it
    gateway = ns.addons[0]
    with taddons.context() as tctx, caplog.at_level(logging.WARNING):
        tctx.master.addons.add(ns)
        tctx.configure(gateway, cors_policy=str(POLICIES / "apig-seed.yaml"))
        assert [r.getMessage() for r in caplog.records] == []
        f = flow(headers={"Origin": ORIGIN})
        gateway._up_until[(f.request.host, f.request.port)] = float("inf")
        called = [
            [func for _, func in tctx.master.addons._iter_hooks(ns, event)]
            for event in (HttpRequestHook(f), hooks.UpdateHook([f]), HttpResponseHook(f))
        ]
        assert called == [[gateway.request], [], [gateway.response]]

        async def lifecycle() -> None:
            await tctx.master.addons.handle_lifecycle(HttpRequestHook(f))
            f.response = tutils.tresp(headers=http.Headers(content_type="text/plain"))
            await tctx.master.addons.handle_lifecycle(HttpResponseHeadersHook(f))
            await tctx.master.addons.handle_lifecycle(HttpResponseHook(f))

        asyncio.run(lifecycle())
    assert f.response.headers["access-control-allow-origin"] == "*"  # apig-seed.yaml, /simple
    assert f.comment.startswith("CORS actual: ok")


def test_preflight_answered_in_request_and_not_decorated_twice(gw) -> None:
    addon, _ = gw
    f = run(addon, flow("OPTIONS", "/simple", {"origin": ORIGIN, "access_control_request_method": "PUT"}))
    assert f.response is not None and f.response.status_code == 200
    assert f.response.headers.get_all("access-control-allow-origin") == ["*"]
    assert f.response.headers["access-control-max-age"] == "172800"
    assert f.metadata["corsgate.answered"] is True
    assert "Method 1" in " ".join(f.metadata["corsgate.trail"])
    assert f.comment.startswith("CORS preflight: ok")


def test_gateway_responses_are_what_the_constructor_builds_and_share_nothing() -> None:
    """make_response copies a template instead of calling http.Response() (see gateway._TEMPLATE), with
    fields remembered per gateway-made response (made_fields) unless each has its own request id."""
    made_fields.cache_clear()
    made = GatewayResponse(404, (("Content-Type", "application/json"),), b'{"error_code": "APIG.0101"}')
    first = make_response(made, Decision("respond", response=made, request_id="ab" * 16), "api-gateway")
    assert made_fields.cache_info().currsize == 0
    second = make_response(GatewayResponse(204, (), b""), Decision("respond"), None)
    again = make_response(GatewayResponse(204, (), b""), Decision("respond"), None)
    assert made_fields.cache_info().hits == 1
    again.headers["x-again"] = "1"
    expected = http.Response(
        b"HTTP/1.1", 404, b"Not Found",
        http.Headers([(b"Content-Type", b"application/json"), (b"X-Request-Id", b"ab" * 16),
                      (b"Server", b"api-gateway"), (b"content-length", b"27")]),
        b'{"error_code": "APIG.0101"}', None, first.timestamp_start, first.timestamp_end,
    )
    assert first.get_state() == expected.get_state()
    first.headers["x-changed"] = "1"
    first.content = b"changed"
    assert (second.status_code, second.reason, second.headers.fields, second.content) == (
        204, "No Content", ((b"content-length", b"0"),), b"")
    assert first.data is not second.data and first.headers is not second.headers
    assert again.headers is not second.headers  # the remembered fields are shared, the Headers are not


def test_decisions_are_remembered_per_policy_and_never_with_request_ids(gw, tmp_path: Path) -> None:
    addon, tctx = gw
    seed = [run(addon, flow("GET", "/simple", {"origin": ORIGIN})) for _ in range(2)]
    ids = {f.response.headers["x-request-id"] for f in seed if f.response}
    assert len(ids) == 2 and not addon._decisions  # apig-seed makes request ids: every decision is new
    tctx.configure(addon, cors_policy=str(POLICIES / "default.yaml"))
    for _ in range(2):
        f = run(addon, flow("GET", "/simple", {"origin": ORIGIN}))
        assert f.response is not None and f.response.headers["access-control-allow-origin"] == ORIGIN
    assert len(addon._decisions) == 1
    other = tmp_path / "other.yaml"  # the default policy, but for another origin only
    other.write_text((POLICIES / "default.yaml").read_text().replace('allow_origin: "*"',
                                                                      'allow_origin: "https://other.example"'))
    tctx.configure(addon, cors_policy=str(other))
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN}))
    assert f.response is not None and "access-control-allow-origin" not in f.response.headers  # not the old answer
    assert len(addon._decisions) == 1


def test_actual_request_decorated_in_responseheaders(gw) -> None:
    addon, _ = gw
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN}))
    assert f.response is not None
    assert f.response.headers.get_all("access-control-allow-origin") == ["*"]
    assert len(f.response.headers["x-request-id"]) == 32
    assert f.marked == ""


def test_backend_acao_kept_single(gw) -> None:
    addon, _ = gw
    upstream = tutils.tresp(headers=http.Headers(access_control_allow_origin="http://www.cors.com"))
    f = run(addon, flow("GET", "/simple", {"origin": "http://www.cors.com"}), upstream)
    assert f.response is not None
    assert f.response.headers.get_all("access-control-allow-origin") == ["http://www.cors.com"]


def test_websocket_101_left_alone(gw) -> None:
    addon, _ = gw
    f = tflow.twebsocketflow()
    f.request.headers["origin"] = ORIGIN
    f.request.path = "/simple"
    before = list(f.response.headers.fields)
    addon._pending[f.id] = object()  # type: ignore[assignment]  # even a pending decision is not applied
    addon.responseheaders(f)
    assert list(f.response.headers.fields) == before


def test_flows_already_answered_or_killed_are_left_alone(gw) -> None:
    addon, _ = gw
    answered = flow("OPTIONS", "/simple", {"origin": ORIGIN, "access_control_request_method": "PUT"})
    answered.response = tutils.tresp(status_code=418)
    asyncio.run(addon.request(answered))
    assert answered.response.status_code == 418
    killed = flow("OPTIONS", "/simple", {"origin": ORIGIN, "access_control_request_method": "PUT"})
    killed.kill()
    asyncio.run(addon.request(killed))
    assert killed.response is None


def test_report_mode_changes_nothing_but_marks_blocked(gw, caplog: pytest.LogCaptureFixture) -> None:
    addon, tctx = gw
    tctx.configure(addon, cors_mode="report")
    caplog.set_level(logging.WARNING)
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN}))
    assert f.response is not None and "access-control-allow-origin" not in f.response.headers
    assert f.marked == BLOCKED_MARK
    assert "No 'Access-Control-Allow-Origin' header is present" in f.comment
    assert sum("CORS blocked: GET" in r.getMessage() for r in caplog.records) == 1


def test_ok_flows_log_nothing(gw, caplog: pytest.LogCaptureFixture) -> None:
    addon, _ = gw
    caplog.set_level(logging.INFO)
    run(addon, flow("GET", "/simple", {"origin": ORIGIN}))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_explain_command_prints_verdict_and_trail(gw) -> None:
    addon, _ = gw
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN}))
    text = addon.explain([f])
    assert "verdict: ok" in text
    assert "API 'simple-get' (GET /simple NORMAL, any host) matched" in text


def test_status_command(gw) -> None:
    addon, tctx = gw
    text = tctx.command(addon.status)
    assert "apig-seed.yaml" in text and "apis=3" in text and "mode=enforce" in text


def test_request_facts_reads_lists_and_flags() -> None:
    f = flow("OPTIONS", "/a?b=c", {"origin": ORIGIN, "access_control_request_method": "PUT",
                                   "access_control_request_headers": "X-A, x-b,,",
                                   "access_control_request_private_network": "true", "authorization": "x"})
    facts = request_facts(f.request)
    assert facts.path == "/a" and facts.preflight and facts.private_network and facts.authorization
    assert facts.request_headers == ("X-A", "x-b")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "\u00ff\u00fe"},
        {"origin": "null", "access_control_request_method": "GET\tX"},
        {"origin": "https://a.example.com", "access_control_request_headers": "," * 5000},
        {"origin": "https://" + "a" * 70_000 + ".com"},
    ],
)
def test_malformed_requests_never_raise(gw, headers: dict[str, str]) -> None:
    addon, _ = gw
    f = run(addon, flow("OPTIONS", "/simple", headers))
    assert f.response is not None


def test_tls_of_the_client_connection_picks_the_https_only_api_and_explain_says_why(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("""version: 1
gateway: {request_id: false}
apis:
  - {name: secure-preflight, method: OPTIONS, path: /, match_mode: SWA, cors: true, req_protocol: HTTPS,
     backend: {type: mock}}
""")
    addon = CorsGateway()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_policy=str(policy))
        preflight = {"origin": ORIGIN, "access_control_request_method": "PUT"}
        secure = flow("OPTIONS", "/x", preflight)
        secure.client_conn.timestamp_tls_setup = 1.0  # what makes client_conn.tls_established true
        assert run(addon, secure).response.headers["access-control-allow-origin"] == "*"
        plain = flow("OPTIONS", "/x", preflight)
        plain.client_conn.timestamp_tls_setup = None
        run(addon, plain)
        assert "access-control-allow-origin" not in plain.response.headers  # passed upstream, unanswered
        text = addon.explain([plain])
    assert "'secure-preflight'" in text and "req_protocol is HTTPS" in text and "plain HTTP" in text, text
