"""Chromium's side of the judge (Chrome, Edge and the other Chromium browsers): its differences from
the other engines and its console text, after "... has been blocked by CORS policy: ".

Words from third_party/blink/renderer/platform/loader/cors/cors_error_string.cc, checked against
Chromium 156.0.8078.108 (headless, Debian bookworm package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from addon.verdict.text import header_bytes

if TYPE_CHECKING:
    from addon.verdict.rules import Verdict

NAME = "Chrome"
# rules.py judges in Chromium's order and by its rules (Private Network Access included); the other
# engines' modules say where they differ. What only its cache does:
MAX_AGE = 7200  # services/network/cors/preflight_result.cc: kMaxTimeToLive
NEVER_CACHES_WILDCARD = False

PREFLIGHT_PREFIX = "Response to preflight request doesn't pass access control check: "

# Chrome's words per rule, "{}" for the hints it quotes. On a preflight, the CORS check's messages and the
# preflight's own ones start with PREFLIGHT_PREFIX; the allow-list messages do not (Chrome's IsPreflightError).
_CHECK_MESSAGES = {
    "acao-missing": "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
    "acao-multiple": "The 'Access-Control-Allow-Origin' header contains multiple values '{}', but only one is allowed.",
    "acao-invalid": "The 'Access-Control-Allow-Origin' header contains the invalid value '{}'.",
    "acao-mismatch": "The 'Access-Control-Allow-Origin' header has a value '{}' that is not equal to "
    "the supplied origin.",
    "acao-wildcard-credentials": "The value of the 'Access-Control-Allow-Origin' header in the response must not be "
    "the wildcard '*' when the request's credentials mode is 'include'.",
    "acac-not-true": "The value of the 'Access-Control-Allow-Credentials' header in the response is '{}' which must "
    "be 'true' when the request's credentials mode is 'include'.",
}
_PREFLIGHT_MESSAGES = {
    "preflight-redirect": "Redirect is not allowed for a preflight request.",
    "preflight-status": "It does not have HTTP ok status.",
    "pna-missing": "No 'Access-Control-Allow-Private-Network' header was present in the preflight response for this "
    "private network request targeting the `{}` address space.",
    # The two spaces before "not" are Chromium's.
    "pna-invalid": "The 'Access-Control-Allow-Private-Network' header in the preflight response for this private "
    "network request targeting the `{}` address space had a value of '{}',  not 'true'.",
}
_MESSAGES = {
    **_CHECK_MESSAGES,
    **{rule: PREFLIGHT_PREFIX + text for rule, text in _PREFLIGHT_MESSAGES.items()},
    "acam-parse": "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
    "acah-parse": "Cannot parse Access-Control-Allow-Headers response header field in preflight response.",
    "method-not-allowed": "Method {} is not allowed by Access-Control-Allow-Methods in preflight response.",
    "header-not-allowed": "Request header field {} is not allowed by Access-Control-Allow-Headers "
    "in preflight response.",
}

# The tails Chrome appends to some messages, depending on what started the request.
_FETCH_TAIL = " Have the server send the header with a valid value."
_XHR_TAIL = (
    " The credentials mode of requests initiated by the XMLHttpRequest is controlled by the withCredentials attribute."
)
_TAILS = {
    "fetch": frozenset({"acao-multiple", "acao-invalid", "acao-mismatch"}),
    "xmlhttprequest": frozenset({"acao-wildcard-credentials", "acac-not-true"}),
}


def message(v: Verdict) -> str:
    """Chrome's console text after "... has been blocked by CORS policy: ", without the initiator's tail."""
    prefix = PREFLIGHT_PREFIX if v.preflight and v.rule in _CHECK_MESSAGES else ""
    return prefix + _MESSAGES[v.rule].format(*map(encode_hint, v.hints))


def console_text(v: Verdict, initiator: str, url: str, status: int | None) -> str:
    """The message as Chrome's console ends it for requests started by `initiator` ("fetch" or
    "xmlhttprequest"): Chrome appends a hint to some messages, depending on the initiator."""
    if v.ok:
        return ""
    text = message(v)
    if v.rule in _TAILS.get(initiator, ()):
        return text + (_FETCH_TAIL if initiator == "fetch" else _XHR_TAIL)
    return text


def encode_hint(value: str) -> str:
    """Chromium's EncodeHint: printable ASCII bytes as they are, any other byte as \\u00XX."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\u{b:04X}" for b in header_bytes(value))
