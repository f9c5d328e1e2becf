"""WebKit's side of the judge (Safari, and every browser on iOS): its differences from the other
engines and the console line it writes.

Texts as WebKitGTK 2.50.6 wrote them (../shared/notes/browsers.md); the order of the checks from
Source/WebCore/loader/CrossOriginAccessControl.cpp (validatePreflightResponse checks the status
before the CORS check; passesAccessControlCheck) and CrossOriginPreflightResultCache.cpp. Each line is
followed by "Fetch API cannot load URL due to access control checks."; they never say "in preflight
response". WebKit quotes a header name as the page wrote it ("Request header field X-Sdk-Date ...");
the judge keeps the name as the wire carries it in Access-Control-Request-Headers, lower-cased by every
engine (Fetch Standard), since a proxy never sees the page's spelling: corsgate shows "x-sdk-date".
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING

from addon.verdict.text import header_bytes

if TYPE_CHECKING:
    from addon.verdict.rules import Verdict

NAME = "Safari"
# -- differences (rules.py applies them) -------------------------------------------------------------
# No Private Network Access preflights; Authorization passes under Access-Control-Allow-Headers: *.
PREFLIGHT_STATUS_FIRST = True  # a preflight that is not 2xx fails as such, whatever its CORS headers
ACAO_LIST_SEPARATORS = ","  # a comma means "more than one origin"; a space alone is just no match
MAX_AGE = 600  # CrossOriginPreflightResultCache's maxPreflightCacheTimeout (measured with a faked clock)
NEVER_CACHES_WILDCARD = False

_NOT_ALLOWED = "Origin {origin} is not allowed by Access-Control-Allow-Origin. Status code: {status}"
_MESSAGES = {
    "acao-missing": _NOT_ALLOWED,
    "acao-mismatch": _NOT_ALLOWED,
    "acao-multiple": "Access-Control-Allow-Origin cannot contain more than one origin.",
    "acao-wildcard-credentials": "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true.",
    "acac-not-true": 'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".',
    "preflight-status": "Preflight response is not successful. Status code: {status}",
    "preflight-redirect": "Preflight response is not successful. Status code: {status}",  # a 3xx fails as status
    "acam-parse": "Header Access-Control-Allow-Methods has an invalid value: {hint}",
    "acah-parse": "Header Access-Control-Allow-Headers has an invalid value: {hint}",
    "method-not-allowed": "Method {hint} is not allowed by Access-Control-Allow-Methods.",
    "header-not-allowed": "Request header field {hint} is not allowed by Access-Control-Allow-Headers.",
}

AUTHORIZATION_NOTE = (
    "Safari lets Authorization pass under Access-Control-Allow-Headers: * (its * covers every header without "
    "credentials); the Fetch Standard does not: list it by name"
)
MIXED_CONTENT_NOTE = (
    "Safari blocks an HTTPS page's request to http:// on a loopback or private address as mixed content, "
    "before CORS: nothing is sent (Chrome and Firefox let loopback through as potentially trustworthy)"
)


def message(v: Verdict, status: int | None = None) -> str:
    """The line WebKit writes to the console; `status` replaces the verdict's in "Status code: N"."""
    hint = header_bytes(v.hints[0]).decode("utf-8", "replace") if v.hints else ""
    return _MESSAGES[v.rule].format(origin=v.origin, status=v.status if status is None else status, hint=hint)


def console_text(v: Verdict, initiator: str, url: str, status: int | None) -> str:
    """The console line, whatever the initiator."""
    return "" if v.ok else message(v, status)


@functools.lru_cache(maxsize=256)  # asked on every flow from an https page
def blocked_as_mixed_content(origin: str, url_scheme: str, url_host: str) -> bool:
    """Whether Safari refuses a page on `origin` the request to url_scheme://url_host before CORS: an
    https page, an http URL, a loopback or private host (`localhost` counts as loopback)."""
    if not origin.startswith("https://") or url_scheme != "http":
        return False
    host = url_host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private
