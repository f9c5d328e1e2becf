#!/usr/bin/python3
"""A minimal WebKitGTK browser for WebKitWebDriver that prints the console (run by the system python3).

The driver's default browser runs every automation session as a private one, and
WebKit writes no console message to stdout for a private session, so no CORS text
would come out. This program keeps its website data in a throw-away directory on
disk (so the session is not private), turns on `enable-write-console-messages-to-stdout`
(WebKit then writes each console message to stderr itself, which passes through the
driver's output), allows automation, and answers the session's request for web views.
It needs python3-gi and gir1.2-webkit2-4.1, hence /usr/bin/python3, not the test venv.
Environment: CORSGATE_WEBKIT_DATA (where the website data goes; a temp dir otherwise),
CORSGATE_WEBKIT_PROXY ("http://127.0.0.1:PORT": every request, loopback included, through it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402


def main() -> int:
    if "--automation" not in sys.argv[1:]:
        print("webkit_browser.py: meant to be started by WebKitWebDriver (--automation)", file=sys.stderr)
        return 2
    data = os.environ.get("CORSGATE_WEBKIT_DATA") or tempfile.mkdtemp(prefix="corsgate-webkit-data-")
    manager = WebKit2.WebsiteDataManager(
        base_data_directory=os.path.join(data, "data"), base_cache_directory=os.path.join(data, "cache")
    )
    proxy = os.environ.get("CORSGATE_WEBKIT_PROXY")
    if proxy:
        # No ignore list: loopback goes through the proxy too, like Chromium's `<-loopback>`.
        manager.set_network_proxy_settings(WebKit2.NetworkProxyMode.CUSTOM, WebKit2.NetworkProxySettings.new(proxy, []))
    context = WebKit2.WebContext(website_data_manager=manager)
    context.set_automation_allowed(True)
    settings = WebKit2.Settings(enable_write_console_messages_to_stdout=True)
    windows: list[Gtk.Window] = []

    def create_web_view(session: WebKit2.AutomationSession) -> WebKit2.WebView:
        view = WebKit2.WebView(web_context=context, settings=settings, is_controlled_by_automation=True)
        window = Gtk.Window()
        window.set_default_size(800, 600)
        window.add(view)
        window.show_all()
        windows.append(window)

        def closed(_view: WebKit2.WebView) -> None:
            windows.remove(window)
            window.destroy()

        view.connect("close", closed)
        return view

    def automation_started(_context: WebKit2.WebContext, session: WebKit2.AutomationSession) -> None:
        info = WebKit2.ApplicationInfo()
        info.set_name("corsgate-webkit")
        info.set_version(1, 0, 0)
        session.set_application_info(info)
        session.connect("create-web-view", create_web_view)

    context.connect("automation-started", automation_started)
    try:
        Gtk.main()
    finally:
        if not os.environ.get("CORSGATE_WEBKIT_DATA"):
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
