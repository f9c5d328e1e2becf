"""The engines' harness itself: Firefox talks to nothing but the test's servers, and a missing engine is said.

The privacy test runs a Firefox of its own whose every request, from its first moment,
loopback included, goes through a recording mitmdump in regular mode. That proxy never
reaches out: it connects upstream only for requests it lets through (connection_strategy
=lazy), and it refuses (444) any request for a host other than 127.0.0.1/localhost, so a
call home would be recorded, not made. While Firefox starts, idles and runs a case, the
recorder must see only the page server and the backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from tests.support import engines
from tests.support.browser import PageServer
from tests.support.procs import REPO, Backend, Proxy

IDLE = 8.0  # seconds Firefox idles after its session starts (its start-up calls come within ~5 s)
LOOPBACK_ONLY = ";!(~d 127.0.0.1 | ~d localhost);444"


@pytest.fixture
def engine() -> str:
    """Not the session's engines: this module's tests start what they need (conftest reads this name)."""
    return "firefox"


@pytest.mark.parametrize("engine", ["firefox"], indirect=True)
def test_firefox_talks_only_to_the_tests_servers(engine: str, page_server: PageServer) -> None:
    with Backend() as backend, Proxy(
        addon=False, record=True, extra=["--set", "connection_strategy=lazy", "--set", f"block_list={LOOPBACK_ONLY}"]
    ) as recorder:
        firefox = engines.FirefoxEngine(page_server, proxy=recorder.url)
        try:
            time.sleep(IDLE)
            url = f"{backend.url}/privacy/case?acao={page_server.origin}"
            result = firefox.fetch(page_server.origin, url, {"method": "PUT", "body": "{}"})
            time.sleep(2.0)  # and a little idling after the case
        finally:
            firefox.close()
        assert not result.ok and result.cors_key == "CORSMethodNotFound", result.console  # the case really ran
        seen = recorder.records()
    ours = {urlsplit(page_server.origin).netloc, urlsplit(page_server.other_origin).netloc, urlsplit(backend.url).netloc}
    hosts = [urlsplit(entry["url"]).netloc or entry["url"] for entry in seen]
    assert [e["method"] for e in seen if "/privacy/case" in e["path"]] == ["OPTIONS"], seen  # the case went through it
    strangers = [(entry["event"], entry["method"], entry["url"]) for entry, host in zip(seen, hosts) if host not in ours]
    assert not strangers, f"Firefox talked to more than the test's servers: {strangers}"


@pytest.mark.parametrize("engine", ["firefox"], indirect=True)
def test_missing_engine_is_skipped_with_its_reason(engine: str) -> None:
    """With Firefox and WebKitWebDriver pointed at nothing, their tests skip and the summary says why."""
    env = {**os.environ, "CORSGATE_FIREFOX": "/nonexistent/firefox", "CORSGATE_WEBKIT_DRIVER": "/nonexistent/wkd"}
    for name in ("firefox", "webkit"):
        reason = subprocess.run(
            [sys.executable, "-c", f"from tests.support import engines; print(engines.unavailable_reason({name!r}))"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        ).stdout
        assert "not found" in reason and "apt-get install" in reason, reason
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/browser/test_browser_cases.py::test_authorization_under_star", "-k", "mitmdump and not chromium"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for line in ("firefox browser tests skipped: Firefox not found at /nonexistent/firefox",
                 "webkit browser tests skipped: WebKitWebDriver not found at /nonexistent/wkd", "2 skipped"):
        assert line in run.stdout, run.stdout
