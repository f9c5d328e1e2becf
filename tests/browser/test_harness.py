"""The browser harness itself, with bare mitmdump (no addon) in front of the CORS-less backend.

These prove that Chromium, not our code, decides: with no CORS headers anywhere it
refuses to let the page read the response, and the same request becomes readable
as soon as the right Access-Control-Allow-Origin is present or the page is same-origin.
They also show how a test sees a preflight: the recorder for what reached the
proxy, Backend.hits() for what reached the backend.
"""

from __future__ import annotations

import pytest

from tests.support.browser import BrowserFetch, BrowserHarness
from tests.support.procs import Backend, Proxy, ProxyPool

NO_ACAO = "No 'Access-Control-Allow-Origin' header is present on the requested resource"
PREFLIGHT_FAILED = "Response to preflight request doesn't pass access control check"


@pytest.fixture(scope="module")
def bare(proxies: ProxyPool, backend: Backend) -> Proxy:
    return proxies(mode=f"reverse:{backend.url}", addon=False)


def test_cross_origin_get_without_cors_is_blocked(
    browser_fetch: BrowserFetch, browser_harness: BrowserHarness, bare: Proxy, backend: Backend
) -> None:
    result = browser_fetch(browser_harness.origin, f"{bare.url}/harness/blocked", {})
    assert not result.ok and result.error == "TypeError: Failed to fetch"
    assert result.cors_error is not None and NO_ACAO in result.cors_error, result.console
    # A simple request is sent; the browser only refuses to hand the response to the page.
    assert [h["method"] for h in backend.hits() if h["path"] == "/harness/blocked"] == ["GET"]


def test_cross_origin_get_with_backend_acao_is_readable(
    browser_fetch: BrowserFetch, browser_harness: BrowserHarness, bare: Proxy
) -> None:
    origin = browser_harness.other_origin
    result = browser_fetch(origin, f"{bare.url}/harness/acao?acao={origin}&status=404", {})
    assert result.ok and result.status == 404 and result.type == "cors", result
    assert result.json()["path"] == "/harness/acao"
    assert result.cors_error is None
    # x-backend is not CORS-safelisted and nothing exposes it.
    assert "x-backend" not in result.readable_headers and result.readable_headers["content-type"] == "application/json"


def test_same_origin_get_needs_no_cors(browser_fetch: BrowserFetch, bare: Proxy) -> None:
    result = browser_fetch(bare.url, f"{bare.url}/harness/same", {})
    assert result.ok and result.status == 200 and result.type == "basic", result
    assert result.readable_headers["x-backend"] == "1"


def test_preflight_is_seen_by_proxy_and_backend(
    browser_fetch: BrowserFetch, browser_harness: BrowserHarness, bare: Proxy, backend: Backend
) -> None:
    init = {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": "{}"}
    result = browser_fetch(browser_harness.origin, f"{bare.url}/harness/preflight", init)
    assert not result.ok
    assert result.cors_error is not None and PREFLIGHT_FAILED in result.cors_error
    seen = [(r["method"], r["status"]) for r in bare.records(1, path_contains="/harness/preflight")]
    assert seen == [("OPTIONS", 200)]
    preflight = next(h for h in backend.hits() if h["path"] == "/harness/preflight")
    headers = {k.lower(): v for k, v in preflight["headers"]}
    assert preflight["method"] == "OPTIONS" and headers["access-control-request-method"] == "POST"
    assert headers["access-control-request-headers"] == "content-type"


def test_regular_proxy_mode_routes_loopback_through_the_proxy(
    browser_fetch: BrowserFetch, browser_harness: BrowserHarness, proxies: ProxyPool, backend: Backend
) -> None:
    proxy = proxies(addon=False)
    origin = browser_harness.origin
    url = f"{backend.url}/harness/regular?acao={origin}"
    result = browser_fetch(origin, url, {}, proxy=proxy.url)
    assert result.ok and result.status == 200, result
    assert [r["url"] for r in proxy.records(1, path_contains="/harness/regular")] == [url], proxy.records()


def test_virtual_origin_preflight_reaches_the_proxy(browser_fetch: BrowserFetch, bare: Proxy, backend: Backend) -> None:
    """An origin served by request interception still sends its real preflight to the proxy.

    playwright answers preflights itself while a route is installed; the harness removes
    the page's route before fetching, and this guards that.
    """
    origin = "https://app.example.com"
    url = f"{bare.url}/harness/virtual?acao={origin}&header=Access-Control-Allow-Headers:content-type"
    init = {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": "{}"}
    result = browser_fetch(origin, url, init)
    assert result.ok and result.status == 200, result
    assert [r["method"] for r in bare.records(2, path_contains="/harness/virtual")] == ["OPTIONS", "POST"]
    assert [h["method"] for h in backend.hits() if h["path"].startswith("/harness/virtual")] == ["OPTIONS", "POST"]
