"""req_protocol through a real mitmdump in regular mode with HTTPS interception (issue 18 part 4): the client
trusts mitmproxy's CA from the confdir this test's proxy creates, and an HTTPS-only OPTIONS API answers the
preflight over TLS and not over plain HTTP, where the decision trail says why."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path

import pytest

from tests.support.procs import Backend, Proxy

POLICY = """version: 1
gateway: {request_id: false, unmatched: pass}
apis:
  - {name: orders, group: shop, method: PUT, path: /orders, cors: true}
  - {name: secure-preflight, group: shop, method: OPTIONS, path: /, match_mode: SWA, auth: none, cors: true,
     req_protocol: HTTPS, backend: {type: mock}}
"""
ORIGIN = "https://app.example.com"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-sdk-date"}


@pytest.fixture(scope="module")
def proxy(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    path = tmp_path_factory.mktemp("protocol") / "protocol.yaml"
    path.write_text(POLICY)
    with Proxy(path, record=True) as p:  # regular mode; its confdir (a temp dir of its own) holds the new CA
        yield p


def ca_of(proxy: Proxy) -> Path:
    ca = proxy.dir / "conf" / "mitmproxy-ca-cert.pem"
    assert ca.exists(), "mitmproxy writes its CA into the confdir on start"
    return ca


def preflight_over_tls(proxy: Proxy, backend: Backend) -> tuple[int, dict[str, str], str]:
    """CONNECT through the proxy, TLS verified against mitmproxy's CA (no unverified context), then the preflight."""
    context = ssl.create_default_context(cafile=str(ca_of(proxy)))
    conn = HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=context)
    try:
        conn.set_tunnel("127.0.0.1", backend.port)
        conn.request("OPTIONS", "/orders?over=tls", headers=PREFLIGHT)
        response = conn.getresponse()
        response.read()
        version = conn.sock.version() if conn.sock is not None else ""
        return response.status, {k.lower(): v for k, v in response.getheaders()}, version
    finally:
        conn.close()


def preflight_over_http(proxy: Proxy, backend: Backend) -> tuple[int, dict[str, str]]:
    conn = HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("OPTIONS", f"http://127.0.0.1:{backend.port}/orders?over=http", headers=PREFLIGHT)
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_https_only_options_api_answers_over_tls_only(proxy: Proxy, backend: Backend) -> None:
    backend.clear()
    status, headers, version = preflight_over_tls(proxy, backend)
    assert version.startswith("TLS")
    assert status == 200 and headers["access-control-allow-origin"] == "*"  # APIG's Method-1 set, from the mock
    assert "X-Sdk-Date" in headers["access-control-allow-headers"].split(",")
    assert backend.hits() == []  # answered by the gateway
    (tls_record,) = proxy.records(1, path_contains="over=tls")
    assert "'secure-preflight'" in tls_record["metadata"]["corsgate.trail"]

    status, headers = preflight_over_http(proxy, backend)
    assert status == 200 and not any(k.startswith("access-control-") for k in headers)  # the backend's answer
    assert [hit["path"] for hit in backend.hits()] == ["/orders?over=http"]
    (http_record,) = proxy.records(1, path_contains="over=http")
    trail = http_record["metadata"]["corsgate.trail"]
    assert "'secure-preflight'" in trail and "req_protocol is HTTPS" in trail and "plain HTTP" in trail, trail
    assert http_record["metadata"]["corsgate.verdict"].startswith("blocked: ")
