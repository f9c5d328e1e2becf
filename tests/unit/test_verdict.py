"""verdict.py: the browser's checks and Chrome's words.

The expected messages are the ones headless Chromium 156.0.8078.108 printed for the same exchanges
(fetch() from one 127.0.0.1 port to another), minus the "Access to fetch at ... has been blocked by CORS
policy: " head and, where `console_text` adds it, the fetch-specific tail.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.verdict import rules as verdict
from addon.verdict import (
    Diagnosis,
    Verdict,
    check_actual,
    check_preflight,
    console_text,
    diagnose,
    needs_preflight,
    normalize_method,
    readable_response_headers,
    unsafe_request_headers,
)

ORIGIN = "http://127.0.0.1:42473"
PF = "Response to preflight request doesn't pass access control check: "
MISSING = "No 'Access-Control-Allow-Origin' header is present on the requested resource."
WILDCARD = (
    "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' "
    "when the request's credentials mode is 'include'."
)
STATUS = "It does not have HTTP ok status."
REDIRECT = "Redirect is not allowed for a preflight request."
ACAM_PARSE = "Cannot parse Access-Control-Allow-Methods response header field in preflight response."
ACAH_PARSE = "Cannot parse Access-Control-Allow-Headers response header field in preflight response."


def multiple(value: str) -> str:
    return f"The 'Access-Control-Allow-Origin' header contains multiple values '{value}', but only one is allowed."


def invalid(value: str) -> str:
    return f"The 'Access-Control-Allow-Origin' header contains the invalid value '{value}'."


def mismatch(value: str) -> str:
    return f"The 'Access-Control-Allow-Origin' header has a value '{value}' that is not equal to the supplied origin."


def acac(value: str) -> str:
    return (
        f"The value of the 'Access-Control-Allow-Credentials' header in the response is '{value}' which must be "
        "'true' when the request's credentials mode is 'include'."
    )


def method_denied(method: str) -> str:
    return f"Method {method} is not allowed by Access-Control-Allow-Methods in preflight response."


def header_denied(name: str) -> str:
    return f"Request header field {name} is not allowed by Access-Control-Allow-Headers in preflight response."


def acao(value: str) -> tuple[str, str]:
    return ("Access-Control-Allow-Origin", value)


def acac_h(value: str) -> tuple[str, str]:
    return ("Access-Control-Allow-Credentials", value)


def acam(value: str) -> tuple[str, str]:
    return ("Access-Control-Allow-Methods", value)


def acah(value: str) -> tuple[str, str]:
    return ("Access-Control-Allow-Headers", value)


# -- the CORS check ------------------------------------------------------------------------------------

# fmt: off
ACTUAL = [
    # id, response headers, credentials, rule, message
    ("star", [acao("*")], False, "ok", ""),
    ("exact", [acao(ORIGIN)], False, "ok", ""),
    ("exact-credentials", [acao(ORIGIN), acac_h("true")], True, "ok", ""),
    ("names-any-case", [("ACCESS-CONTROL-ALLOW-ORIGIN", ORIGIN), ("access-control-allow-credentials", "true")], True,
     "ok", ""),
    ("value-whitespace-trimmed", [acao(f" {ORIGIN}\t")], False, "ok", ""),
    ("star-ignores-acac", [acao("*"), acac_h("nope")], False, "ok", ""),
    ("missing", [], False, "acao-missing", MISSING),
    ("missing-credentials", [("Content-Type", "text/plain")], True, "acao-missing", MISSING),
    ("two-fields", [acao(ORIGIN), acao(ORIGIN)], False, "acao-multiple", multiple(f"{ORIGIN}, {ORIGIN}")),
    ("comma-list", [acao(f"{ORIGIN},http://b.example")], False, "acao-multiple", multiple(f"{ORIGIN},http://b.example")),
    ("space-list", [acao("http://a.example http://b.example")], False, "acao-multiple",
     multiple("http://a.example http://b.example")),
    ("star-and-origin", [acao("*"), acao(ORIGIN)], False, "acao-multiple", multiple(f"*, {ORIGIN}")),
    ("invalid-word", [acao("foo")], False, "acao-invalid", invalid("foo")),
    ("invalid-empty", [acao("")], False, "acao-invalid", invalid("")),
    ("invalid-control", [acao("http://a\x01b.example")], False, "acao-invalid", invalid("http://a\\u0001b.example")),
    ("invalid-latin1-byte", [acao("http://\xe9.example")], False, "acao-invalid", invalid("http://\\u00E9.example")),
    ("invalid-no-host", [acao("http://")], False, "acao-invalid", invalid("http://")),
    ("invalid-port", [acao("http://a.example:99999")], False, "acao-invalid", invalid("http://a.example:99999")),
    ("invalid-host-char", [acao("http://a^b")], False, "acao-invalid", invalid("http://a^b")),
    ("invalid-escape", [acao("http://a%zzb")], False, "acao-invalid", invalid("http://a%zzb")),
    ("invalid-scheme", [acao("1http://x")], False, "acao-invalid", invalid("1http://x")),
    # UTF-8 bytes of "é", handed over one byte per character as gateway.py does: GURL takes them.
    ("utf8-host", [acao("http://\xc3\xa9.example")], False, "acao-mismatch", mismatch("http://\\u00C3\\u00A9.example")),
    ("null", [acao("null")], False, "acao-mismatch", mismatch("null")),
    ("other-origin", [acao("http://other.example")], False, "acao-mismatch", mismatch("http://other.example")),
    ("trailing-slash", [acao(f"{ORIGIN}/")], False, "acao-mismatch", mismatch(f"{ORIGIN}/")),
    ("upper-case-scheme", [acao("HTTP://127.0.0.1")], False, "acao-mismatch", mismatch("HTTP://127.0.0.1")),
    ("ipv6", [acao("http://[::1]:80")], False, "acao-mismatch", mismatch("http://[::1]:80")),
    ("no-slashes", [acao("http:foo.example")], False, "acao-mismatch", mismatch("http:foo.example")),
    ("other-scheme", [acao("chrome-extension://abc")], False, "acao-mismatch", mismatch("chrome-extension://abc")),
    ("star-credentials", [acao("*"), acac_h("true")], True, "acao-wildcard-credentials", WILDCARD),
    ("acac-capital", [acao(ORIGIN), acac_h("True")], True, "acac-not-true", acac("True")),
    ("acac-missing", [acao(ORIGIN)], True, "acac-not-true", acac("")),
    ("acac-twice", [acao(ORIGIN), acac_h("true"), acac_h("true")], True, "acac-not-true", acac("true, true")),
    ("acac-one", [acao(ORIGIN), acac_h("1")], True, "acac-not-true", acac("1")),
]
# fmt: on


@pytest.mark.parametrize(
    ("headers", "credentials", "rule", "message"), [c[1:] for c in ACTUAL], ids=[c[0] for c in ACTUAL]
)
def test_check_actual(headers, credentials, rule, message):
    v = check_actual(ORIGIN, 200, headers, credentials)
    assert (v.ok, v.rule, v.message) == (rule == "ok", rule, message)


@pytest.mark.parametrize("status", [200, 204, 400, 403, 404, 500, 502])
def test_check_actual_ignores_status(status):
    assert check_actual(ORIGIN, status, [acao("*")], False).ok
    assert check_actual(ORIGIN, status, [], False).rule == "acao-missing"


def test_null_origin_accepts_null():
    assert check_actual("null", 200, [acao("null")], False).ok
    assert check_actual("null", 200, [acao("null"), acac_h("true")], True).ok


def test_actual_redirect_gets_a_note():
    v = check_actual(ORIGIN, 302, [acao("*"), ("Location", "http://elsewhere.example/")], False)
    assert v.ok and v.notes and "Origin: null" in v.notes[0]
    assert check_actual(ORIGIN, 302, [acao("*")], False).notes == ()


# -- the preflight ---------------------------------------------------------------------------------

# fmt: off
PREFLIGHT = [
    # id, method, request header names, status, response headers, credentials, rule, message
    ("ok", "PUT", [], 204, [acao("*"), acam("PUT")], False, "ok", ""),
    ("ok-299", "PUT", [], 299, [acao("*"), acam("PUT")], False, "ok", ""),
    ("ok-credentials", "PUT", ["x-foo"], 200, [acao(ORIGIN), acac_h("true"), acam("PUT"), acah("X-Foo")], True,
     "ok", ""),
    ("safelisted-method-needs-no-acam", "POST", [], 204, [acao("*")], False, "ok", ""),
    ("redirect", "PUT", [], 302, [("Location", "/elsewhere")], False, "preflight-redirect", PF + REDIRECT),
    ("redirect-307", "PUT", [], 307, [("Location", "/x")], False, "preflight-redirect", PF + REDIRECT),
    ("redirect-303", "PUT", [], 303, [("Location", "/x")], False, "preflight-redirect", PF + REDIRECT),
    ("302-without-location", "PUT", [], 302, [acao("*")], False, "preflight-status", PF + STATUS),
    ("302-empty-location", "PUT", [], 302, [acao("*"), ("Location", "")], False, "preflight-status", PF + STATUS),
    ("300-with-location", "PUT", [], 300, [acao("*"), ("Location", "/x")], False, "preflight-status", PF + STATUS),
    ("304", "PUT", [], 304, [acao("*")], False, "preflight-status", PF + STATUS),
    ("404", "PUT", [], 404, [acao("*"), acam("PUT")], False, "preflight-status", PF + STATUS),
    ("missing-before-status", "PUT", [], 404, [], False, "acao-missing", PF + MISSING),
    ("missing", "PUT", [], 204, [], False, "acao-missing", PF + MISSING),
    ("mismatch-before-status", "PUT", [], 500, [acao("http://x.example")], False, "acao-mismatch",
     PF + mismatch("http://x.example")),
    ("multiple", "PUT", [], 204, [acao("*"), acao("*")], False, "acao-multiple", PF + multiple("*, *")),
    ("star-credentials", "PUT", [], 204, [acao("*"), acac_h("true"), acam("PUT")], True, "acao-wildcard-credentials",
     PF + WILDCARD),
    ("acac-missing", "PUT", [], 204, [acao(ORIGIN), acam("PUT")], True, "acac-not-true", PF + acac("")),
    ("acam-parse", "PUT", [], 204, [acao("*"), acam("PUT;")], False, "acam-parse", ACAM_PARSE),
    ("acam-parse-first", "POST", ["x-foo"], 204, [acao("*"), acam("a b"), acah("x-foo")], False, "acam-parse",
     ACAM_PARSE),
    ("acah-parse", "GET", ["x-foo"], 204, [acao("*"), acah("x-foo bar")], False, "acah-parse", ACAH_PARSE),
    ("acam-empty-items", "PUT", [], 204, [acao("*"), acam(", ,PUT,,")], False, "ok", ""),
    ("acah-empty-field", "GET", ["x-foo"], 204, [acao("*"), acah(""), acah("x-foo")], False, "ok", ""),
    ("patch-is-not-PATCH", "patch", [], 204, [acao("*"), acam("PATCH")], False, "method-not-allowed",
     method_denied("patch")),
    ("PATCH", "PATCH", [], 204, [acao("*"), acam("PATCH")], False, "ok", ""),
    ("put-normalised", "put", [], 204, [acao("*"), acam("PUT")], False, "ok", ""),
    ("acam-put-lower", "PUT", [], 204, [acao("*"), acam("put")], False, "method-not-allowed", method_denied("PUT")),
    ("method-unlisted", "DELETE", [], 204, [acao("*"), acam("GET, PUT")], False, "method-not-allowed",
     method_denied("DELETE")),
    ("method-star", "DELETE", [], 204, [acao("*"), acam("*")], False, "ok", ""),
    ("method-star-credentials", "DELETE", [], 204, [acao(ORIGIN), acac_h("true"), acam("*")], True,
     "method-not-allowed", method_denied("DELETE")),
    ("method-before-header", "PUT", ["x-foo"], 204, [acao("*"), acam("GET")], False, "method-not-allowed",
     method_denied("PUT")),
    ("header-unlisted", "GET", ["x-bar", "x-foo"], 204, [acao("*"), acah("X-Foo")], False, "header-not-allowed",
     header_denied("x-bar")),
    ("header-first-sorted", "GET", ["x-zed", "x-abc"], 204, [acao("*"), acah("x-other")], False, "header-not-allowed",
     header_denied("x-abc")),
    ("header-case-insensitive", "GET", ["X-FOO"], 204, [acao("*"), acah("x-Foo")], False, "ok", ""),
    ("header-star", "GET", ["x-foo"], 204, [acao("*"), acah("*")], False, "ok", ""),
    ("header-star-credentials", "GET", ["x-foo"], 204, [acao(ORIGIN), acac_h("true"), acah("*")], True,
     "header-not-allowed", header_denied("x-foo")),
    ("authorization-listed", "GET", ["authorization", "x-foo"], 204, [acao("*"), acah("*, AUTHORIZATION")], False,
     "ok", ""),
    ("authorization-star-credentials", "GET", ["authorization"], 204, [acao(ORIGIN), acac_h("true"), acah("*")], True,
     "header-not-allowed", header_denied("authorization")),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "names", "status", "headers", "credentials", "rule", "message"),
    [c[1:] for c in PREFLIGHT],
    ids=[c[0] for c in PREFLIGHT],
)
def test_check_preflight(method, names, status, headers, credentials, rule, message):
    v = check_preflight(ORIGIN, method, names, status, headers, credentials)
    assert (v.ok, v.rule, v.message) == (rule == "ok", rule, message)


def test_patch_failure_explains_the_case():
    v = check_preflight(ORIGIN, "patch", [], 204, [acao("*"), acam("PATCH")], False)
    assert any("case-sensitively" in note for note in v.notes)
    assert not check_preflight(ORIGIN, "DELETE", [], 204, [acao("*"), acam("GET")], False).notes


def test_authorization_under_star_follows_this_chromium():
    v = check_preflight(ORIGIN, "GET", ["authorization"], 204, [acao("*"), acah("*")], False)
    assert verdict.CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED is False  # observed on Chromium 156, see the module
    assert v.ok and v.rule == "ok"
    assert v.notes == (verdict.AUTHORIZATION_NOTE,)
    assert "Fetch Standard" in v.notes[0] and "Chromium 156" in v.notes[0]


def test_authorization_under_star_when_enforced(monkeypatch):
    monkeypatch.setattr(verdict, "CHROMIUM_AUTHORIZATION_WILDCARD_ENFORCED", True)
    v = check_preflight(ORIGIN, "GET", ["authorization", "x-foo"], 204, [acao("*"), acah("*")], False)
    assert (v.ok, v.rule, v.message) == (False, "header-not-allowed", header_denied("authorization"))
    assert v.notes == (verdict.AUTHORIZATION_NOTE,)


@pytest.mark.parametrize("headers", [[acao("*"), acah("*, Authorization")], [acao("*"), acah("x-foo")]])
def test_no_authorization_note_without_the_wildcard_case(headers):
    v = check_preflight(ORIGIN, "GET", ["x-foo"], 204, headers, False)
    assert v.ok and v.notes == ()


# fmt: off
PRIVATE_NETWORK = [
    ([acao("*"), ("Access-Control-Allow-Private-Network", "true")], "ok", ""),
    (
        [acao("*")],
        "pna-missing",
        PF + "No 'Access-Control-Allow-Private-Network' header was present in the preflight response for this "
        "private network request targeting the `local` address space.",
    ),
    (
        [acao("*"), ("Access-Control-Allow-Private-Network", "True")],
        "pna-invalid",
        PF + "The 'Access-Control-Allow-Private-Network' header in the preflight response for this private "
        "network request targeting the `local` address space had a value of 'True',  not 'true'.",
    ),
]
# fmt: on


@pytest.mark.parametrize(("headers", "rule", "message"), PRIVATE_NETWORK, ids=["ok", "missing", "invalid"])
def test_private_network(headers, rule, message):
    v = check_preflight(ORIGIN, "GET", [], 204, headers, False, private_network=True)
    assert (v.ok, v.rule, v.message) == (rule == "ok", rule, message)
    assert verdict.PRIVATE_NETWORK_NOTE in v.notes


def test_private_network_comes_after_the_cors_check_and_before_the_lists():
    assert check_preflight(ORIGIN, "GET", [], 204, [], False, True).rule == "acao-missing"
    assert check_preflight(ORIGIN, "GET", [], 204, [acao("*"), acam("a b")], False, True).rule == "pna-missing"
    v = check_preflight(ORIGIN, "GET", [], 204, [acao("*")], False, True, address_space="private")
    assert "`private`" in v.message
    assert check_preflight(ORIGIN, "GET", [], 204, [acao("*")], False).ok


# -- what JS may send and read -----------------------------------------------------------------------

# fmt: off
UNSAFE = [
    # id, request headers, unsafe names (as Chromium 156 listed them in Access-Control-Request-Headers)
    ("none", [], []),
    ("ct-plain", [("Content-Type", "text/plain")], []),
    ("ct-charset", [("Content-Type", "text/plain;charset=utf-8")], []),
    ("ct-case", [("Content-Type", "Text/Plain")], []),
    ("ct-space-before-params", [("Content-Type", "text/plain ;x=y")], []),
    ("ct-junk-params", [("Content-Type", "text/plain;;;=x;y")], []),
    ("ct-multipart", [("Content-Type", "multipart/form-data; boundary=x")], []),
    ("ct-form", [("Content-Type", "application/x-www-form-urlencoded")], []),
    ("ct-json", [("Content-Type", "application/json")], ["content-type"]),
    ("ct-list", [("Content-Type", "text/plain, application/json")], ["content-type"]),
    ("ct-quote", [("Content-Type", 'text/plain; charset="utf-8"')], ["content-type"]),
    ("ct-space-in-type", [("Content-Type", "text /plain")], ["content-type"]),
    ("ct-no-slash", [("Content-Type", "text")], ["content-type"]),
    ("ct-no-subtype", [("Content-Type", "text/")], ["content-type"]),
    ("ct-space-in-subtype", [("Content-Type", "text/pl ain")], ["content-type"]),
    ("ct-two-slashes", [("Content-Type", "text/plain/x")], ["content-type"]),
    ("accept-paren", [("Accept", "a(b")], ["accept"]),
    ("accept-128", [("Accept", "a" * 128)], []),
    ("accept-129", [("Accept", "a" * 129)], ["accept"]),
    ("accept-twice-combined", [("Accept", "a" * 100), ("Accept", "b" * 100)], ["accept"]),
    ("accept-non-ascii-byte", [("Accept", "\xe9")], []),
    ("accept-language", [("Accept-Language", "en-US,en;q=0.9")], []),
    ("accept-language-underscore", [("Accept-Language", "en_US")], ["accept-language"]),
    ("content-language", [("Content-Language", "de-DE")], []),
    ("range", [("Range", "bytes=0-1")], []),
    ("range-open", [("Range", "bytes=5-")], []),
    ("range-suffix", [("Range", "bytes=-5")], ["range"]),
    ("range-two", [("Range", "bytes=0-1,2-3")], ["range"]),
    ("range-reversed", [("Range", "bytes=5-1")], ["range"]),
    ("range-upper-unit", [("Range", "BYTES=0-1")], ["range"]),
    ("range-space", [("Range", "bytes= 0-1")], ["range"]),
    ("range-plus", [("Range", "bytes=+1-2")], ["range"]),
    ("chromium-dpr", [("DPR", "2")], []),
    ("chromium-dpr-bad", [("DPR", "x")], ["dpr"]),
    ("chromium-width", [("Width", "100")], []),
    ("chromium-save-data", [("Save-Data", "on")], []),
    ("chromium-ect", [("ECT", "4g")], []),
    ("chromium-intervention", [("Intervention", "whatever")], []),
    ("chromium-device-memory", [("Device-Memory", "0.5")], []),
    ("method-override", [("X-HTTP-Method-Override", "PUT")], ["x-http-method-override"]),
    ("method-override-forbidden", [("X-HTTP-Method-Override", "TRACE")], []),
    ("forbidden", [("Cookie", "a=b"), ("User-Agent", "x"), ("Sec-Fetch-Mode", "cors"), ("Proxy-X", "1"),
                   ("Origin", ORIGIN), ("Host", "h"), ("Access-Control-Request-Private-Network", "true")], []),
    ("sorted-lower-unique", [("X-FOO-Bar", "1"), ("x-aaa", "2"), ("x-foo-bar", "3")], ["x-aaa", "x-foo-bar"]),
]
# fmt: on

# Safelisted one by one, but 1152 bytes in all: Chromium then lists every one of them.
_BIG = [
    ("Accept", "a" * 128), ("Accept-Language", "e" * 128), ("Content-Language", "d" * 128),
    ("Content-Type", "text/plain;x=" + "y" * 115), ("Width", "1" * 128), ("Viewport-Width", "2" * 128),
    ("RTT", "3" * 128), ("DPR", "4" * 128),
]  # fmt: skip
UNSAFE += [
    ("total-1024", _BIG, []),
    ("total-over-1024", [*_BIG, ("Intervention", "z" * 128)],
     ["accept", "accept-language", "content-language", "content-type", "dpr", "intervention", "rtt",
      "viewport-width", "width"]),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), [c[1:] for c in UNSAFE], ids=[c[0] for c in UNSAFE])
def test_unsafe_request_headers(headers, expected):
    assert unsafe_request_headers(headers) == expected


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", [], False),
        ("get", [], False),
        ("HEAD", [], False),
        ("POST", [("Content-Type", "text/plain")], False),
        ("POST", [("Content-Type", "application/json")], True),
        ("PUT", [], True),
        ("patch", [], True),
        ("OPTIONS", [], True),
        ("GET", [("X-Foo", "1")], True),
        ("GET", [("Cookie", "a=b")], False),
    ],
)
def test_needs_preflight(method, headers, expected):
    assert needs_preflight(method, headers) is expected


@pytest.mark.parametrize(
    ("method", "normalized"),
    [("patch", "patch"), ("Patch", "Patch"), ("put", "PUT"), ("Delete", "DELETE"), ("options", "OPTIONS"),
     ("gEt", "GET"), ("PROPFIND", "PROPFIND"), ("", "")],
)  # fmt: skip
def test_normalize_method(method, normalized):
    assert normalize_method(method) == normalized


_EXPOSE = [
    acao("*"), ("Access-Control-Expose-Headers", "X-A, *"), ("X-A", "1"), ("X-B", "2"),
    ("Content-Type", "text/plain"), ("Content-Length", "2"), ("Set-Cookie", "a=b"), ("Date", "today"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "credentials", "expected"),
    [
        (_EXPOSE, False, ["access-control-allow-origin", "access-control-expose-headers", "content-length",
                          "content-type", "date", "x-a", "x-b"]),
        (_EXPOSE, True, ["content-length", "content-type", "x-a"]),
        ([("Access-Control-Expose-Headers", "X-A, bad value"), ("X-A", "1"), ("Content-Length", "2")], False,
         ["content-length"]),
        ([("Access-Control-Expose-Headers", "X-A"), ("Access-Control-Expose-Headers", "X-B;"), ("X-A", "1")], False,
         []),
        ([("Access-Control-Expose-Headers", "X-A"), ("Access-Control-Expose-Headers", "x-b"), ("X-A", "1"),
          ("x-B", "1")], False, ["x-a", "x-b"]),
        ([("Access-Control-Expose-Headers", "Set-Cookie, X-A"), ("Set-Cookie", "a=b"), ("Set-Cookie2", "c")], False,
         []),
        ([("Cache-Control", "x"), ("Expires", "x"), ("Last-Modified", "x"), ("Pragma", "x"),
          ("Content-Language", "x"), ("X-Hidden", "x")], True,
         ["cache-control", "content-language", "expires", "last-modified", "pragma"]),
    ],
    ids=["star", "star-credentials", "invalid-list", "invalid-second-field", "two-fields", "never-set-cookie",
         "safelisted"],
)  # fmt: skip
def test_readable_response_headers(headers, credentials, expected):
    assert readable_response_headers(headers, credentials) == expected


# -- one flow ----------------------------------------------------------------------------------------

PREFLIGHT_REQUEST = [
    ("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "x-b,x-a"),
    ("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", "same-site"),
]  # fmt: skip


def test_diagnose_preflight_judges_both_modes():
    d = diagnose("OPTIONS", PREFLIGHT_REQUEST, 204, [acao("*"), acam("PUT"), acah("x-a, x-b")])
    assert (d.kind, d.credentials, d.blocked) == ("preflight", None, False)
    assert d.with_credentials.rule == "acao-wildcard-credentials"
    assert d.summary() == f"ok (with credentials: blocked: {PF}{WILDCARD})"


def test_diagnose_preflight_uses_the_requested_headers():
    d = diagnose("OPTIONS", PREFLIGHT_REQUEST, 204, [acao(ORIGIN), acac_h("true"), acam("PUT"), acah("x-b")])
    assert d.blocked and d.summary() == f"blocked: {header_denied('x-a')}"
    assert d.without_credentials == d.with_credentials


def test_diagnose_private_network_preflight():
    request = [*PREFLIGHT_REQUEST, ("Access-Control-Request-Private-Network", "true")]
    d = diagnose("OPTIONS", request, 204, [acao("*"), acam("PUT"), acah("x-a, x-b")])
    assert d.blocked and d.without_credentials.rule == "pna-missing"


def test_diagnose_actual_without_cookie_cannot_tell_credentials():
    d = diagnose("GET", [("Origin", ORIGIN)], 200, [acao(ORIGIN)])
    assert (d.kind, d.credentials, d.blocked) == ("actual", None, False)
    assert d.summary() == f"ok (with credentials: blocked: {acac('')})"


def test_diagnose_actual_with_cookie_is_credentialed():
    d = diagnose("GET", [("Origin", ORIGIN), ("Cookie", "s=1")], 200, [acao("*")])
    assert (d.kind, d.credentials, d.blocked) == ("actual", True, True)
    assert d.verdict is d.with_credentials
    assert d.summary() == f"blocked: {WILDCARD}"


def test_diagnose_summary_both_blocked_differently():
    d = diagnose("GET", [("Origin", ORIGIN)], 200, [acao("http://x.example")])
    assert d.summary() == f"blocked: {mismatch('http://x.example')}"
    a, b = Verdict(False, "acao-missing"), Verdict(False, "acao-mismatch", ("B",))
    d = Diagnosis("actual", None, a, b)
    assert d.summary() == f"blocked: {MISSING} (with credentials: blocked: {mismatch('B')})"
    d = Diagnosis("actual", None, a, verdict.OK)
    assert d.summary() == f"blocked: {MISSING} (with credentials: ok)"
    assert Diagnosis("actual", False, verdict.OK, b).summary() == "ok"


def test_diagnose_options_without_acrm_is_an_actual_request():
    d = diagnose("OPTIONS", [("Origin", ORIGIN)], 200, [])
    assert (d.kind, d.blocked, d.without_credentials.rule) == ("actual", True, "acao-missing")
    assert d.summary() == f"blocked: {MISSING}"


@pytest.mark.parametrize(
    ("request_headers", "kind"),
    [
        ([], "no-origin"),
        ([("Sec-Fetch-Site", "same-origin"), ("Origin", ORIGIN)], "same-origin"),
        ([("Origin", ORIGIN), ("Sec-Fetch-Mode", "navigate")], "no-cors"),
        ([("Origin", ORIGIN), ("Sec-Fetch-Mode", "no-cors")], "no-cors"),
    ],
)
def test_diagnose_nothing_to_judge(request_headers, kind):
    d = diagnose("POST", request_headers, 200, [])
    assert (d.kind, d.blocked, d.summary()) == (kind, False, "ok")


def test_console_text_adds_the_initiators_tail():
    # Exactly what Chromium 156 printed after "has been blocked by CORS policy: ".
    v = check_actual(ORIGIN, 200, [acao("http://other.example")], False)
    assert console_text(v) == mismatch("http://other.example") + " Have the server send the header with a valid value."
    assert console_text(v, "xmlhttprequest") == v.message
    v = check_actual(ORIGIN, 200, [acao("*")], True)
    assert console_text(v) == WILDCARD
    assert console_text(v, "xmlhttprequest").endswith("controlled by the withCredentials attribute.")
    assert console_text(check_actual(ORIGIN, 200, [], False)) == MISSING


def test_the_judge_shares_nothing_with_the_defendant():
    tree = ast.parse(Path(verdict.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"__future__", "collections.abc", "dataclasses", "functools", "addon.core.fields",
                        "addon.verdict", "addon.verdict.text"}


# -- malformed input never raises ------------------------------------------------------------------

RULES = {
    "ok", "acao-missing", "acao-multiple", "acao-invalid", "acao-mismatch", "acao-wildcard-credentials",
    "acac-not-true", "preflight-status", "preflight-redirect", "method-not-allowed", "header-not-allowed",
    "acam-parse", "acah-parse", "pna-missing", "pna-invalid",
}  # fmt: skip
_NAMES = st.sampled_from(
    ["Origin", "Access-Control-Allow-Origin", "access-control-allow-credentials", "Access-Control-Allow-Methods",
     "ACCESS-CONTROL-ALLOW-HEADERS", "Access-Control-Expose-Headers", "Access-Control-Request-Method",
     "Access-Control-Request-Headers", "Access-Control-Allow-Private-Network", "Access-Control-Request-Private-Network",
     "Location", "Cookie", "Content-Type", "Range", "Accept", "Sec-Fetch-Site", "Sec-Fetch-Mode", "DPR", "X-Foo"]
) | st.text(max_size=20)  # fmt: skip
_VALUES = st.sampled_from(
    ["*", "true", "null", ORIGIN, "GET", "PATCH, *", "bytes=0-1", "text/plain", "same-origin"]
) | st.text(max_size=300)
ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_HEADERS = st.lists(st.tuples(_NAMES, _VALUES), max_size=12)
_STATUS = st.integers(min_value=-1, max_value=1000)


def _well_formed(v: Verdict) -> None:
    assert v.rule in RULES
    assert v.ok == (v.rule == "ok")
    assert (v.message == "") == v.ok
    assert "\n" not in v.message and "\r" not in v.message


@settings(max_examples=300, deadline=None)
@given(origin=_VALUES, method=_VALUES, names=st.lists(st.text(max_size=20), max_size=5), status=_STATUS,
       headers=_HEADERS, credentials=st.booleans(), private_network=st.booleans())  # fmt: skip
def test_checks_never_raise(origin, method, names, status, headers, credentials, private_network):
    _well_formed(check_actual(origin, status, headers, credentials))
    _well_formed(check_preflight(origin, method, names, status, headers, credentials, private_network))
    readable = readable_response_headers(headers, credentials)
    assert readable == sorted(set(readable))
    assert "set-cookie" not in readable


@settings(max_examples=300, deadline=None)
@given(method=_VALUES | st.sampled_from(["OPTIONS", "options", "GET"]), request=_HEADERS, status=_STATUS,
       response=_HEADERS)  # fmt: skip
def test_diagnose_never_raises(method, request, status, response):
    d = diagnose(method, request, status, response)
    assert d.kind in {"preflight", "actual", "same-origin", "no-origin", "no-cors"}
    _well_formed(d.without_credentials)
    _well_formed(d.with_credentials)
    line = d.summary()
    assert "\n" not in line and "\r" not in line
    assert line.startswith("ok") != d.blocked


@settings(max_examples=300, deadline=None)
@given(method=_VALUES, headers=_HEADERS)
def test_unsafe_request_headers_shape(method, headers):
    names = unsafe_request_headers(headers)
    assert names == sorted(set(names))
    assert set(names) <= {name.translate(ASCII_LOWER) for name, _ in headers}
    assert needs_preflight(method, headers) == (normalize_method(method) not in {"GET", "HEAD", "POST"} or bool(names))


@settings(max_examples=200, deadline=None)
@given(origin=st.text(min_size=1, max_size=60).filter(lambda o: o == o.strip(" \t") and not {" ", ","} & set(o)))
def test_echoed_origin_always_passes(origin):
    assert check_actual(origin, 200, [acao(origin)], False).ok
    if origin != "*":
        assert check_actual(origin, 200, [acao(origin), acac_h("true")], True).ok
        assert check_preflight(origin, "GET", [], 204, [acao(origin), acac_h("true")], True).ok


def test_huge_and_repeated_fields():
    many = [acao(ORIGIN)] * 5000
    assert check_actual(ORIGIN, 200, many, False).rule == "acao-multiple"
    huge = [acao("h" * 1_000_000), ("Access-Control-Allow-Headers", "x," * 100_000)]
    assert check_preflight(ORIGIN, "GET", ["x"], 204, huge, False).rule == "acao-invalid"
    assert check_actual(ORIGIN, 200, [acao("http://a.example:" + "9" * 10_000)], False).rule == "acao-invalid"
    assert unsafe_request_headers([("Range", "bytes=" + "1" * 10_000 + "-")]) == ["range"]
