"""Three engines on the real tools: mitmdump's log line and flow verdicts under cors_browsers (both
launchers), and cors-check's per-engine text and JSON on the shipped policies (issue 19)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from addon import verdict
from tests.support.procs import REPO, Backend, Proxy, http, run_to_exit

SEED = REPO / "policies" / "apig-seed.yaml"
STRICT = REPO / "policies" / "strict-allowlist.yaml"
PAGE = "http://localhost:5173"
# A Private Network Access preflight (Chromium's alone) that the backend answers with CORS headers but
# without Access-Control-Allow-Private-Network: Chrome blocks it, Firefox and Safari never ask.
PNA_PATH = "/simple?header=Access-Control-Allow-Origin:*&header=Access-Control-Allow-Methods:PUT"
STARTUP = 60.0  # seconds, bounded: this suite shares a loaded 2-core host with others
PNA_HEADERS = {"Origin": PAGE, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Private-Network": "true"}


@pytest.mark.parametrize(("browsers", "logged"), [(None, True), ("firefox,webkit", False), ("chrome", True)])
def test_log_line_says_which_engine_blocks(
    backend: Backend, launcher: tuple[str, ...] | None, browsers: str | None, logged: bool
) -> None:
    extra = ["--set", "cors_mode=report"] + (["--set", f"cors_browsers={browsers}"] if browsers else [])
    with Proxy(str(SEED), mode=f"reverse:{backend.url}", extra=extra, launcher=launcher, timeout=STARTUP) as proxy:
        status, _, _ = http("OPTIONS", proxy.url + PNA_PATH, PNA_HEADERS)
        assert status == 200
        proxy.stop()  # the log is complete once the process is gone
        log = proxy.log()
    lines = [line for line in log.splitlines() if "CORS blocked: OPTIONS" in line]
    assert len(lines) == (1 if logged else 0), log
    if browsers is None:
        assert "blocked in Chrome: Response to preflight request doesn't pass access control check: No " \
               "'Access-Control-Allow-Private-Network' header" in lines[0]
        assert "; ok in Firefox and Safari" in lines[0]
    elif logged:  # Chrome alone: its words only
        assert "from origin http://localhost:5173: blocked in Chrome: Response to preflight request doesn't pass " \
               "access control check: No 'Access-Control-Allow-Private-Network' header" in lines[0]
        assert "Firefox" not in lines[0] and "Safari" not in lines[0] and "ok in" not in lines[0]


def test_lean_launcher_flag_and_bad_choice(backend: Backend) -> None:
    lean = (sys.executable, str(REPO / "scripts" / "corsgate"), "serve")
    extra = ["--cors-mode", "report", "--cors-browsers", "firefox"]
    with Proxy(str(SEED), mode=f"reverse:{backend.url}", extra=extra, launcher=lean, timeout=STARTUP) as proxy:
        http("OPTIONS", proxy.url + PNA_PATH, PNA_HEADERS)
        proxy.stop()
        assert "CORS blocked" not in proxy.log()
    for launcher in (None, lean):
        rc, out = run_to_exit(["-s", str(REPO / "addon" / "cors_gateway.py"), "--set", "cors_browsers=netscape"],
                              STARTUP, launcher=launcher)
        assert rc == 1 and "unknown browser engine 'netscape'" in out, out


def cors_check(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "scripts" / "cors-check"), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("policy", "path", "origin", "method", "headers", "ok"),
    [(SEED, "/simple", "http://www.cors.com", "PUT", ["-H", "X-Sdk-Date: 1"], True),
     (SEED, "/simple", "http://www.cors.com", "GET", ["--credentials"], False),
     (STRICT, "/api/users", "https://app.example.com", "PUT", ["-H", "Authorization: Bearer x"], True),
     (STRICT, "/api/users", "https://evil.example", "DELETE", [], False)],
)
def test_cors_check_speaks_for_three_engines(policy: Path, path: str, origin: str, method: str, headers: list[str],
                                             ok: bool) -> None:
    url = f"https://api.example.com{path}"  # https: Safari's mixed-content note stays out of the way
    base = [str(policy), "--origin", origin, "--method", method, "--url", url, *headers]
    text = cors_check(*base)
    assert text.returncode == (0 if ok else 1), text.stderr
    for name in ("Chrome: ", "Firefox: ", "Safari: "):
        assert f"\n{name}" in text.stdout
    done = cors_check(*base, "--format", "json")
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == text.returncode
    assert list(report["engines"]) == list(verdict.ENGINES) == report["browsers"]
    for engine, entry in report["engines"].items():
        assert entry["name"] == verdict.NAMES[engine] and entry["ok"] is ok
        assert (entry["console"] == "") is ok
        assert bool(entry["key"]) == (engine == "firefox" and not ok)
    if not ok:
        assert report["verdict"]["blocked_in"] == list(verdict.ENGINES)
        assert text.stdout.rstrip().endswith("verdict: blocked in Chrome, Firefox and Safari")


def test_cors_check_browsers_subset() -> None:
    base = [str(SEED), "--origin", "http://www.cors.com", "--method", "GET", "--url", "http://127.0.0.1:9/simple",
            "--credentials", "--format", "json", "--browsers", "safari,chromium"]
    report = json.loads(cors_check(*base).stdout)
    assert list(report["engines"]) == ["chromium", "webkit"]
    assert report["engines"]["webkit"]["console"] == ("Cannot use wildcard in Access-Control-Allow-Origin when "
                                                      "credentials flag is true.")
    bad = cors_check(*base[:-1], "")
    assert bad.returncode == 2 and "at least one" in bad.stderr
