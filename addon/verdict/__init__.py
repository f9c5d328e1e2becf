"""The judge: would a browser accept this exchange, and if not, in the browser's own words?

`rules.py` runs the Fetch Standard's CORS and preflight checks as the engines implement them,
with Chrome's console text. It never imports the engine (`addon/core/cors.py`): a judge that
shares the defendant's logic cannot catch its mistakes. Only the field-list syntax of
`addon/core/fields.py` is shared. Each engine's wording and differences grow beside it.
"""

from addon.verdict.rules import (
    AUTHORIZATION_NOTE,
    CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED,
    OK,
    PREFLIGHT_PREFIX,
    PRIVATE_NETWORK_NOTE,
    Diagnosis,
    Verdict,
    check_actual,
    check_preflight,
    console_text,
    diagnose,
    diagnose_raw,
    needs_preflight,
    normalize_method,
    readable_response_headers,
    unsafe_request_headers,
)

__all__ = [
    "AUTHORIZATION_NOTE",
    "CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED",
    "OK",
    "PREFLIGHT_PREFIX",
    "PRIVATE_NETWORK_NOTE",
    "Diagnosis",
    "Verdict",
    "check_actual",
    "check_preflight",
    "console_text",
    "diagnose",
    "diagnose_raw",
    "needs_preflight",
    "normalize_method",
    "readable_response_headers",
    "unsafe_request_headers",
]
