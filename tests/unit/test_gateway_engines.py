"""cors_browsers and the per-engine verdicts on the addon's surfaces (comment, log line, cors.explain),
with mitmproxy's own test helpers (taddons/tflow), no network."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tutils

from addon.gateway import BLOCKED_MARK, CorsGateway
from addon.verdict import MIXED_CONTENT_NOTE

from tests.unit.test_gateway import flow, run

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ORIGIN = "http://localhost:5173"
# A Private Network Access preflight (Chromium's alone) answered without Access-Control-Allow-Private-Network:
# Chrome blocks it, Firefox and Safari never ask.
PNA = {"origin": ORIGIN, "access_control_request_method": "PUT", "access_control_request_private_network": "true"}
PNA_ANSWER = http.Headers(access_control_allow_origin="*", access_control_allow_methods="PUT")


@pytest.fixture
def report():
    addon = CorsGateway()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_policy=str(POLICIES / "apig-seed.yaml"), cors_mode="report")
        yield addon, tctx


def test_cors_browsers_is_validated_in_configure(report) -> None:
    addon, tctx = report
    assert addon.browsers == ("chromium", "firefox", "webkit")
    with pytest.raises(exceptions.OptionsError, match="at least one"):
        tctx.configure(addon, cors_browsers=" ")
    with pytest.raises(exceptions.OptionsError, match="unknown browser engine 'opera'"):
        tctx.configure(addon, cors_browsers="chromium,opera")
    assert addon.browsers == ("chromium", "firefox", "webkit")  # the last good choice stays
    tctx.configure(addon, cors_browsers="Safari,firefox")
    assert addon.browsers == ("firefox", "webkit")


def test_a_flow_blocked_in_one_engine_says_which(report, caplog: pytest.LogCaptureFixture) -> None:
    addon, _ = report
    caplog.set_level(logging.WARNING)
    f = run(addon, flow("OPTIONS", "/simple", PNA), tutils.tresp(headers=PNA_ANSWER))
    assert f.marked == BLOCKED_MARK
    assert f.comment.startswith("CORS preflight: blocked in Chrome: Response to preflight request doesn't pass "
                                "access control check: No 'Access-Control-Allow-Private-Network' header")
    assert "; ok in Firefox and Safari" in f.comment
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CORS blocked: OPTIONS")]
    assert len(logged) == 1 and "blocked in Chrome: " in logged[0] and "ok in Firefox and Safari" in logged[0]


def test_engines_not_chosen_do_not_mark_or_log(report, caplog: pytest.LogCaptureFixture) -> None:
    addon, tctx = report
    tctx.configure(addon, cors_browsers="firefox,webkit")
    caplog.set_level(logging.WARNING)
    f = run(addon, flow("OPTIONS", "/simple", PNA), tutils.tresp(headers=PNA_ANSWER))
    assert not f.marked and f.comment.startswith("CORS preflight: ok (with credentials: blocked: ")
    assert not [r for r in caplog.records if r.getMessage().startswith("CORS blocked")]


FIREFOX_MISSING_ACAO = ("Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
                        "{url}. (Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: {status}. "
                        "[CORSMissingAllowOrigin2]")


def test_agreeing_engines_read_as_one_verdict_and_log_each_engines_words(report, caplog) -> None:
    addon, tctx = report
    caplog.set_level(logging.WARNING)
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN, "cookie": "a=1"}))
    assert f.metadata["corsgate.verdict"].startswith("blocked: No 'Access-Control-Allow-Origin' header is present")
    told = ("blocked in Chrome: No 'Access-Control-Allow-Origin' header is present on the requested resource.; "
            "in Firefox: " + FIREFOX_MISSING_ACAO.format(url=f.request.pretty_url, status=200) + "; "
            f"in Safari: Origin {ORIGIN} is not allowed by Access-Control-Allow-Origin. Status code: 200")
    assert f.comment == f"CORS actual: {told}"
    (logged,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CORS blocked: GET")]
    assert logged == f"CORS blocked: GET {f.request.pretty_url} from origin {ORIGIN}: {told}"
    tctx.configure(addon, cors_browsers="webkit")
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN, "cookie": "a=1"}))
    assert f.metadata["corsgate.verdict"] == (f"blocked: Origin {ORIGIN} is not allowed by "
                                              "Access-Control-Allow-Origin. Status code: 200")
    assert f.comment == (f"CORS actual: blocked in Safari: Origin {ORIGIN} is not allowed by "
                         "Access-Control-Allow-Origin. Status code: 200")


@pytest.mark.parametrize(("tls", "port", "url"), [(False, 8080, "http://127.0.0.1:8080/simple?x=1"),
                                                  (True, 8443, "https://127.0.0.1:8443/simple?x=1"),
                                                  (True, 443, "https://127.0.0.1/simple?x=1")])
def test_firefox_quotes_the_url_the_page_fetched_in_reverse_mode(report, tls: bool, port: int, url: str) -> None:
    """mitmproxy has put the upstream's address in the request; Firefox names the proxy's, which the page called."""
    addon, tctx = report
    tctx.configure(addon, cors_browsers="firefox")
    f = flow("GET", "/simple?x=1", {"origin": ORIGIN})
    f.request.host, f.request.port = "192.0.2.1", 9000
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://192.0.2.1:9000")
    f.client_conn.sockname = ("127.0.0.1", port)
    f.client_conn.timestamp_tls_setup = 1.0 if tls else None  # what tls_established reads
    run(addon, f, tutils.tresp(status_code=404, headers=http.Headers(content_type="text/plain")))
    assert f.comment.startswith("CORS actual: blocked in Firefox: " + FIREFOX_MISSING_ACAO.format(url=url, status=404))


def test_explain_lists_each_chosen_engine(report) -> None:
    addon, tctx = report
    f = run(addon, flow("GET", "/simple", {"origin": ORIGIN, "cookie": "a=1"}))
    text = addon.explain([f])
    assert "  Chrome: blocked: No 'Access-Control-Allow-Origin' header is present" in text
    assert "  Firefox: blocked: CORS header ‘Access-Control-Allow-Origin’ missing [CORSMissingAllowOrigin2]" in text
    assert f"  Safari: blocked: Origin {ORIGIN} is not allowed by Access-Control-Allow-Origin. Status code: 200" in text
    tctx.configure(addon, cors_browsers="firefox")
    text = addon.explain([f])
    assert "Firefox: " in text and "Chrome: " not in text and "Safari: " not in text


def test_explain_shows_engine_notes(report) -> None:
    addon, _ = report
    answer = http.Headers(access_control_allow_origin="*", access_control_allow_methods="*",
                          access_control_max_age="7201")
    f = run(addon, flow("OPTIONS", "/simple", {"origin": ORIGIN, "access_control_request_method": "PUT"}),
            tutils.tresp(headers=answer))
    text = addon.explain([f])
    assert "    note: Chrome caches this preflight for at most 7200 s" in text
    assert "    note: Firefox never caches a preflight answered with a literal *" in text
    assert "    note: Safari caches this preflight for at most 600 s" in text
    assert not f.marked


@pytest.mark.parametrize(("origin", "tls", "noted"),
                         [("https://app.example.com", False, True), ("https://app.example.com", True, False),
                          ("http://app.example.com", False, False)])
def test_https_page_to_http_loopback_gets_safaris_mixed_content_note(report, origin: str, tls: bool,
                                                                      noted: bool) -> None:
    addon, tctx = report
    f = flow("GET", "/simple", {"origin": origin})
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://192.0.2.1:80")
    f.client_conn.sockname = ("127.0.0.1", 8080)
    f.client_conn.timestamp_tls_setup = 1.0 if tls else None  # what tls_established reads
    run(addon, f, tutils.tresp(headers=http.Headers(access_control_allow_origin="*")))
    assert (MIXED_CONTENT_NOTE in f.comment) is noted
    assert (MIXED_CONTENT_NOTE in addon.explain([f])) is noted
    assert not f.marked  # a note: Safari never sends it, so there is no Safari exchange to judge
    tctx.configure(addon, cors_browsers="chromium,firefox")
    run(addon, f, tutils.tresp(headers=http.Headers(access_control_allow_origin="*")))
    assert MIXED_CONTENT_NOTE not in f.comment
