"""The tools against the real thing: a real mitmdump with the addon in reverse mode, a real CORS-less backend.

- scripts/cors-check answers offline exactly what mitmdump puts on the wire (CORS headers, status, the
  gateway's own responses whole; X-Request-Id values differ by nature, so only their presence is compared).
- scripts/apig-import turns a hand-built APIG export into a policy that loads, lints clean, and under which
  mitmdump answers the seed page's exchanges with the headers APIG documents.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from addon import verdict
from tests.support.procs import REPO, Backend, Proxy, http

SCRIPTS = REPO / "scripts"
FIXTURES = REPO / "tests" / "fixtures" / "apig"
SEED_POLICY = REPO / "policies" / "apig-seed.yaml"
ORIGIN = "http://www.cors.com"  # the origin of APIG's CORS page examples
X_SDK_DATE = ("X-Sdk-Date", "20240711T115200Z")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")

# The seed page (APIG "CORS Calling of an Open API"): a simple GET, and a PUT with X-Sdk-Date, which the
# browser preflights: three exchanges.
SEED_PAGE = [("GET", "/simple", []), ("PUT", "/simple", [X_SDK_DATE])]

# What APIG documents for those three exchanges (cors-landscape notes §1.1; typed here from the docs, not
# taken from the engine, so the engine is checked against APIG and not against itself).
APIG_PREFLIGHT = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "X-Stage,X-Sdk-Date,X-Sdk-Nonce,X-Proxy-Signed-Headers,X-Sdk-Content-Sha256,"
    "X-Forwarded-For,Authorization,Content-Type,Accept,Accept-Ranges,Cache-Control,Range",
    "access-control-expose-headers": "X-Request-Id,X-Apig-Latency,X-Apig-Upstream-Latency,X-Apig-RateLimit-Api,"
    "X-Apig-RateLimit-User,X-Apig-RateLimit-App,X-Apig-RateLimit-Ip,X-Apig-RateLimit-Api-Allenv",
    "access-control-allow-methods": "GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH",
    "access-control-max-age": "172800",
}
APIG_SIMPLE = {"access-control-allow-origin": "*"}


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPTS / script), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def cors_check(policy: Path, method: str, url: str, headers: Sequence[tuple[str, str]], *extra: str) -> dict[str, Any]:
    args = [str(policy), "--origin", ORIGIN, "--method", method, "--url", url, "--format", "json", *extra]
    for name, value in headers:
        args += ["-H", f"{name}: {value}"]
    done = run("cors-check", *args)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["verdict"]["ok"] else 1)
    return report


def stages(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The exchanges of a cors-check report, in the order the browser makes them."""
    if report["preflight"] is not None:
        yield report["preflight"]
    yield report["actual"]


def cors_view(status: int, headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """What is compared: status, every Access-Control-* field and Vary, whether an X-Request-Id is there."""
    pairs = [(k.lower(), v) for k, v in headers]
    ids = [v for k, v in pairs if k == "x-request-id"]
    assert all(REQUEST_ID.fullmatch(v) for v in ids), ids
    return {
        "status": status,
        "cors": sorted((k, v) for k, v in pairs if k.startswith("access-control-") or k == "vary"),
        "request_id": len(ids),
    }


def whole(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """A gateway-made response's headers, the request id's value masked."""
    return sorted((k.lower(), "<id>" if k.lower() == "x-request-id" else v) for k, v in headers)


def send(proxy: Proxy, method: str, path: str, headers: Sequence[tuple[str, str]]) -> tuple[int, list, bytes]:
    return http(method, proxy.url + path, list(headers))


@pytest.fixture(scope="module")
def seed_proxy(backend: Backend, launcher: tuple[str, ...] | None) -> Iterator[Proxy]:
    with Proxy(policy=SEED_POLICY, mode=f"reverse:{backend.url}", launcher=launcher) as p:
        yield p


# -- cors-check == mitmdump -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        *SEED_PAGE,
        ("POST", "/simple", [("Content-Type", "application/json")]),  # preflight ok, but no POST API: blocked
        ("DELETE", "/simple", []),  # preflight ok (Method 1 allows DELETE), DELETE hits no API: blocked
    ],
    ids=["seed-get", "seed-put-x-sdk-date", "post-without-api", "delete-without-api"],
)
def test_cors_check_matches_the_wire(
    seed_proxy: Proxy, backend: Backend, method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    report = cors_check(SEED_POLICY, method, seed_proxy.url + path, headers, "--backend-header", "X-Backend: 1")
    backend.clear()
    for stage in stages(report):
        request, predicted = stage["request"], stage["response"]
        status, wire, _ = send(seed_proxy, request["method"], path, request["headers"])
        assert cors_view(status, wire) == cors_view(predicted["status"], predicted["headers"]), stage["gateway"]
        if predicted["source"] == "gateway":
            assert whole(wire) == whole(predicted["headers"])
        # The judge on the wire exchange (as the addon diagnoses it) agrees with cors-check's verdict.
        diagnosis = verdict.diagnose(request["method"], request["headers"], status, wire)
        assert diagnosis.without_credentials.ok == stage["verdict"]["ok"]
        assert diagnosis.without_credentials.message == stage["verdict"]["message"]
    # What cors-check says the gateway forwards is exactly what reached the backend.
    forwarded = [s["request"]["method"] for s in stages(report) if s["gateway"]["action"] != "respond"]
    assert [hit["method"] for hit in backend.hits()] == forwarded


def test_cors_check_on_the_seed_page_tells_the_story() -> None:
    url = "http://127.0.0.1:9/simple"  # offline: nothing listens there
    get = cors_check(SEED_POLICY, "GET", url, [])
    assert get["preflight"] is None and get["verdict"]["ok"]
    assert get["actual"]["gateway"]["api"] == "simple-get"
    put = cors_check(SEED_POLICY, "PUT", url, [X_SDK_DATE])
    assert put["preflight"]["why"] == ["method PUT is not CORS-safelisted",
                                       "request header x-sdk-date is not CORS-safelisted"]
    assert put["preflight"]["gateway"]["api"] == "preflight"
    assert any("APIG Method 1" in step for step in put["preflight"]["gateway"]["trail"])
    assert {k.lower(): v for k, v in put["preflight"]["response"]["headers"]}.items() >= APIG_PREFLIGHT.items()
    assert put["verdict"] == {"ok": True, "rule": "ok", "message": "", "notes": [], "stage": "actual"}
    text = run("cors-check", str(SEED_POLICY), "--origin", ORIGIN, "--method", "PUT", "--url", url,
               "-H", "X-Sdk-Date: 1")
    assert text.returncode == 0
    assert "== preflight ==" in text.stdout and "gateway: respond, API 'preflight'" in text.stdout
    assert text.stdout.rstrip().endswith("verdict: ok")


def test_cors_check_with_credentials_is_blocked_by_apig_wildcard() -> None:
    report = cors_check(SEED_POLICY, "GET", "http://127.0.0.1:9/simple", [], "--credentials")
    assert report["verdict"]["rule"] == "acao-wildcard-credentials" and report["verdict"]["stage"] == "actual"


def test_cors_check_refuses_a_broken_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\napis:\n  - {name: a, method: FETCH, path: /}\n")
    done = run("cors-check", str(bad), "--origin", ORIGIN, "--method", "GET", "--url", "http://127.0.0.1:9/")
    assert done.returncode == 2
    assert f"{bad}:3: apis[0].method: must be one of" in done.stderr


# -- apig-import -> a policy mitmdump runs as APIG -------------------------------------------------

@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("import") / "seed.yaml"
    # --any-host: the proxy runs in reverse mode on 127.0.0.1, not on the export's domain api.cors.example.
    done = run("apig-import", str(FIXTURES / "export-swagger.json"), "--plugins", str(FIXTURES / "plugins.json"),
               "--any-host", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "note: plug-in 'throttle' is of type 'rate_limit'" in done.stderr
    return out


@pytest.fixture(scope="module")
def imported_proxy(imported: Path, backend: Backend, launcher: tuple[str, ...] | None) -> Iterator[Proxy]:
    with Proxy(policy=imported, mode=f"reverse:{backend.url}", launcher=launcher) as p:
        yield p


def test_imported_policy_lints_clean(imported: Path) -> None:
    done = run("cors-lint", str(imported))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_imported_policy_answers_the_seed_page_as_apig(
    imported: Path, imported_proxy: Proxy, seed_proxy: Proxy
) -> None:
    exchanges = []
    for method, path, headers in SEED_PAGE:
        report = cors_check(imported, method, imported_proxy.url + path, headers)
        exchanges += [(s["request"], path) for s in stages(report)]
    assert [r["method"] for r, _ in exchanges] == ["GET", "OPTIONS", "PUT"]
    views = []
    for request, path in exchanges:
        status, wire, _ = send(imported_proxy, request["method"], path, request["headers"])
        shipped_status, shipped, _ = send(seed_proxy, request["method"], path, request["headers"])
        view = cors_view(status, wire)
        assert view == cors_view(shipped_status, shipped)  # the same as the shipped seed policy
        views.append((request["method"], status, dict(view["cors"]), view["request_id"], dict(wire)))
    (_, get_status, get, get_id, _), (_, pre_status, pre, pre_id, pre_all), (_, put_status, put, put_id, _) = views
    assert (get_status, get, get_id) == (200, APIG_SIMPLE, 1)
    assert (pre_status, pre, pre_id) == (200, APIG_PREFLIGHT, 1)
    assert (pre_all["Server"], pre_all["Content-Type"]) == ("api-gateway", "application/json")
    assert (put_status, put, put_id) == (200, APIG_SIMPLE, 1)


def test_imported_plugin_api_with_app_auth(imported_proxy: Proxy, backend: Backend) -> None:
    """The ANY /files/{path+} API: its bound CORS plug-in answers preflights (auth never applies to them),
    a request without Authorization gets APIG's 401 with CORS headers, one with it reaches the backend."""
    proxy = imported_proxy
    backend.clear()
    status, headers, _ = send(proxy, "OPTIONS", "/files/a/b.txt", [
        ("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT"),
        ("Access-Control-Request-Headers", "authorization,x-sdk-date")])
    pre = {k.lower(): v for k, v in headers}
    assert status == 200
    assert verdict.check_preflight(ORIGIN, "PUT", ["authorization", "x-sdk-date"], status, headers, True).ok
    assert (pre["access-control-allow-origin"], pre["access-control-max-age"]) == (ORIGIN, "600")
    status, headers, body = send(proxy, "PUT", "/files/a/b.txt", [("Origin", ORIGIN)])
    assert (status, json.loads(body)["error_code"]) == (401, "APIG.0303")
    assert verdict.check_actual(ORIGIN, status, headers, True).ok  # the page sees the real 401
    status, _, _ = send(proxy, "PUT", "/files/a/b.txt", [("Origin", ORIGIN), ("Authorization", "x")])
    assert status == 200
    assert [(h["method"], h["path"]) for h in backend.hits()] == [("PUT", "/files/a/b.txt")]
    status, headers, _ = send(proxy, "OPTIONS", "/files/a", [
        ("Origin", "https://evil.example"), ("Access-Control-Request-Method", "PUT")])
    assert status == 403 and not any(k.lower().startswith("access-control-") for k, _ in headers)
    status, _, body = send(proxy, "GET", "/nothing", [])
    assert (status, json.loads(body)["error_code"]) == (404, "APIG.0101")  # unmatched: reject, as APIG
