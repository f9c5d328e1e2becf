"""Fixtures for the real-browser tests (DESIGN §6): one Chromium, one page server, one backend per session.

Where Chromium or playwright is missing, every test here is skipped with one
reason, printed in the terminal summary too, so a skipped browser suite is never
mistaken for a passing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import BrowserFetch, BrowserHarness, unavailable_reason
from tests.support.procs import Backend, ProxyPool

HERE = Path(__file__).resolve().parent
SKIP_REASON = unavailable_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything here `browser` (so `-m "not browser"` deselects it) and skip it where it cannot run."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            if SKIP_REASON is not None:
                item.add_marker(pytest.mark.skip(reason=f"browser tests: {SKIP_REASON}"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SKIP_REASON is not None:
        terminalreporter.write_line(f"browser tests skipped: {SKIP_REASON}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def browser_harness() -> Iterator[BrowserHarness]:
    # Imported here, not at the top: without playwright this module must still load to skip the tests.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        harness = BrowserHarness(playwright)
        try:
            yield harness
        finally:
            harness.close()


@pytest.fixture(scope="session")
def browser_fetch(browser_harness: BrowserHarness) -> BrowserFetch:
    """browser_fetch(page_origin, url, init, *, new_context=True, proxy=None, cookies=()) -> FetchResult."""
    return browser_harness.fetch


@pytest.fixture(scope="session")
def backend(launcher: tuple[str, ...] | None) -> Iterator[Backend]:
    """The CORS-less backend; tests tell their requests apart by path, so one serves each launcher's run
    (a fresh one per launcher, so the hits of the same path start from zero)."""
    with Backend() as server:
        yield server


@pytest.fixture(scope="session")
def proxies(launcher: tuple[str, ...] | None) -> Iterator[ProxyPool]:
    """proxies(policy=None, mode=None, extra=(), *, addon=True) -> a running, recording Proxy (see ProxyPool)."""
    pool = ProxyPool(launcher)
    yield pool
    pool.stop()
