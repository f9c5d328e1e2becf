"""Real-browser harness: one small interface for three engines (Chromium, Firefox, WebKit).

A page is loaded from one origin and runs ``fetch`` against the proxy on another,
so the browser, not our code, decides whether the exchange is allowed. Every engine
answers the same two calls, `fetch` (one fetch, the FetchResult below) and
`fetch_batch` (many, from one page), and reports what the page's script saw plus
the console messages the engine printed meanwhile. Whether a preflight was sent is
what the recording proxy and the backend saw (procs.Proxy.records, Backend.hits).
Chromium (this module) is driven by playwright; Firefox and WebKit by their own
automation protocols (tests/support/engines.py). Drivers are imported lazily: test
modules may import this file where they are absent, and the browser conftest then
skips that engine's tests with the reason printed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Playwright

CHROMIUM = Path(os.environ.get("CORSGATE_CHROMIUM", "/usr/bin/chromium"))
# No sandbox (CI containers run as root), nothing that phones home or races the test for the network.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium sends loopback requests direct unless told otherwise; this subtracts that implicit bypass rule.
PROXY_LOOPBACK = "<-loopback>"
CORS_BLOCKED = "blocked by CORS policy"
ENGINES = ("chromium", "firefox", "webkit")
# The lean launcher (issue 8) changes the proxy, not the browser: Chromium runs under both launchers, Firefox
# and WebKit under mitmdump only, which keeps .ci/run (two Python pairs) well under its 45 minutes.
ONE_LAUNCHER = "the lean launcher is proven with Chromium; Firefox and WebKit run under mitmdump only (CI time)"
# How each engine's console message for a CORS failure starts (WebKit's reason lines carry the source
# and level WebKit prints before them, see engines.py); Firefox's warnings start "Cross-Origin Request Warning".
FIREFOX_BLOCKED = "Cross-Origin Request Blocked: "
WEBKIT_SECURITY = "SECURITY ERROR "
# What fetch() rejects with when an engine blocks (or the network fails).
REJECTION = {
    "chromium": "TypeError: Failed to fetch",
    "firefox": "TypeError: NetworkError when attempting to fetch resource.",
    "webkit": "TypeError: Load failed",
}
# An empty favicon keeps Chromium from requesting /favicon.ico and logging its 404 as a console error.
BLANK_PAGE = (
    b'<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
    b"<title>corsgate</title></head><body></body></html>"
)
_CONSOLE_GRACE = 1.0
PAGE_PATH = "/__corsgate_page"

# Runs fetch() for every [url, init] with at most `limit` in flight; never rejects. With `mark` (WebKit, whose
# console lines name no URL), each fetch is bracketed by "corsgate-begin MARK:i" / "corsgate-end MARK:i" logs.
FETCH_MANY_JS = """
async ([items, limit, timeout, mark]) => {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      const [url, init] = items[i];
      if (mark) console.log(`corsgate-begin ${mark}:${i}`);
      try {
        const response = await fetch(url, {...init, signal: AbortSignal.timeout(timeout)});
        const headers = {};
        response.headers.forEach((value, name) => { headers[name] = value; });
        const body = await response.text();
        results[i] = {ok: true, status: response.status, type: response.type, headers, body, error: null};
      } catch (e) {
        results[i] = {ok: false, status: null, type: null, headers: {}, body: null, error: String(e)};
      }
      if (mark) console.log(`corsgate-end ${mark}:${i}`);
    }
  }
  await Promise.all(Array.from({length: limit}, worker));
  return results;
}
"""
FETCH_TIMEOUT_MS = 15_000


class OriginUnavailable(Exception):
    """This engine's driver cannot show a page on the requested origin here (the test skips with the reason)."""


def unavailable_reason() -> str | None:
    """Why the Chromium browser tests cannot run here, or None when they can."""
    if find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright; no browser download needed)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CORSGATE_CHROMIUM)"
    return None


@dataclass(frozen=True)
class FetchResult:
    """What the page's script saw, plus what the engine printed to the console meanwhile."""

    ok: bool  # the fetch promise resolved (False: rejected with a TypeError)
    status: int | None
    type: str | None  # "cors" for a readable cross-origin response, "basic" for same-origin
    readable_headers: dict[str, str]  # what JS sees via response.headers (names lower-cased)
    body: str | None
    error: str | None  # e.g. "TypeError: Failed to fetch"
    console: list[str] = field(default_factory=list)
    cookies: list[dict[str, Any]] = field(default_factory=list)  # the context's cookies after the fetch
    engine: str = "chromium"
    console_keys: list[str] = field(default_factory=list)  # Firefox: each console message's key (its category)

    @property
    def cors_error(self) -> str | None:
        """The engine's CORS console message, as printed, if any: Chromium's "Access to fetch at ... has been
        blocked by CORS policy: ...", Firefox's "Cross-Origin Request Blocked: ...", WebKit's reason line
        ("Origin ... is not allowed by Access-Control-Allow-Origin. Status code: 200")."""
        index = self._cors_index()
        if index is None:
            return None
        message = self.console[index]
        return message.removeprefix(WEBKIT_SECURITY) if self.engine == "webkit" else message

    @property
    def cors_key(self) -> str | None:
        """Firefox's message key of the CORS error (e.g. CORSMissingAllowOrigin2); None elsewhere or if none."""
        index = self._cors_index()
        return self.console_keys[index] if index is not None and self.console_keys else None

    def _cors_index(self) -> int | None:
        marker = {"chromium": CORS_BLOCKED, "firefox": FIREFOX_BLOCKED, "webkit": WEBKIT_SECURITY}[self.engine]
        return next((i for i, m in enumerate(self.console) if marker in m), None)

    def json(self) -> Any:
        """The body parsed as JSON (the backend's echo)."""
        assert self.body is not None, self
        return json.loads(self.body)


BrowserFetch = Callable[..., FetchResult]
"""The type of the `browser_fetch` fixture: BrowserHarness.fetch."""


class PageServer:
    """Serves a blank HTML page on 127.0.0.1, reachable as two origins (127.0.0.1 and localhost), and on request
    on more ports (a policy's allowlisted http://127.0.0.1:5173, for drivers without request interception)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(BLANK_PAGE)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(BLANK_PAGE)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: page loads are not what the tests look at."""

        self._handler = Handler
        self._servers: dict[int, tuple[ThreadingHTTPServer, threading.Thread]] = {}
        self.port = self._serve(0)
        self.origin = f"http://127.0.0.1:{self.port}"
        self.other_origin = f"http://localhost:{self.port}"  # same server, a second origin (and a second site)

    def _serve(self, port: int) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
        thread.start()
        self._servers[server.server_address[1]] = (server, thread)
        return server.server_address[1]

    def serves(self, origin: str) -> bool:
        """Whether a page on `origin` is (or can now be) served for real: an http origin on 127.0.0.1 or
        localhost whose port is ours or free (it is bound on the first ask)."""
        parts = urlsplit(origin)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            return False
        if parts.port not in self._servers:
            try:
                self._serve(parts.port)
            except OSError:
                return False
        return True

    def close(self) -> None:
        for server, thread in self._servers.values():
            server.shutdown()
            server.server_close()
            thread.join(5)


class _Tab:
    """A loaded page and the console messages it collects."""

    def __init__(self, context: BrowserContext, page_origin: str, real_origins: Sequence[str]) -> None:
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        page_url = page_origin.rstrip("/") + PAGE_PATH
        virtual = page_origin not in real_origins
        if virtual:
            self.page.route(page_url, lambda route: route.fulfill(content_type="text/html", body=BLANK_PAGE))
            # A page that is not really served from loopback would need Chromium's Local Network
            # Access permission to reach the loopback proxy; grant it, since that check is not CORS.
            context.grant_permissions(["local-network-access"], origin=page_origin)
        self.page.goto(page_url, wait_until="load")
        if virtual:
            # While any route is installed, playwright answers CORS preflights itself with
            # permissive headers; the proxy must see them, so interception ends here.
            self.page.unroute(page_url)

    def fetch(self, url: str, init: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Run fetch() in the page; returns its outcome and the console messages printed meanwhile."""
        self.console.clear()
        raw = self.page.evaluate(FETCH_MANY_JS, [[[url, dict(init)]], 1, FETCH_TIMEOUT_MS, None])[0]
        if not raw["ok"]:
            # Chromium logs the reason slightly after the promise rejects (not at all if it was no CORS error).
            deadline = time.monotonic() + _CONSOLE_GRACE
            while not any(CORS_BLOCKED in m for m in self.console) and time.monotonic() < deadline:
                self.page.wait_for_timeout(50)
        return raw, list(self.console)


class OnPageServer:
    """The page origins of an engine whose pages come from `pages`."""

    pages: PageServer

    @property
    def origin(self) -> str:
        """http://127.0.0.1:PAGE_PORT: same site as the proxy (so SameSite=Lax cookies go along), cross-origin."""
        return self.pages.origin

    @property
    def other_origin(self) -> str:
        """http://localhost:PAGE_PORT: another origin and another site than both the proxy and `origin`."""
        return self.pages.other_origin


class BrowserHarness(OnPageServer):
    """One Chromium for the whole session; a fresh context (cache, cookies, preflight cache) per fetch by default."""

    name = "chromium"

    def __init__(self, playwright: Playwright, pages: PageServer | None = None) -> None:
        self._own_pages = pages is None
        self.pages = pages or PageServer()
        self._home = tempfile.mkdtemp(prefix="corsgate-chromium-home-")
        # launch() gives Chromium a fresh temporary user-data dir; HOME keeps the Debian wrapper and
        # Chromium from reading or writing the developer's ~/.config/chromium.
        self.browser: Browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=LAUNCH_ARGS,
            env={**os.environ, "HOME": self._home},
            headless=True,
            timeout=30_000,
        )
        self._shared: dict[str | None, BrowserContext] = {}
        self._tabs: dict[tuple[str | None, str], _Tab] = {}

    def close(self) -> None:
        for context in self._shared.values():
            context.close()
        self.browser.close()
        if self._own_pages:
            self.pages.close()
        shutil.rmtree(self._home, ignore_errors=True)

    def _new_context(self, proxy: str | None) -> BrowserContext:
        options: dict[str, Any] = {}
        if proxy is not None:
            options["proxy"] = {"server": proxy, "bypass": PROXY_LOOPBACK}
        context = self.browser.new_context(**options)
        context.set_default_timeout(15_000)
        return context

    @contextmanager
    def _tab(self, page_origin: str, new_context: bool, proxy: str | None) -> Iterator[tuple[BrowserContext, _Tab]]:
        real = (self.origin, self.other_origin)
        if not new_context:
            if proxy not in self._shared:
                self._shared[proxy] = self._new_context(proxy)
            context = self._shared[proxy]
            if (proxy, page_origin) not in self._tabs:
                self._tabs[proxy, page_origin] = _Tab(context, page_origin, real)
            yield context, self._tabs[proxy, page_origin]
            return
        context = self._new_context(proxy)
        try:
            yield context, _Tab(context, page_origin, real)
        finally:
            context.close()

    def fetch(
        self,
        page_origin: str,
        url: str,
        init: Mapping[str, Any] | None = None,
        *,
        new_context: bool = True,
        proxy: str | None = None,
        cookies: Sequence[Mapping[str, Any]] = (),
    ) -> FetchResult:
        """Open a page at page_origin and run ``fetch(url, init)`` in it.

        The page server's two origins are loaded for real; any other origin (say an
        allowlisted ``https://app.example.com`` or ``http://127.0.0.1:5173``) gets the
        blank page from playwright's request interception, so a shipped policy's
        allowlist can be tested without binding its port or resolving its name
        (such origins are granted Local Network Access to reach the loopback proxy).

        new_context=False reuses one long-lived context (per proxy) and its page for
        page_origin: much quicker, and the HTTP cache and the preflight cache carry over
        between calls, so give such cases their own URL (and no cookies).
        proxy ("http://127.0.0.1:PORT") sends everything, loopback included, through a
        proxy in regular mode. cookies are playwright cookie dicts added to the context
        first, e.g. {"name": "sid", "value": "1", "url": proxy_url}.
        """
        with self._tab(page_origin, new_context, proxy) as (context, tab):
            if cookies:
                context.add_cookies([dict(c) for c in cookies])
            raw, console = tab.fetch(url, init or {})
            jar = context.cookies()
        return result_of(raw, console, cookies=jar, engine=self.name)

    def fetch_batch(
        self,
        page_origin: str,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        tags: Sequence[str],
        *,
        cookies: Sequence[Mapping[str, Any]] = (),
        concurrency: int = 8,
        grace: float = 5.0,
    ) -> list[FetchResult]:
        """Run every (url, init) from one page at page_origin (a real one) in one fresh context, at most
        `concurrency` in flight; each result carries the console messages that contain its tag (a string
        only its URL holds). Waits up to `grace` for the message of every rejected fetch."""
        context = self._new_context(None)
        try:
            if cookies:
                context.add_cookies([dict(c) for c in cookies])
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(page_origin.rstrip("/") + PAGE_PATH, wait_until="load")
            raw = page.evaluate(FETCH_MANY_JS, [[[u, dict(i)] for u, i in items], concurrency, FETCH_TIMEOUT_MS, None])
            rejected = [tag for tag, r in zip(tags, raw) if not r["ok"]]
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and not all(any(tag in m for m in console) for tag in rejected):
                page.wait_for_timeout(50)
            jar = context.cookies()
        finally:
            context.close()
        return [
            result_of(r, [m for m in console if tag in m], cookies=jar, engine=self.name) for tag, r in zip(tags, raw)
        ]


def result_of(
    raw: Mapping[str, Any], console: list[str], *, cookies: list[dict[str, Any]], engine: str,
    keys: list[str] | None = None,
) -> FetchResult:
    """A FetchResult from FETCH_MANY_JS's record of one fetch and the console messages that belong to it."""
    return FetchResult(
        ok=raw["ok"], status=raw["status"], type=raw["type"], readable_headers=raw["headers"], body=raw["body"],
        error=raw["error"], console=console, cookies=cookies, engine=engine, console_keys=keys or [],
    )


class Engine(Protocol):
    """What every engine's driver offers the tests (BrowserHarness for Chromium; engines.py for the others)."""

    name: str
    pages: PageServer

    @property
    def origin(self) -> str: ...

    @property
    def other_origin(self) -> str: ...

    def fetch(
        self, page_origin: str, url: str, init: Mapping[str, Any] | None = None, *, new_context: bool = True,
        proxy: str | None = None, cookies: Sequence[Mapping[str, Any]] = (),
    ) -> FetchResult: ...

    def fetch_batch(
        self, page_origin: str, items: Sequence[tuple[str, Mapping[str, Any]]], tags: Sequence[str], *,
        cookies: Sequence[Mapping[str, Any]] = (), concurrency: int = 8, grace: float = 5.0,
    ) -> list[FetchResult]: ...

    def close(self) -> None: ...
