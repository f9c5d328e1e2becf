"""Firefox (marionette) and WebKit (WebKitWebDriver) behind browser.py's Engine interface, and the way to start any engine.

Both are Debian's packages, driven without any browser download (see /work/shared/notes/browsers.md):
- Firefox ESR through its own automation protocol (PyPI marionette-driver; no geckodriver exists here).
  Its console is read in chrome context from `Services.console`: each CORS error is an nsIScriptError
  whose category is the message key. The profile's user.js locks it down so that it talks to nothing
  but the test's servers (tests/browser/test_engines.py proves it with a recording proxy).
- WebKitGTK through WebKitWebDriver and selenium, on an Xvfb display, with webkit_browser.py as the
  browser: its console lines come out on the driver's stderr, captured into a file. They name no URL,
  so a batch runs one fetch at a time between logged markers.
Each engine runs once per session, in its own temporary directory (HOME and XDG_* point inside), and is
quit through its own handle; the processes it started are stopped by their Popen handles.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.browser import (
    FETCH_MANY_JS,
    FETCH_TIMEOUT_MS,
    PAGE_PATH,
    Engine,
    FetchResult,
    OnPageServer,
    OriginUnavailable,
    PageServer,
    result_of,
)
from tests.support.procs import free_port

FIREFOX = Path(os.environ.get("CORSGATE_FIREFOX", "/usr/bin/firefox-esr"))
WEBKIT_DRIVER = Path(os.environ.get("CORSGATE_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver"))
WEBKIT_BROWSER = Path(__file__).with_name("webkit_browser.py")  # runs under /usr/bin/python3 (its shebang)
SYSTEM_PYTHON = "/usr/bin/python3"
XVFB = "Xvfb"
START_TIMEOUT = 60.0
_GI_CHECK = "import gi; gi.require_version('Gtk', '3.0'); gi.require_version('WebKit2', '4.1'); from gi.repository import WebKit2"

# Runs FETCH_MANY_JS from a WebDriver async script (the callback is the last argument).
_ASYNC_FETCH_MANY = f"const done = arguments[arguments.length - 1]; ({FETCH_MANY_JS})(arguments[0]).then(done);"


def _private_env(root: Path) -> dict[str, str]:
    """The environment of a browser process: HOME and the XDG folders inside its own temp dir."""
    env = dict(os.environ)
    for name, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                      ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"), ("XDG_RUNTIME_DIR", "runtime")):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        env[name] = str(root / sub)
    return env


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class _ScriptedEngine(OnPageServer):
    """What Firefox and WebKit share: pages from the page server, fetches as WebDriver async scripts."""

    name = ""

    def __init__(self, pages: PageServer | None = None) -> None:
        self._own_pages = pages is None
        self.pages = pages or PageServer()
        self.dir = Path(tempfile.mkdtemp(prefix=f"corsgate-{self.name}-"))
        self._procs: list[subprocess.Popen[bytes]] = []

    # -- what each driver provides
    def _navigate(self, url: str) -> None:
        raise NotImplementedError

    def _run_async(self, script: str, args: Sequence[Any], timeout_ms: int) -> Any:
        raise NotImplementedError

    def _add_cookie(self, cookie: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _cookies(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _clear_state(self) -> None:
        """Forget cookies and cached responses (what a fresh Chromium context starts without)."""
        raise NotImplementedError

    def _console_start(self) -> None:
        raise NotImplementedError

    def _console_of(self, tags: Sequence[str], rejected: Sequence[bool], grace: float) -> list[tuple[list[str], list[str]]]:
        """Per fetch: the console messages that belong to it and their keys (Firefox only)."""
        raise NotImplementedError

    # -- the interface
    def _open(self, page_origin: str) -> None:
        if not self.pages.serves(page_origin):
            raise OriginUnavailable(
                f"{self.name}: a page on {page_origin} needs request interception, which only the playwright "
                "driver (Chromium) has; this driver serves real pages on http://127.0.0.1 and localhost ports only"
            )
        self._navigate(page_origin.rstrip("/") + PAGE_PATH)

    def _set_cookies(self, cookies: Sequence[Mapping[str, Any]]) -> None:
        """Playwright-style cookies ({"name", "value", "url"}), each set from a page on its URL's host (cookies
        ignore the port, so the page server's origin on that host will do)."""
        for cookie in cookies:
            host = urlsplit(str(cookie["url"])).hostname
            self._navigate(f"http://{host}:{self.pages.port}{PAGE_PATH}")
            self._add_cookie({"name": cookie["name"], "value": cookie["value"], "path": "/"})

    def fetch(
        self, page_origin: str, url: str, init: Mapping[str, Any] | None = None, *, new_context: bool = True,
        proxy: str | None = None, cookies: Sequence[Mapping[str, Any]] = (),
    ) -> FetchResult:
        """As BrowserHarness.fetch. new_context=True clears cookies and the HTTP cache first (each case has its
        own URL, so no preflight answer is reused either way)."""
        if proxy is not None:
            return self._via_proxy(proxy).fetch(page_origin, url, init, new_context=new_context, cookies=cookies)
        if new_context:
            self._clear_state()
        (result,) = self.fetch_batch(page_origin, [(url, init or {})], [url], cookies=cookies, concurrency=1)
        return self._with_cookies_of(result, url)

    def _with_cookies_of(self, result: FetchResult, url: str) -> FetchResult:
        return result

    def fetch_batch(
        self, page_origin: str, items: Sequence[tuple[str, Mapping[str, Any]]], tags: Sequence[str], *,
        cookies: Sequence[Mapping[str, Any]] = (), concurrency: int = 8, grace: float = 5.0,
    ) -> list[FetchResult]:
        """As BrowserHarness.fetch_batch (cookies are added to the session's jar, not a fresh one)."""
        self._set_cookies(cookies)
        self._open(page_origin)
        self._console_start()
        timeout = FETCH_TIMEOUT_MS + 1000 * len(items)
        raw = self._run_async(
            _ASYNC_FETCH_MANY, [[[[u, dict(i)] for u, i in items], *self._batch_args(concurrency)]], timeout
        )
        consoles = self._console_of(tags, [not r["ok"] for r in raw], grace)
        jar = self._cookies()
        return [
            result_of(r, console, cookies=jar, engine=self.name, keys=keys) for r, (console, keys) in zip(raw, consoles)
        ]

    def _batch_args(self, concurrency: int) -> list[Any]:
        return [concurrency, FETCH_TIMEOUT_MS, None]

    def _via_proxy(self, proxy: str) -> Engine:
        raise NotImplementedError

    def close(self) -> None:
        for proc in reversed(self._procs):
            _stop(proc)
        if self._own_pages:
            self.pages.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- Firefox --------------------------------------------------------------------------------------------------

def firefox_prefs(dead: str) -> dict[str, Any]:
    """user.js for a Firefox that talks to nothing but the test's servers: the background services are off,
    and every service it would still call points at `dead` (a local URL nothing listens on) plus the pref's
    name, so a call that slips through names its pref in the privacy test's failure."""
    prefs = {
        "marionette.port": 0,  # a free port, written to MarionetteActivePort
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "browser.startup.page": 0,
        "startup.homepage_welcome_url": "about:blank",
        "browser.aboutwelcome.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.healthreport.uploadEnabled": False,
        "toolkit.telemetry.enabled": False,
        "toolkit.telemetry.unified": False,
        "toolkit.telemetry.server": dead,
        "toolkit.telemetry.archive.enabled": False,
        "browser.ping-centre.telemetry": False,
        "app.normandy.enabled": False,
        "app.normandy.api_url": dead,
        "app.shield.optoutstudies.enabled": False,
        "app.update.auto": False,
        "app.update.enabled": False,
        "app.update.url": dead,
        "app.update.url.override": dead,
        # Honoured with MOZ_REMOTE_SETTINGS_DEVTOOLS=1; Mozilla's own test profiles use this data: URL, so the
        # sync fails at once without a request (a dead http URL is still polled).
        "services.settings.server": "data:,#remote-settings-dummy/v1",
        "services.sync.enabled": False,
        "identity.fxaccounts.enabled": False,
        "extensions.update.enabled": False,
        "extensions.update.autoUpdateDefault": False,
        "extensions.getAddons.cache.enabled": False,
        "extensions.blocklist.enabled": False,
        "extensions.systemAddon.update.enabled": False,
        "extensions.systemAddon.update.url": dead,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "browser.safebrowsing.downloads.enabled": False,
        "browser.safebrowsing.downloads.remote.enabled": False,
        "browser.safebrowsing.provider.mozilla.updateURL": dead,
        "browser.safebrowsing.provider.google4.updateURL": dead,
        "browser.safebrowsing.provider.google.updateURL": dead,
        "browser.safebrowsing.blockedURIs.enabled": False,
        "browser.safebrowsing.update.enabled": False,  # the tracking-protection lists' update (a POST)
        "browser.safebrowsing.provider.mozilla.gethashURL": dead,
        "network.captive-portal-service.enabled": False,
        "network.connectivity-service.enabled": False,
        "network.trr.mode": 5,  # no DNS over HTTPS
        "network.dns.disablePrefetch": True,
        "network.prefetch-next": False,
        "network.predictor.enabled": False,
        "network.http.speculative-parallel-limit": 0,
        "browser.search.update": False,
        "browser.search.geoip.url": dead,
        "browser.region.network.url": "",  # empty: no region lookup at all (a dead URL is still called)
        "browser.region.network.scan": False,
        "browser.region.update.enabled": False,
        "geo.provider.network.url": dead,
        "media.gmp-manager.url": dead,
        "media.gmp-gmpopenh264.enabled": False,
        "media.gmp-provider.enabled": False,
        "security.OCSP.enabled": 0,
        "security.remote_settings.crlite_filters.enabled": False,
        "security.remote_settings.intermediates.enabled": False,
        "browser.newtabpage.enabled": False,
        "browser.newtabpage.activity-stream.feeds.telemetry": False,
        "browser.newtabpage.activity-stream.telemetry": False,
        "browser.newtabpage.activity-stream.feeds.snippets": False,
        "browser.newtabpage.activity-stream.feeds.section.topstories": False,
        "browser.topsites.contile.enabled": False,
        "browser.discovery.enabled": False,
        "messaging-system.rsexperimentloader.enabled": False,
        "dom.push.connection.enabled": False,
        "dom.push.serverURL": dead,
        "network.proxy.type": 0,  # direct, unless a test routes it through a proxy
    }
    return {name: f"{dead}{name}" if value == dead else value for name, value in prefs.items()}


def _user_js(prefs: Mapping[str, Any]) -> str:
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())


# Chrome context: the console's nsIScriptErrors as [category, errorMessage, isWarning].
_FIREFOX_CONSOLE = """
return Services.console.getMessageArray()
  .filter(m => m instanceof Ci.nsIScriptError)
  .map(m => [m.category, m.errorMessage, (m.flags & Ci.nsIScriptError.warningFlag) !== 0]);
"""
_FIREFOX_CLEAR = """
Services.cookies.removeAll();
Services.cache2.clear();
"""
_FIREFOX_COOKIES = """
return Services.cookies.cookies.map(c => ({name: c.name, value: c.value, domain: c.host, path: c.path}));
"""
_FIREFOX_PROXY = """
const [port] = arguments;
if (port) {
  Services.prefs.setCharPref("network.proxy.http", "127.0.0.1");
  Services.prefs.setIntPref("network.proxy.http_port", port);
  Services.prefs.setBoolPref("network.proxy.allow_hijacking_localhost", true);
  Services.prefs.setIntPref("network.proxy.type", 1);
} else {
  Services.prefs.setIntPref("network.proxy.type", 0);
  Services.prefs.setBoolPref("network.proxy.allow_hijacking_localhost", false);
}
"""


class FirefoxEngine(_ScriptedEngine):
    """Debian's Firefox ESR, headless, driven over marionette."""

    name = "firefox"

    def __init__(self, pages: PageServer | None = None, proxy: str | None = None) -> None:
        """proxy ("http://127.0.0.1:PORT"): everything this Firefox sends, from its first moment and loopback
        included, goes through that proxy (HTTP and CONNECT), so a recording proxy sees all of it."""
        from marionette_driver.marionette import Marionette

        super().__init__(pages)
        self.dead_url = f"http://127.0.0.1:{free_port()}/"
        profile = self.dir / "profile"
        profile.mkdir()
        prefs = firefox_prefs(self.dead_url)
        if proxy is not None:
            port = urlsplit(proxy).port
            prefs |= {"network.proxy.type": 1, "network.proxy.http": "127.0.0.1", "network.proxy.http_port": port,
                      "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": port,
                      "network.proxy.allow_hijacking_localhost": True, "network.proxy.no_proxies_on": "",
                      "network.proxy.share_proxy_settings": True}
        (profile / "user.js").write_text(_user_js(prefs))
        env = {**_private_env(self.dir), "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}
        self.log_path = self.dir / "firefox.log"
        with open(self.log_path, "wb") as log:
            self._procs.append(subprocess.Popen(
                [str(FIREFOX), "--headless", "--marionette", "--remote-allow-system-access", "--no-remote",
                 "--profile", str(profile), "about:blank"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            ))
        try:
            port = self._marionette_port(profile / "MarionetteActivePort")
            self.marionette = Marionette(host="127.0.0.1", port=port, socket_timeout=60)
            self.marionette.start_session()
        except BaseException:
            self.close()
            raise
        self.version = str(self.marionette.session_capabilities.get("browserVersion"))

    def _marionette_port(self, path: Path) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while not (path.exists() and path.read_text().strip()):
            if self._procs[0].poll() is not None:
                raise RuntimeError(f"firefox exited with rc {self._procs[0].returncode}:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"firefox wrote no marionette port in {START_TIMEOUT} s")
            time.sleep(0.05)
        return int(path.read_text())

    def _chrome(self, script: str, args: Sequence[Any] = ()) -> Any:
        with self.marionette.using_context(self.marionette.CONTEXT_CHROME):
            return self.marionette.execute_script(script, script_args=list(args))

    def _navigate(self, url: str) -> None:
        self.marionette.navigate(url)

    def _run_async(self, script: str, args: Sequence[Any], timeout_ms: int) -> Any:
        return self.marionette.execute_async_script(script, script_args=list(args), script_timeout=timeout_ms)

    def _add_cookie(self, cookie: Mapping[str, Any]) -> None:
        self.marionette.add_cookie(dict(cookie))

    def _cookies(self) -> list[dict[str, Any]]:
        # The parent process's jar, every host (as playwright's context.cookies()); marionette's get_cookies
        # asks the page, which may not have heard of a cookie its last response just set.
        return [dict(c) for c in self._chrome(_FIREFOX_COOKIES)]

    def _clear_state(self) -> None:
        self._chrome(_FIREFOX_CLEAR)

    def _console_start(self) -> None:
        self._chrome("Services.console.reset();")

    def console(self) -> list[tuple[str, str, bool]]:
        """Every nsIScriptError logged since the last batch started: (category, text, is a warning)."""
        return [tuple(m) for m in self._chrome(_FIREFOX_CONSOLE)]  # type: ignore[misc]

    def _console_of(self, tags: Sequence[str], rejected: Sequence[bool], grace: float) -> list[tuple[list[str], list[str]]]:
        # Logged asynchronously, a little after the promise settles; a URL is in each CORS message.
        deadline = time.monotonic() + grace
        while True:
            messages = self.console()
            if time.monotonic() > deadline or all(
                any(tag in text for _, text, _ in messages) for tag, blocked in zip(tags, rejected) if blocked
            ):
                break
            time.sleep(0.05)
        time.sleep(0.2)  # a blocked preflight's second message (CORSDidNotSucceed2) comes just after the first
        messages = self.console()
        out = []
        for tag in tags:
            mine = [(key, text) for key, text, _ in messages if tag in text]
            out.append(([text for _, text in mine], [key for key, _ in mine]))
        return out

    def _via_proxy(self, proxy: str) -> Engine:
        return _FirefoxViaProxy(self, int(urlsplit(proxy).port or 0))

    def close(self) -> None:
        marionette = getattr(self, "marionette", None)
        if marionette is not None:
            try:
                marionette.delete_session()
            except Exception:  # noqa: BLE001 - the process is stopped below either way
                pass
        super().close()


class _FirefoxViaProxy:
    """The session's Firefox with every request (loopback included) sent through a proxy, for one fetch."""

    def __init__(self, firefox: FirefoxEngine, port: int) -> None:
        self._firefox = firefox
        self._port = port

    def fetch(self, page_origin: str, url: str, init: Mapping[str, Any] | None = None, **kwargs: Any) -> FetchResult:
        self._firefox._chrome(_FIREFOX_PROXY, [self._port])
        try:
            return self._firefox.fetch(page_origin, url, init, **kwargs)
        finally:
            self._firefox._chrome(_FIREFOX_PROXY, [0])


# -- WebKit ---------------------------------------------------------------------------------------------------

_MARK = re.compile(r"^CONSOLE LOG corsgate-(begin|end) (\S+)$")


class _Display:
    """An Xvfb display of its own (WebKitGTK has no headless mode)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [XVFB, "-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "1280x800x24"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=dict(env),
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        number = self.proc.stdout.readline().decode().strip() if ready else ""
        if not number.isdigit():
            _stop(self.proc)
            raise RuntimeError(f"Xvfb gave no display number in {START_TIMEOUT} s")
        self.name = f":{number}"


class WebKitEngine(_ScriptedEngine):
    """WebKitGTK (Safari's engine) via WebKitWebDriver, with webkit_browser.py as the browser."""

    name = "webkit"

    def __init__(
        self, proxy: str | None = None, parent: WebKitEngine | None = None, pages: PageServer | None = None
    ) -> None:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        super().__init__(parent.pages if parent else pages)
        env = _private_env(self.dir)
        self._own_display = parent is None
        try:
            self.display = parent.display if parent else _Display(env)
        except BaseException:
            super().close()
            raise
        if self._own_display:
            self._procs.append(self.display.proc)
        env |= {"DISPLAY": self.display.name, "CORSGATE_WEBKIT_DATA": str(self.dir / "website-data")}
        if proxy is not None:
            env["CORSGATE_WEBKIT_PROXY"] = proxy
        options = Options()
        options.binary_location = str(WEBKIT_BROWSER)
        options.add_argument("--automation")  # the driver adds it only to its default browser
        options.set_capability("browserName", "corsgate-webkit")
        self.log_path = self.dir / "webkit.log"
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - open for the engine's lifetime
        self._lines_read = 0
        self._batches = 0
        try:
            service = Service(executable_path=str(WEBKIT_DRIVER), log_output=self._log, env=env)
            self.driver = webdriver.WebKitGTK(options=options, service=service)
        except BaseException:
            self.close()
            raise
        self.version = str(self.driver.capabilities.get("browserVersion", ""))
        self._proxied: dict[str, WebKitEngine] = {}

    def _navigate(self, url: str) -> None:
        self.driver.get(url)

    def _run_async(self, script: str, args: Sequence[Any], timeout_ms: int) -> Any:
        self.driver.set_script_timeout(timeout_ms / 1000)
        return self.driver.execute_async_script(script, *args)

    def _add_cookie(self, cookie: Mapping[str, Any]) -> None:
        self.driver.add_cookie(dict(cookie))

    def _cookies(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.driver.get_cookies()]

    def _clear_state(self) -> None:
        # WebDriver reaches only the current page's cookies: clear both hosts the page server is on.
        for origin in (self.origin, self.other_origin):
            self._navigate(origin + PAGE_PATH)
            self.driver.delete_all_cookies()

    def _console_start(self) -> None:
        self._batches += 1

    def _with_cookies_of(self, result: FetchResult, url: str) -> FetchResult:
        """WebDriver shows only the cookies of the page's own URL, and a cookie set without Path by a response
        to /api/items has the path /api: read them from a page on the fetched URL's host and path."""
        parts = urlsplit(url)
        self._navigate(f"http://{parts.hostname}:{self.pages.port}{parts.path or '/'}")
        return replace(result, cookies=self._cookies())

    def _batch_args(self, concurrency: int) -> list[Any]:
        # One fetch at a time: WebKit's reason lines name no URL, so they are told apart by the markers.
        return [1, FETCH_TIMEOUT_MS, f"b{self._batches}"]

    def _new_lines(self) -> list[str]:
        self._log.flush()
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return lines[self._lines_read:]

    def _console_of(self, tags: Sequence[str], rejected: Sequence[bool], grace: float) -> list[tuple[list[str], list[str]]]:
        last = f"b{self._batches}:{len(tags) - 1}"
        deadline = time.monotonic() + grace
        while True:
            lines = self._new_lines()
            if any(_MARK.match(line) and line.endswith(f"end {last}") for line in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self._lines_read += len(lines)
        out: list[list[str]] = [[] for _ in tags]
        current: int | None = None
        for line in lines:
            mark = _MARK.match(line)
            if mark:
                index = int(mark.group(2).rsplit(":", 1)[1])
                current = index if mark.group(1) == "begin" else None
            elif current is not None and line.startswith("CONSOLE "):
                out[current].append(line.removeprefix("CONSOLE "))
        return [(messages, []) for messages in out]

    def _via_proxy(self, proxy: str) -> Engine:
        """A second WebKit on the same display, started with the proxy (WebKit sets a proxy per context)."""
        if proxy not in self._proxied:
            self._proxied[proxy] = WebKitEngine(proxy, self)
        return self._proxied[proxy]

    def close(self) -> None:
        for other in getattr(self, "_proxied", {}).values():
            other.close()
        driver = getattr(self, "driver", None)
        if driver is not None:
            try:
                driver.quit()  # also ends the browser; a killed driver would leave it running
            except Exception:  # noqa: BLE001 - the display and the files go below either way
                pass
        if hasattr(self, "_log"):
            self._log.close()
        super().close()


# -- starting any engine ----------------------------------------------------------------------------------------

def unavailable_reason(name: str) -> str | None:
    """Why engine `name` cannot run here (what to install), or None when it can."""
    if name == "chromium":
        from tests.support.browser import unavailable_reason as chromium_reason

        return chromium_reason()
    if name == "firefox":
        if find_spec("marionette_driver") is None:
            return "marionette-driver is not installed (pip install -r requirements-dev.txt)"
        if not os.access(FIREFOX, os.X_OK):
            return f"Firefox not found at {FIREFOX} (apt-get install firefox-esr, or set CORSGATE_FIREFOX)"
        return None
    if name == "webkit":
        if find_spec("selenium") is None:
            return "selenium is not installed (pip install -r requirements-dev.txt)"
        if not os.access(WEBKIT_DRIVER, os.X_OK):
            return f"WebKitWebDriver not found at {WEBKIT_DRIVER} (apt-get install webkit2gtk-driver)"
        if shutil.which(XVFB) is None:
            return "Xvfb not found (apt-get install xvfb xauth)"
        try:
            check = subprocess.run([SYSTEM_PYTHON, "-c", _GI_CHECK], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{SYSTEM_PYTHON} cannot run the WebKit browser program: {e}"
        if check.returncode != 0:
            return (f"{SYSTEM_PYTHON} cannot load WebKit2 4.1 through gi (apt-get install python3-gi "
                    f"gir1.2-webkit2-4.1): {check.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
        return None
    raise ValueError(f"unknown engine {name!r}")


def start(name: str, pages: PageServer | None = None) -> Engine:
    """Start engine `name` (raises with the reason if it cannot start), serving its pages from `pages` (shared
    by the engines, so a port such as 5173 is bound once). Chromium needs a playwright, so it is started by
    the conftest; this starts the other two."""
    if name == "firefox":
        return FirefoxEngine(pages)
    if name == "webkit":
        return WebKitEngine(pages=pages)
    raise ValueError(f"{name} is started by the browser conftest")
