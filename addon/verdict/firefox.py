"""Firefox's side of the judge: its differences from the other engines, its console text and the
message key of each (the `category` of the nsIScriptError it logs).

Templates from Firefox ESR 153's dom.properties (omni.ja), measured as ../shared/notes/browsers.md
records; the order of the checks from netwerk/protocol/http/nsCORSListenerProxy.cpp. A blocked preflight
logs the reason, then CORSDidNotSucceed2; `console_text` gives the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from addon.core.fields import is_token, split_list
from addon.verdict.text import header_bytes

if TYPE_CHECKING:
    from addon.verdict.rules import Verdict

NAME = "Firefox"
# -- differences (rules.py applies them) -------------------------------------------------------------
# No Private Network Access preflights (Local Network Access is a permission prompt), and Authorization
# passes under Access-Control-Allow-Headers: * with a warning.
PREFLIGHT_STATUS_FIRST = False
ACAO_LIST_SEPARATORS = ""  # only a repeated field is "multiple"; one value with a comma or space does not match
MAX_AGE = 86400  # nsPreflightCache's cap (source)
NEVER_CACHES_WILDCARD = True  # measured: a literal * in Allow-Methods/-Headers, and every request re-preflights
WILDCARD_NOTE = (
    "Firefox never caches a preflight answered with a literal * in Access-Control-Allow-Methods/-Headers: "
    "it sends a preflight before every such request (list the methods and headers by name)"
)

_HEAD = "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at {url}. "
# rule -> (message key, reason, whether " Status code: N." follows)
_REASONS = {
    "acao-missing": ("CORSMissingAllowOrigin2", "CORS header ‘Access-Control-Allow-Origin’ missing", True),
    "acao-multiple": ("CORSMultipleAllowOriginNotAllowed",
                      "Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed", False),
    "acao-mismatch": ("CORSAllowOriginNotMatchingOrigin",
                      "CORS header ‘Access-Control-Allow-Origin’ does not match ‘{}’", False),
    "acao-wildcard-credentials": ("CORSNotSupportingCredentials", "Credential is not supported if the CORS header "
                                  "‘Access-Control-Allow-Origin’ is ‘*’", False),
    "acac-not-true": ("CORSMissingAllowCredentials",
                      "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’", False),
    "preflight-redirect": ("CORSExternalRedirectNotAllowed", "CORS request external redirect not allowed", False),
    "preflight-status": ("CORSPreflightDidNotSucceed3", "CORS preflight response did not succeed", True),
    "acam-parse": ("CORSInvalidAllowMethod",
                   "invalid token ‘{}’ in CORS header ‘Access-Control-Allow-Methods’", False),
    "acah-parse": ("CORSInvalidAllowHeader",
                   "invalid token ‘{}’ in CORS header ‘Access-Control-Allow-Headers’", False),
    "method-not-allowed": ("CORSMethodNotFound",
                           "Did not find method in CORS header ‘Access-Control-Allow-Methods’", False),
    "header-not-allowed": ("CORSMissingAllowHeaderFromPreflight2", "header ‘{}’ is not allowed according to header "
                           "‘Access-Control-Allow-Headers’ from CORS preflight response", False),
}  # fmt: skip

AUTHORIZATION_WARNING_KEY = "CORSAllowHeaderFromPreflightDeprecation"
AUTHORIZATION_NOTE = (
    "Firefox warns (CORSAllowHeaderFromPreflightDeprecation) that Access-Control-Allow-Headers: * will stop "
    "covering Authorization: list Authorization by name"
)
_AUTHORIZATION_WARNING_TEXT = (
    "Cross-Origin Request Warning: The Same Origin Policy will disallow reading the remote resource at {url} soon. "
    "(Reason: When the `Access-Control-Allow-Headers` is `*`, the `Authorization` header is not covered. To include "
    "the `Authorization` header, it must be explicitly listed in CORS header `Access-Control-Allow-Headers`)."
)


def message(v: Verdict) -> str:
    """The reason Firefox gives (the text inside "(Reason: ...)")."""
    _, reason, _ = _REASONS[v.rule]
    return reason.format(*map(_hint_for(v.rule), v.hints)) if "{}" in reason else reason


def message_key(v: Verdict) -> str:
    """The key of the message Firefox logs for this verdict: its reason's, or its warning's on a verdict
    that passes with one; "" when it logs nothing."""
    if not v.ok:
        return _REASONS[v.rule][0]
    return AUTHORIZATION_WARNING_KEY if AUTHORIZATION_NOTE in v.notes else ""


def console_text(v: Verdict, initiator: str, url: str, status: int | None) -> str:
    """The console's errorMessage (its warning's on a verdict that passes with one), whatever the initiator."""
    if v.ok:
        return _AUTHORIZATION_WARNING_TEXT.format(url=url) if AUTHORIZATION_NOTE in v.notes else ""
    key, _, with_status = _REASONS[v.rule]
    shown = f"‘{url}’" if key == "CORSNotSupportingCredentials" else url
    suffix = f" Status code: {v.status if status is None else status}." if with_status else ""
    return f"{_HEAD.format(url=shown)}(Reason: {message(v)}).{suffix}"


def _hint_for(rule: str):
    return _first_bad_token if rule in ("acam-parse", "acah-parse") else _as_utf8


def _as_utf8(value: str) -> str:
    """Firefox quotes header bytes as UTF-8 (NS_ConvertUTF8toUTF16)."""
    return header_bytes(value).decode("utf-8", "replace")


def _first_bad_token(value: str) -> str:
    """Firefox checks the list item by item and names the first item that is not a token."""
    return next((_as_utf8(item) for item in split_list(value) if not is_token(item)), _as_utf8(value))
