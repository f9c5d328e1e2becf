"""Fixtures for the real-browser tests (DESIGN §6): each engine, one page server, one backend per session.

`engine` runs a test once per engine (Chromium, Firefox, WebKit); each engine is started
once per session, on first use, and quit at the end by its own handle. An engine that is
missing, or that fails to start, skips its tests with the reason, which is also printed
in the terminal summary, so a skipped engine is never mistaken for a passing one.
Tests that ask only for `browser_harness`/`browser_fetch` are Chromium's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import engines
from tests.support.browser import (
    ENGINES,
    ONE_LAUNCHER,
    BrowserFetch,
    BrowserHarness,
    Engine,
    FetchResult,
    OriginUnavailable,
    PageServer,
)
from tests.support.procs import Backend, ProxyPool

HERE = Path(__file__).resolve().parent
REASONS: dict[str, str | None] = {name: engines.unavailable_reason(name) for name in ENGINES}
NOT_STARTED: dict[str, str] = {}  # engine -> why it failed to start


def engine_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("engine", "chromium") if callspec is not None else "chromium"


def lean_launcher(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("launcher") == "lean"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything here `browser` (so `-m "not browser"` deselects it) and skip what a missing engine cannot run."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            name = engine_of(item)
            if REASONS[name] is not None:
                item.add_marker(pytest.mark.skip(reason=f"{name} browser tests: {REASONS[name]}"))
            elif name != "chromium" and lean_launcher(item):
                item.add_marker(pytest.mark.skip(reason=f"{name}: {ONE_LAUNCHER}"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name in ENGINES:
        reason = REASONS[name] or NOT_STARTED.get(name)
        if reason is not None:
            terminalreporter.write_line(f"{name} browser tests skipped: {reason}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def page_server() -> Iterator[PageServer]:
    """The blank page every engine loads, on the same origins for all of them."""
    pages = PageServer()
    yield pages
    pages.close()


@pytest.fixture(scope="session")
def browser_harness(page_server: PageServer) -> Iterator[BrowserHarness]:
    # Imported here, not at the top: without playwright this module must still load to skip the tests.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        harness = BrowserHarness(playwright, page_server)
        try:
            yield harness
        finally:
            harness.close()


@pytest.fixture(scope="session")
def browser_fetch(browser_harness: BrowserHarness) -> BrowserFetch:
    """browser_fetch(page_origin, url, init, *, new_context=True, proxy=None, cookies=()) -> FetchResult."""
    return browser_harness.fetch


class EnginePool:
    """Firefox and WebKit, each started on first use and closed at the end of the session."""

    def __init__(self, pages: PageServer) -> None:
        self._pages = pages
        self._started: dict[str, Engine] = {}

    def get(self, name: str) -> Engine:
        if name in NOT_STARTED:
            pytest.skip(f"{name} could not start: {NOT_STARTED[name]}")
        if name not in self._started:
            try:
                self._started[name] = engines.start(name, self._pages)
            except Exception as e:  # noqa: BLE001 - any failure to start is the skip reason
                NOT_STARTED[name] = f"{type(e).__name__}: {e}"
                pytest.skip(f"{name} could not start: {NOT_STARTED[name]}")
        return self._started[name]

    def close(self) -> None:
        for engine in self._started.values():
            engine.close()


@pytest.fixture(scope="session")
def engine_pool(page_server: PageServer) -> Iterator[EnginePool]:
    pool = EnginePool(page_server)
    yield pool
    pool.close()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest, engine_pool: EnginePool) -> Engine:
    """The engine a test runs in: every test that asks for it runs once per engine."""
    if request.param == "chromium":
        return request.getfixturevalue("browser_harness")
    return engine_pool.get(request.param)


@pytest.fixture
def engine_fetch(engine: Engine) -> Callable[..., FetchResult]:
    """engine.fetch, skipping (with the reason) a case whose page origin this engine's driver cannot serve."""

    def fetch(*args: Any, **kwargs: Any) -> FetchResult:
        try:
            return engine.fetch(*args, **kwargs)
        except OriginUnavailable as e:
            pytest.skip(str(e))

    return fetch


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
