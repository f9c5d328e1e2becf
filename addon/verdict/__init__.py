"""The judge: would a browser accept this exchange, and if not, in that browser's own words?

`rules.py` runs the Fetch Standard's CORS and preflight checks once, in Chromium's order; where Firefox
and WebKit differ, their verdicts are derived from that judgement by what `firefox.py` and `webkit.py`
say (and `chromium.py` holds Chrome's words). It never imports the engine (`addon/core/cors.py`): a
judge that shares the defendant's logic cannot catch its mistakes. Only the field-list syntax of
`addon/core/fields.py` is shared. Every function that takes `engine=` defaults to "chromium".
"""

from addon.verdict.chromium import PREFLIGHT_PREFIX
from addon.verdict.rules import (
    AUTHORIZATION_NOTE,
    CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED,
    ENGINES,
    NAMES,
    OK,
    PRIVATE_NETWORK_NOTE,
    Diagnosis,
    Verdict,
    check_actual,
    check_preflight,
    console_text,
    diagnose,
    diagnose_raw,
    engine_names,
    message_key,
    needs_preflight,
    normalize_method,
    parse_engines,
    readable_response_headers,
    unsafe_request_headers,
)
from addon.verdict.webkit import MIXED_CONTENT_NOTE, blocked_as_mixed_content

__all__ = [
    "AUTHORIZATION_NOTE",
    "CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED",
    "ENGINES",
    "MIXED_CONTENT_NOTE",
    "NAMES",
    "OK",
    "PREFLIGHT_PREFIX",
    "PRIVATE_NETWORK_NOTE",
    "Diagnosis",
    "Verdict",
    "blocked_as_mixed_content",
    "check_actual",
    "check_preflight",
    "console_text",
    "diagnose",
    "diagnose_raw",
    "engine_names",
    "message_key",
    "needs_preflight",
    "normalize_method",
    "parse_engines",
    "readable_response_headers",
    "unsafe_request_headers",
]
