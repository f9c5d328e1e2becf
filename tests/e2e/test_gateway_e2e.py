"""End to end: a real mitmdump with the addon in front of a real CORS-less backend on 127.0.0.1.

The seed page of APIG's "CORS Calling of an Open API" is reproduced header by header,
in reverse mode and in regular-proxy mode, then the error paths of DESIGN §4.3.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Backend, Proxy, free_port, http, run_to_exit

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SEED = str(POLICIES / "apig-seed.yaml")
CORS_COM = "http://www.cors.com"
APIG_ALLOW_HEADERS = (
    "X-Stage,X-Sdk-Date,X-Sdk-Nonce,X-Proxy-Signed-Headers,X-Sdk-Content-Sha256,X-Forwarded-For,"
    "Authorization,Content-Type,Accept,Accept-Ranges,Cache-Control,Range"
)
APIG_EXPOSE_HEADERS = (
    "X-Request-Id,X-Apig-Latency,X-Apig-Upstream-Latency,X-Apig-RateLimit-Api,X-Apig-RateLimit-User,"
    "X-Apig-RateLimit-App,X-Apig-RateLimit-Ip,X-Apig-RateLimit-Api-Allenv"
)
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


def cors_names(headers: list[tuple[str, str]]) -> set[str]:
    return {k.lower() for k, _ in headers if k.lower().startswith("access-control-")}


@pytest.fixture(scope="module", params=["reverse", "regular"])
def seed(
    request: pytest.FixtureRequest, backend: Backend, launcher: tuple[str, ...] | None
) -> Iterator[tuple[Proxy, str, str | None]]:
    """(proxy, base URL the client asks for, proxy URL for regular mode or None)."""
    if request.param == "reverse":
        with Proxy(SEED, mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
            yield proxy, proxy.url, None
    else:
        with Proxy(SEED, launcher=launcher) as proxy:
            yield proxy, backend.url, proxy.url


# -- the seed page ---------------------------------------------------------------------------------

def test_seed_simple_get_backend_without_cors(seed: tuple[Proxy, str, str | None], backend: Backend) -> None:
    _, base, px = seed
    status, headers, _ = http("GET", f"{base}/simple", {"Origin": CORS_COM}, proxy=px)
    assert status == 200
    assert values(headers, "Access-Control-Allow-Origin") == ["*"]
    assert cors_names(headers) == {"access-control-allow-origin"}
    assert len(values(headers, "X-Request-Id")) == 1 and REQUEST_ID.fullmatch(values(headers, "X-Request-Id")[0])
    assert values(headers, "X-Backend") == ["1"]  # it really came from the backend


def test_seed_simple_get_backend_with_cors_wins(seed: tuple[Proxy, str, str | None]) -> None:
    _, base, px = seed
    status, headers, _ = http("GET", f"{base}/simple?acao={CORS_COM}", {"Origin": CORS_COM}, proxy=px)
    assert status == 200
    assert values(headers, "Access-Control-Allow-Origin") == [CORS_COM]  # exactly one, the backend's


@pytest.mark.parametrize("path", ["/", "/simple"])
def test_seed_preflight_answered_by_gateway(seed: tuple[Proxy, str, str | None], backend: Backend, path: str) -> None:
    _, base, px = seed
    backend.clear()
    status, headers, body = http(
        "OPTIONS", f"{base}{path}",
        {"Origin": CORS_COM, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-Sdk-Date"},
        proxy=px,
    )
    assert status == 200 and body == b""
    assert values(headers, "Content-Type") == ["application/json"]
    assert values(headers, "Server") == ["api-gateway"]
    assert REQUEST_ID.fullmatch(values(headers, "X-Request-Id")[0])
    assert values(headers, "Access-Control-Allow-Origin") == ["*"]
    assert values(headers, "Access-Control-Allow-Headers") == [APIG_ALLOW_HEADERS]
    assert values(headers, "Access-Control-Expose-Headers") == [APIG_EXPOSE_HEADERS]
    assert values(headers, "Access-Control-Allow-Methods") == ["GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH"]
    assert values(headers, "Access-Control-Max-Age") == ["172800"]
    assert cors_names(headers) == {
        "access-control-allow-origin", "access-control-allow-headers", "access-control-expose-headers",
        "access-control-allow-methods", "access-control-max-age",
    }
    assert backend.hits() == []  # answered without reaching the backend


def test_seed_put_after_preflight(seed: tuple[Proxy, str, str | None], backend: Backend) -> None:
    _, base, px = seed
    backend.clear()
    status, headers, _ = http("PUT", f"{base}/simple", {"Origin": CORS_COM, "X-Sdk-Date": "20261128T000000Z"},
                              proxy=px, body="{}")
    assert status == 200
    assert values(headers, "Access-Control-Allow-Origin") == ["*"]
    assert REQUEST_ID.fullmatch(values(headers, "X-Request-Id")[0])
    assert [h["method"] for h in backend.hits()] == ["PUT"]


def test_non_preflight_options_hits_the_options_mock_api(seed: tuple[Proxy, str, str | None], backend: Backend) -> None:
    """Without Access-Control-Request-Method it is no preflight: the seed's OPTIONS mock API answers it as APIG does."""
    _, base, px = seed
    backend.clear()
    status, headers, _ = http("OPTIONS", f"{base}/simple", {"Origin": CORS_COM}, proxy=px)
    assert status == 200 and backend.hits() == []
    assert cors_names(headers) == {"access-control-allow-origin"}  # the switch's *, not the preflight set


def test_non_preflight_options_reaches_backend(backend: Backend, launcher: tuple[str, ...] | None) -> None:
    with Proxy(None, mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
        backend.clear()
        status, headers, _ = http("OPTIONS", f"{proxy.url}/simple", {"Origin": CORS_COM})
    assert [h["method"] for h in backend.hits()] == ["OPTIONS"]
    assert values(headers, "X-Backend") == ["1"] and status == 200
    assert values(headers, "Access-Control-Allow-Origin") == [CORS_COM]


def test_no_origin_no_cors_but_request_id(seed: tuple[Proxy, str, str | None]) -> None:
    _, base, px = seed
    status, headers, _ = http("GET", f"{base}/simple", proxy=px)
    assert status == 200 and cors_names(headers) == set()
    assert REQUEST_ID.fullmatch(values(headers, "X-Request-Id")[0])


def test_unmatched_pass_is_left_exactly_as_it_was(seed: tuple[Proxy, str, str | None], backend: Backend) -> None:
    _, base, px = seed
    backend.clear()
    sent = {"Origin": CORS_COM, "X-Custom": "kept"}
    status, headers, _ = http("POST", f"{base}/not-an-api?x=1", sent, proxy=px, body="abc")
    assert status == 200
    assert cors_names(headers) == set() and values(headers, "X-Request-Id") == []
    hit = backend.hits()[0]
    assert hit["method"] == "POST" and hit["path"] == "/not-an-api?x=1"
    got = {k.lower(): v for k, v in hit["headers"]}
    assert got["origin"] == CORS_COM and got["x-custom"] == "kept"


# -- the embedded default (README's first command) -------------------------------------------------

def test_default_policy_lets_a_credentialed_request_through(backend: Backend, launcher: tuple[str, ...] | None) -> None:
    origin = "http://localhost:5173"
    with Proxy(None, mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
        assert "policies/default.yaml" in proxy.log()
        status, headers, _ = http(
            "OPTIONS", f"{proxy.url}/api/items",
            {"Origin": origin, "Access-Control-Request-Method": "DELETE",
             "Access-Control-Request-Headers": "authorization,content-type,x-trace"},
        )
        assert status == 200
        assert values(headers, "Access-Control-Allow-Origin") == [origin]
        assert values(headers, "Access-Control-Allow-Credentials") == ["true"]
        assert values(headers, "Access-Control-Allow-Methods") == ["DELETE"]
        assert values(headers, "Access-Control-Allow-Headers") == ["authorization,content-type,x-trace"]
        status, headers, _ = http(
            "DELETE", f"{proxy.url}/api/items?header=X-Total:3",
            {"Origin": origin, "Cookie": "session=1", "Authorization": "Bearer t"},
        )
        assert status == 200
        assert values(headers, "Access-Control-Allow-Origin") == [origin]
        assert values(headers, "Access-Control-Allow-Credentials") == ["true"]
        exposed = {n.lower() for n in values(headers, "Access-Control-Expose-Headers")[0].split(",")}
        assert "x-total" in exposed and "x-backend" in exposed
        assert "origin" in values(headers, "Vary")[0].lower()


# -- error paths -----------------------------------------------------------------------------------

def _dead_port() -> int:
    port = free_port()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return port


@pytest.mark.parametrize("policy", [SEED, None])
def test_unreachable_upstream_is_a_cors_readable_502(policy: str | None, launcher: tuple[str, ...] | None) -> None:
    origin = "http://localhost:5173"
    with Proxy(policy, mode=f"reverse:http://127.0.0.1:{_dead_port()}", launcher=launcher) as proxy:
        status, headers, body = http("GET", f"{proxy.url}/simple", {"Origin": origin})
    assert status == 502
    assert values(headers, "Access-Control-Allow-Origin") == (["*"] if policy else [origin])
    error = json.loads(body)
    assert error["error_code"] == "APIG.0201" and error["error_msg"].startswith("Backend unavailable")
    assert values(headers, "Server") == (["api-gateway"] if policy else [])


def test_unreachable_upstream_after_a_locally_answered_preflight(launcher: tuple[str, ...] | None) -> None:
    """A preflight the gateway answers says nothing about the upstream: the request after it is probed too."""
    origin = "http://localhost:5173"
    with Proxy(None, mode=f"reverse:http://127.0.0.1:{_dead_port()}", launcher=launcher) as proxy:
        status, _, _ = http("OPTIONS", f"{proxy.url}/items",
                            {"Origin": origin, "Access-Control-Request-Method": "POST",
                             "Access-Control-Request-Headers": "content-type"})
        assert status == 200
        status, headers, body = http("POST", f"{proxy.url}/items",
                                     {"Origin": origin, "Content-Type": "application/json"}, body="{}")
    assert status == 502 and json.loads(body)["error_code"] == "APIG.0201"
    assert values(headers, "Access-Control-Allow-Origin") == [origin]


def test_disallowed_origin(backend: Backend, launcher: tuple[str, ...] | None) -> None:
    policy = str(POLICIES / "strict-allowlist.yaml")
    evil = "https://evil.example.net"
    with Proxy(policy, mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
        backend.clear()
        status, headers, body = http(
            "OPTIONS", f"{proxy.url}/api/users", {"Origin": evil, "Access-Control-Request-Method": "PUT"}
        )
        assert status == 403 and cors_names(headers) == set()
        assert evil in json.loads(body)["error_msg"]
        assert backend.hits() == []
        status, headers, _ = http("GET", f"{proxy.url}/api/users", {"Origin": evil})
        assert status == 200 and cors_names(headers) == set()  # forwarded unchanged, nothing added
        assert [h["method"] for h in backend.hits()] == ["GET"]
        ok_status, ok_headers, _ = http("GET", f"{proxy.url}/api/users", {"Origin": "https://app.example.com"})
        assert values(ok_headers, "Access-Control-Allow-Origin") == ["https://app.example.com"]
        assert values(ok_headers, "Access-Control-Allow-Credentials") == ["true"]


def test_websocket_upgrade_untouched(backend: Backend, launcher: tuple[str, ...] | None) -> None:
    with Proxy(None, mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                b"Origin: http://localhost:5173\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, head
                head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101")
    assert not any(line.lower().startswith("access-control-") for line in lines[1:])


def test_streamed_response_keeps_cors_headers(backend: Backend, launcher: tuple[str, ...] | None) -> None:
    origin = "http://localhost:5173"
    extra = ["--set", "stream_large_bodies=1"]
    with Proxy(None, mode=f"reverse:{backend.url}", extra=extra, launcher=launcher) as proxy:
        status, headers, body = http("GET", f"{proxy.url}/events?stream=4", {"Origin": origin})
    assert status == 200 and body.count(b"data:") == 4
    assert values(headers, "Access-Control-Allow-Origin") == [origin]


def test_report_mode_changes_nothing_and_diagnoses(backend: Backend, launcher: tuple[str, ...] | None) -> None:
    with Proxy(SEED, mode=f"reverse:{backend.url}", extra=["--set", "cors_mode=report"], launcher=launcher) as proxy:
        backend.clear()
        status, headers, _ = http(
            "OPTIONS", f"{proxy.url}/simple",
            {"Origin": CORS_COM, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-sdk-date"},
        )
        assert status == 200 and cors_names(headers) == set() and values(headers, "X-Backend") == ["1"]
        assert [h["method"] for h in backend.hits()] == ["OPTIONS"]
        log = proxy.log()
    assert "mode=report" in log
    assert "CORS blocked: OPTIONS" in log
    assert "No 'Access-Control-Allow-Origin' header is present on the requested resource." in log


def test_unmatched_reject(backend: Backend, tmp_path: Path, launcher: tuple[str, ...] | None) -> None:
    policy = tmp_path / "reject.yaml"
    policy.write_text(Path(SEED).read_text().replace("unmatched: pass", "unmatched: reject"))
    with Proxy(str(policy), mode=f"reverse:{backend.url}", launcher=launcher) as proxy:
        backend.clear()
        status, headers, body = http("GET", f"{proxy.url}/nothing", {"Origin": CORS_COM})
    assert status == 404 and json.loads(body)["error_code"] == "APIG.0101"
    assert cors_names(headers) == set() and backend.hits() == []


# -- refusing to start -----------------------------------------------------------------------------

def test_broken_policy_at_startup_exits_1_naming_file_line_and_field(
    tmp_path: Path, launcher: tuple[str, ...] | None
) -> None:
    policy = tmp_path / "broken.yaml"
    policy.write_text(Path(SEED).read_text().replace("match_mode: SWA", "match_mod: SWA"))
    rc, out = run_to_exit(["-s", "addon/cors_gateway.py", "--set", f"cors_policy={policy}"], launcher=launcher)
    assert rc == 1
    assert f"{policy}:" in out and "apis[2].match_mod: unknown field 'match_mod'" in out
    assert "did you mean 'match_mode'?" in out
    assert "corsgate active" not in out


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("cors_policy=/nonexistent/p.yaml", "cannot read file"),
        ("cors_mode=zzz", "cors_mode must be one of enforce, report"),
        ("cors_reload=maybe", "cors_reload must be true or false"),
        ("cors_force_lazy=2", "cors_force_lazy must be true or false"),
    ],
)
def test_bad_option_exits_1(setting: str, message: str, launcher: tuple[str, ...] | None) -> None:
    rc, out = run_to_exit(["-s", "addon/cors_gateway.py", "--set", setting], launcher=launcher)
    assert rc == 1, out
    assert message in out
