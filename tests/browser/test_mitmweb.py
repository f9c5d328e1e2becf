"""The verdict in mitmweb's flow list (issue 18 part 3): real mitmweb with the addon in reverse mode, three flows
(ok, blocked preflight, disallowed origin), headless Chromium on mitmweb's own page. Each row shows its flow's
verdict in the comment column; with web_columns set by the user, their columns and only theirs.

CORSGATE_SCREENSHOT=PATH also saves the flow list as a PNG there (the README's picture is made this way).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.browser import BrowserHarness
from tests.support.procs import REPO, Backend, Proxy, free_port, http

MITMWEB = (sys.executable, "-c", "import sys; from mitmproxy.tools.main import mitmweb; sys.exit(mitmweb())")
POLICY = REPO / "policies" / "strict-allowlist.yaml"
ALLOWED = "http://127.0.0.1:5173"  # in strict-allowlist.yaml
OUTSIDE = "https://evil.example.net"
WEB_URL = re.compile(r"Web server listening at (http://\S+)")


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    with Backend() as server:
        yield server


def mitmweb(backend: Backend, extra: Sequence[str] = ()) -> tuple[Proxy, str]:
    """mitmweb with the addon (reverse mode, strict-allowlist.yaml) and the URL of its UI, auth token included
    (mitmproxy 12 puts a random one in the URL it logs; 11 has no token)."""
    args = ["--set", f"web_port={free_port()}", "--set", "web_open_browser=false", *extra]
    proxy = Proxy(POLICY, mode=f"reverse:{backend.url}", extra=args, launcher=MITMWEB)
    match = WEB_URL.search(proxy.log())
    if match is None:
        proxy.stop()
        raise AssertionError(f"mitmweb logged no UI address:\n{proxy.log()}")
    return proxy, match.group(1)


def make_flows(proxy: Proxy) -> dict[str, str]:
    """The three flows, by the path that tells their rows apart -> the verdict text the row must show."""
    status, _, _ = http("GET", f"{proxy.url}/api/items?flow=ok", {"Origin": ALLOWED})
    assert status == 200
    status, _, _ = http("OPTIONS", f"{proxy.url}/api/items?flow=preflight",
                        {"Origin": OUTSIDE, "Access-Control-Request-Method": "PUT"})
    assert status == 403
    status, _, _ = http("GET", f"{proxy.url}/api/items?flow=outside", {"Origin": OUTSIDE})
    assert status == 200
    return {
        "flow=ok": "CORS actual: ok",
        "flow=preflight": "CORS preflight: blocked in Chrome: Response to preflight request doesn't pass access control check",
        "flow=outside": "CORS actual: blocked in Chrome: No 'Access-Control-Allow-Origin' header is present",
    }


def flow_list(browser_harness: BrowserHarness, url: str, rows: int, ready: tuple[str, str],
              screenshot: Path | None = None) -> tuple[list[str], list[str]]:
    """The column classes of the flow table's header and the text of each row, as mitmweb renders them.

    The UI draws its default columns until the options reach it over its websocket; `ready` (selector, state)
    is the header cell whose arrival or departure shows they did (bounded: a timeout fails the test)."""
    # mitmweb's CSP forbids eval; playwright's own page scripts need it (the page's behaviour is unchanged).
    context = browser_harness.browser.new_context(viewport={"width": 1280, "height": 290}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url, timeout=20_000)
        page.wait_for_function(f"document.querySelectorAll('.flow-table tbody tr').length >= {rows}", timeout=20_000)
        page.wait_for_selector(ready[0], state=ready[1], timeout=20_000)  # type: ignore[arg-type]
        columns = page.eval_on_selector_all(".flow-table thead th", "ths => ths.map(th => th.className)")
        texts = page.eval_on_selector_all(".flow-table tbody tr", "trs => trs.map(tr => tr.innerText)")
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        return columns, texts
    finally:
        context.close()


def test_rows_show_each_flows_verdict(browser_harness: BrowserHarness, backend: Backend, tmp_path: Path) -> None:
    proxy, url = mitmweb(backend)
    with proxy:
        assert "mitmweb shows the 'comment' column" in proxy.log()
        expected = make_flows(proxy)
        shot = tmp_path / "mitmweb.png"
        columns, rows = flow_list(browser_harness, url, len(expected), (".flow-table th.col-comment", "attached"), shot)
    assert any("col-comment" in c for c in columns), columns
    for path, verdict in expected.items():
        (row,) = [r for r in rows if path in r]
        assert verdict in row, (path, row)
    if os.environ.get("CORSGATE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["CORSGATE_SCREENSHOT"])


def test_user_set_web_columns_stay_as_they_are(browser_harness: BrowserHarness, backend: Backend) -> None:
    proxy, url = mitmweb(backend, ["--set", "web_columns=method", "--set", "web_columns=path",
                                   "--set", "web_columns=status"])
    with proxy:
        assert "mitmweb shows the 'comment' column" not in proxy.log()
        expected = make_flows(proxy)
        # The default's first column goes once the user's columns arrive (theirs have no tls column).
        columns, rows = flow_list(browser_harness, url, len(expected), (".flow-table th.col-tls", "detached"))
    shown = [c for c in columns if c not in ("col-quickactions", "col-filler")]  # mitmweb's own, always there
    assert shown == ["col-method", "col-path", "col-status"], columns
    assert not any("CORS " in r for r in rows), rows  # the verdicts are there, in the Comment tab, not the list
