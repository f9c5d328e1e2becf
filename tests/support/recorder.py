"""mitmproxy script that records what the proxy did with each flow, for tests.

Loaded as a second ``-s`` after the gateway, so its hooks run after the gateway's
and see the final exchange. It appends one JSON line per flow (and per CONNECT) to the file named by
the ``CORSGATE_RECORD`` environment variable (and does nothing when it is unset):
what the client asked, what the client was answered (or the error), and the
gateway's ``corsgate*`` flow metadata. Tests use it to tell whether a preflight
reached the proxy at all and who answered it. Works on mitmproxy 11 and 12.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mitmproxy import http

RECORD_ENV = "CORSGATE_RECORD"


def _record(event: str, flow: http.HTTPFlow) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    response = flow.response
    entry: dict[str, Any] = {
        "event": event,
        "method": flow.request.method,
        "url": flow.request.pretty_url,
        "path": flow.request.path,
        "request_headers": [list(pair) for pair in flow.request.headers.items(multi=True)],
        "status": response.status_code if response else None,
        "response_headers": [list(pair) for pair in response.headers.items(multi=True)] if response else None,
        "error": flow.error.msg if flow.error else None,
        "metadata": {key: str(value) for key, value in flow.metadata.items() if str(key).startswith("corsgate")},
    }
    # One write per line, flushed on close, so a test reading mid-run never sees half a record.
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")


def http_connect(flow: http.HTTPFlow) -> None:
    """Record a CONNECT (regular mode) as it arrives: a browser's HTTPS call shows up here, even if it goes no further."""
    _record("connect", flow)


def response(flow: http.HTTPFlow) -> None:
    """Record the response as it goes to the client."""
    _record("response", flow)


def error(flow: http.HTTPFlow) -> None:
    """Record a flow that ended without a response (e.g. upstream unreachable)."""
    _record("error", flow)
