"""The judge per engine: Firefox's and WebKit's words and differences beside Chromium's.

The expected texts are the ones the engines printed (../shared/notes/browsers.md: Firefox ESR 153's
message templates and keys, WebKitGTK 2.50.6's console lines). The tests at the end break each engine's
module on purpose and show that these cases catch it, engine by engine (the real engines are compared
in tests/browser).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon import verdict
from addon.verdict import chromium, firefox, rules, webkit

ORIGIN = "http://127.0.0.1:42473"
URL = "http://127.0.0.1:5000/x"
PF = verdict.PREFLIGHT_PREFIX
BLOCKED_AT = f"Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at {URL}. "
MISSING = "No 'Access-Control-Allow-Origin' header is present on the requested resource."
NOT_ALLOWED = f"Origin {ORIGIN} is not allowed by Access-Control-Allow-Origin. Status code: "
WILDCARD = ("The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' "
            "when the request's credentials mode is 'include'.")
FIREFOX_WARNING = (
    f"Cross-Origin Request Warning: The Same Origin Policy will disallow reading the remote resource at {URL} soon. "
    "(Reason: When the `Access-Control-Allow-Headers` is `*`, the `Authorization` header is not covered. To include "
    "the `Authorization` header, it must be explicitly listed in CORS header `Access-Control-Allow-Headers`)."
)


@dataclass(frozen=True)
class Case:
    """One exchange and what each engine's console shows: (rule, text[, Firefox's key])."""

    id: str
    headers: list[tuple[str, str]]
    status: int = 200
    credentials: bool = False
    preflight: tuple[str, list[str]] | None = None  # (method, request header names)
    chromium: tuple[str, str] = ("ok", "")
    firefox: tuple[str, str, str] = ("ok", "", "")
    webkit: tuple[str, str] = ("ok", "")
    notes: dict[str, int] = field(default_factory=dict)

    def judge(self, engine: str) -> verdict.Verdict:
        if self.preflight is None:
            return verdict.check_actual(ORIGIN, self.status, self.headers, self.credentials, engine=engine)
        method, names = self.preflight
        return verdict.check_preflight(ORIGIN, method, names, self.status, self.headers, self.credentials,
                                       engine=engine)


def acao(value: str) -> tuple[str, str]:
    return ("Access-Control-Allow-Origin", value)


CASES = [
    Case("missing", [], chromium=("acao-missing", MISSING),
         firefox=("acao-missing", BLOCKED_AT + "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). "
                  "Status code: 200.", "CORSMissingAllowOrigin2"),
         webkit=("acao-missing", NOT_ALLOWED + "200")),
    Case("comma-list", [acao("http://a.example, http://b.example")],
         chromium=("acao-multiple", "The 'Access-Control-Allow-Origin' header contains multiple values "
                   "'http://a.example, http://b.example', but only one is allowed. Have the server send the header "
                   "with a valid value."),
         firefox=("acao-mismatch", BLOCKED_AT + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match "
                  "‘http://a.example, http://b.example’).", "CORSAllowOriginNotMatchingOrigin"),
         webkit=("acao-multiple", "Access-Control-Allow-Origin cannot contain more than one origin.")),
    Case("two-fields", [acao(ORIGIN), acao(ORIGIN)],
         chromium=("acao-multiple", f"The 'Access-Control-Allow-Origin' header contains multiple values '{ORIGIN}, "
                   f"{ORIGIN}', but only one is allowed. Have the server send the header with a valid value."),
         firefox=("acao-multiple", BLOCKED_AT + "(Reason: Multiple CORS header ‘Access-Control-Allow-Origin’ not "
                  "allowed).", "CORSMultipleAllowOriginNotAllowed"),
         webkit=("acao-multiple", "Access-Control-Allow-Origin cannot contain more than one origin.")),
    Case("space-list", [acao("http://a.example http://b.example")],
         chromium=("acao-multiple", "The 'Access-Control-Allow-Origin' header contains multiple values "
                   "'http://a.example http://b.example', but only one is allowed. Have the server send the header "
                   "with a valid value."),
         firefox=("acao-mismatch", BLOCKED_AT + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match "
                  "‘http://a.example http://b.example’).", "CORSAllowOriginNotMatchingOrigin"),
         webkit=("acao-mismatch", NOT_ALLOWED + "200")),
    Case("invalid-404", [acao("foo")], status=404,
         chromium=("acao-invalid", "The 'Access-Control-Allow-Origin' header contains the invalid value 'foo'. "
                   "Have the server send the header with a valid value."),
         firefox=("acao-mismatch", BLOCKED_AT + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match "
                  "‘foo’).", "CORSAllowOriginNotMatchingOrigin"),
         webkit=("acao-mismatch", NOT_ALLOWED + "404")),
    Case("star-credentials", [acao("*"), ("Access-Control-Allow-Credentials", "true")], credentials=True,
         chromium=("acao-wildcard-credentials", WILDCARD),
         firefox=("acao-wildcard-credentials", f"Cross-Origin Request Blocked: The Same Origin Policy disallows "
                  f"reading the remote resource at ‘{URL}’. (Reason: Credential is not supported if the CORS header "
                  "‘Access-Control-Allow-Origin’ is ‘*’).", "CORSNotSupportingCredentials"),
         webkit=("acao-wildcard-credentials",
                 "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true.")),
    Case("acac-missing", [acao(ORIGIN)], credentials=True,
         chromium=("acac-not-true", "The value of the 'Access-Control-Allow-Credentials' header in the response is '' "
                   "which must be 'true' when the request's credentials mode is 'include'."),
         firefox=("acac-not-true", BLOCKED_AT + "(Reason: expected ‘true’ in CORS header "
                  "‘Access-Control-Allow-Credentials’).", "CORSMissingAllowCredentials"),
         webkit=("acac-not-true", 'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".')),
    Case("preflight-404-without-acao", [], status=404, preflight=("PUT", []),
         chromium=("acao-missing", PF + MISSING),
         firefox=("acao-missing", BLOCKED_AT + "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). "
                  "Status code: 404.", "CORSMissingAllowOrigin2"),
         webkit=("preflight-status", "Preflight response is not successful. Status code: 404")),
    Case("preflight-500", [acao("*")], status=500, preflight=("PUT", []),
         chromium=("preflight-status", PF + "It does not have HTTP ok status."),
         firefox=("preflight-status", BLOCKED_AT + "(Reason: CORS preflight response did not succeed). "
                  "Status code: 500.", "CORSPreflightDidNotSucceed3"),
         webkit=("preflight-status", "Preflight response is not successful. Status code: 500")),
    Case("preflight-redirect", [("Location", "/elsewhere")], status=302, preflight=("PUT", []),
         chromium=("preflight-redirect", PF + "Redirect is not allowed for a preflight request."),
         firefox=("preflight-redirect", BLOCKED_AT + "(Reason: CORS request external redirect not allowed).",
                  "CORSExternalRedirectNotAllowed"),
         webkit=("preflight-status", "Preflight response is not successful. Status code: 302")),
    Case("method", [acao("*"), ("Access-Control-Allow-Methods", "GET, put")], status=204, preflight=("PUT", []),
         chromium=("method-not-allowed", "Method PUT is not allowed by Access-Control-Allow-Methods in preflight "
                   "response."),
         firefox=("method-not-allowed", BLOCKED_AT + "(Reason: Did not find method in CORS header "
                  "‘Access-Control-Allow-Methods’).", "CORSMethodNotFound"),
         webkit=("method-not-allowed", "Method PUT is not allowed by Access-Control-Allow-Methods.")),
    Case("header", [acao("*"), ("Access-Control-Allow-Headers", "x-a")], status=204, preflight=("GET", ["x-b"]),
         chromium=("header-not-allowed", "Request header field x-b is not allowed by Access-Control-Allow-Headers in "
                   "preflight response."),
         firefox=("header-not-allowed", BLOCKED_AT + "(Reason: header ‘x-b’ is not allowed according to header "
                  "‘Access-Control-Allow-Headers’ from CORS preflight response).",
                  "CORSMissingAllowHeaderFromPreflight2"),
         webkit=("header-not-allowed", "Request header field x-b is not allowed by Access-Control-Allow-Headers.")),
    Case("acah-invalid", [acao("*"), ("Access-Control-Allow-Headers", "x-a, x b")], status=204,
         preflight=("GET", ["x-a"]),
         chromium=("acah-parse", "Cannot parse Access-Control-Allow-Headers response header field in preflight "
                   "response."),
         firefox=("acah-parse", BLOCKED_AT + "(Reason: invalid token ‘x b’ in CORS header "
                  "‘Access-Control-Allow-Headers’).", "CORSInvalidAllowHeader"),
         webkit=("acah-parse", "Header Access-Control-Allow-Headers has an invalid value: x-a, x b")),
    Case("acam-invalid", [acao("*"), ("Access-Control-Allow-Methods", "PUT;")], status=204, preflight=("PUT", []),
         chromium=("acam-parse", "Cannot parse Access-Control-Allow-Methods response header field in preflight "
                   "response."),
         firefox=("acam-parse", BLOCKED_AT + "(Reason: invalid token ‘PUT;’ in CORS header "
                  "‘Access-Control-Allow-Methods’).", "CORSInvalidAllowMethod"),
         webkit=("acam-parse", "Header Access-Control-Allow-Methods has an invalid value: PUT;")),
    Case("authorization-under-star", [acao("*"), ("Access-Control-Allow-Headers", "*")], status=204,
         preflight=("GET", ["authorization"]),
         firefox=("ok", FIREFOX_WARNING, "CORSAllowHeaderFromPreflightDeprecation")),
    Case("exact-credentials", [acao(ORIGIN), ("Access-Control-Allow-Credentials", "true")], credentials=True),
]


def mismatches(engine: str) -> Iterator[str]:
    """Every way the judge's view of `engine` differs from what that engine printed."""
    for case in CASES:
        expected = getattr(case, engine)
        v = case.judge(engine)
        got = (v.rule, verdict.console_text(v, "fetch", engine, URL), verdict.message_key(v, engine))
        if engine != "firefox":
            got = got[:2]
        if got != expected:
            yield f"{case.id}: {got} != {expected}"


@pytest.mark.parametrize("engine", verdict.ENGINES)
def test_each_engine_in_its_own_words(engine: str) -> None:
    assert list(mismatches(engine)) == []


@pytest.mark.parametrize("engine", verdict.ENGINES)
def test_outcome_is_the_same_where_the_engines_agree(engine: str) -> None:
    for case in CASES:
        assert case.judge(engine).ok == (case.chromium[0] == "ok"), case.id


def test_default_engine_is_chromium() -> None:
    for case in CASES:
        default = case.judge("chromium")
        assert default.engine == "chromium" and verdict.console_text(default) == case.chromium[1]
        assert verdict.console_text(default, engine="chromium") == case.chromium[1]


def test_console_text_status_overrides_the_verdicts() -> None:
    v = verdict.check_actual(ORIGIN, 200, [], False, engine="webkit")
    assert verdict.console_text(v, status=0) == NOT_ALLOWED + "0"
    v = verdict.check_actual(ORIGIN, 200, [], False, engine="firefox")
    assert verdict.console_text(v, url=URL, status=0).endswith("Status code: 0.")
    assert verdict.message_key(v, "chromium") == "" and verdict.message_key(verdict.OK) == ""


# -- notes: the preflight cache, Authorization, mixed content -----------------------------------------

def preflight_notes(engine: str, *headers: tuple[str, str]) -> tuple[str, ...]:
    v = verdict.check_preflight(ORIGIN, "PUT", [], 204, [acao("*"), *headers], False, engine=engine)
    assert v.ok
    return v.notes


@pytest.mark.parametrize(
    ("max_age", "capped"),
    [("600", set()), ("601", {"webkit"}), ("7200", {"webkit"}), ("7201", {"webkit", "chromium"}),
     ("86401", {"webkit", "chromium", "firefox"}), ("9" * 40, {"webkit", "chromium", "firefox"}), ("x", set())],
)
def test_max_age_caps_per_engine(max_age: str, capped: set[str]) -> None:
    methods = ("Access-Control-Allow-Methods", "PUT")
    for engine in verdict.ENGINES:
        notes = preflight_notes(engine, methods, ("Access-Control-Max-Age", max_age))
        cap = {"chromium": "Chrome caches this preflight for at most 7200 s", "firefox": "Firefox caches this "
               "preflight for at most 86400 s", "webkit": "Safari caches this preflight for at most 600 s"}[engine]
        assert any(n.startswith(cap) for n in notes) == (engine in capped), (engine, notes)


def test_firefox_never_caches_a_wildcard_answer() -> None:
    for headers in [("Access-Control-Allow-Methods", "*"), ("Access-Control-Allow-Headers", "x-a, *")]:
        assert firefox.WILDCARD_NOTE in preflight_notes("firefox", ("Access-Control-Allow-Methods", "*"), headers)
        assert firefox.WILDCARD_NOTE not in preflight_notes("chromium", ("Access-Control-Allow-Methods", "*"), headers)
        assert firefox.WILDCARD_NOTE not in preflight_notes("webkit", ("Access-Control-Allow-Methods", "*"), headers)
    zero = ("Access-Control-Max-Age", "0")  # never cached anyway
    assert firefox.WILDCARD_NOTE not in preflight_notes("firefox", ("Access-Control-Allow-Methods", "*"), zero)
    assert firefox.WILDCARD_NOTE not in preflight_notes("firefox", ("Access-Control-Allow-Methods", "PUT"))


def test_authorization_under_star_speaks_per_engine() -> None:
    notes = {e: preflight_notes(e, ("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Allow-Headers", "*"))
             for e in verdict.ENGINES}
    # No Authorization requested: only Firefox's cache note on the literal *.
    assert notes == {"chromium": (), "firefox": (firefox.WILDCARD_NOTE,), "webkit": ()}
    for engine, note in [("chromium", verdict.AUTHORIZATION_NOTE), ("firefox", firefox.AUTHORIZATION_NOTE),
                         ("webkit", webkit.AUTHORIZATION_NOTE)]:
        v = verdict.check_preflight(ORIGIN, "PUT", ["authorization"], 204,
                                    [acao("*"), ("Access-Control-Allow-Methods", "PUT"),
                                     ("Access-Control-Allow-Headers", "*")], False, engine=engine)
        assert v.ok and v.notes[0] == note and len(v.notes) == 1 + (engine == "firefox")


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "blocked"),
    [("https://app.example", "http", "127.0.0.1", True), ("https://app.example", "http", "localhost", True),
     ("https://app.example", "http", "[::1]", True), ("https://app.example", "http", "192.168.1.5", True),
     ("https://app.example", "http", "10.0.0.1", True), ("https://app.example", "https", "127.0.0.1", False),
     ("http://app.example", "http", "127.0.0.1", False), ("https://app.example", "http", "api.example.com", False),
     ("https://app.example", "http", "8.8.8.8", False)],
)
def test_mixed_content_in_safari(origin: str, scheme: str, host: str, blocked: bool) -> None:
    assert verdict.blocked_as_mixed_content(origin, scheme, host) is blocked


# -- one flow, every engine ---------------------------------------------------------------------------

PNA_PREFLIGHT = [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT"),
                 ("Access-Control-Request-Private-Network", "true")]


def test_diagnosis_says_which_engine_blocks() -> None:
    d = verdict.diagnose("OPTIONS", PNA_PREFLIGHT, 204, [acao("*"), ("Access-Control-Allow-Methods", "PUT")])
    pna = ("Response to preflight request doesn't pass access control check: No 'Access-Control-Allow-Private-Network' "
           "header was present in the preflight response for this private network request targeting the `local` "
           "address space.")
    assert d.blocked_in(["chromium"]) and not d.blocked_in(["firefox", "webkit"])
    assert d.summary(["firefox", "webkit"]).startswith("ok (with credentials: blocked: ")
    line = d.summary(verdict.ENGINES)
    assert line.startswith(f"blocked in Chrome: {pna}; ok in Firefox and Safari (with credentials: blocked: ")
    assert d.summary() == d.summary(["chromium"])  # the default speaks for Chromium, as before
    assert verdict.PRIVATE_NETWORK_NOTE not in d.verdict_in("firefox").notes


def test_diagnosis_agreeing_engines_read_as_one() -> None:
    d = verdict.diagnose("GET", [("Origin", ORIGIN), ("Cookie", "a=1")], 200, [])
    assert d.summary(verdict.ENGINES) == f"blocked: {MISSING}"
    assert d.summary(["webkit", "firefox"]) == f"blocked: {NOT_ALLOWED}200"
    assert all(d.verdict_in(e).rule == "acao-missing" for e in verdict.ENGINES)
    assert d.origin == ORIGIN


def test_diagnose_raw_agrees_per_engine() -> None:
    raw = [(k.encode(), v.encode()) for k, v in PNA_PREFLIGHT]
    response = [(b"Access-Control-Allow-Origin", b"*"), (b"Access-Control-Allow-Origin", b"*")]
    d = verdict.diagnose_raw("OPTIONS", raw, 204, response)
    assert d == verdict.diagnose("OPTIONS", PNA_PREFLIGHT, 204, [acao("*"), acao("*")])
    assert verdict.message_key(d.verdict_in("firefox"), "firefox") == "CORSMultipleAllowOriginNotAllowed"


@pytest.mark.parametrize(
    ("text", "engines"),
    [("chromium,firefox,webkit", verdict.ENGINES), ("Safari, chrome", ("chromium", "webkit")),
     ("firefox,,firefox", ("firefox",)), ("webkit", ("webkit",))],
)
def test_parse_engines(text: str, engines: tuple[str, ...]) -> None:
    assert verdict.parse_engines(text) == engines


@pytest.mark.parametrize(("text", "error"), [("", "at least one"), (" , ", "at least one"), ("opera", "'opera'")])
def test_parse_engines_refuses(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        verdict.parse_engines(text)


def test_messages_are_built_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for module in (chromium, firefox, webkit):
        original = module.message
        monkeypatch.setattr(module, "message", lambda v, *a, _o=original, _m=module: calls.append(_m.NAME) or _o(v, *a))
    d = verdict.diagnose("GET", [("Origin", ORIGIN)], 200, [])
    assert calls == []  # judged for three engines, nothing worded
    d.summary(verdict.ENGINES)
    assert calls == ["Chrome", "Chrome"]  # the engines agree: one message per credentials mode


# -- breaking the judge on purpose is caught, engine by engine ----------------------------------------

def broken_by(monkeypatch: pytest.MonkeyPatch, breakage: str) -> dict[str, int]:
    """Break one engine's module as `breakage` says; how many cases now fail per engine."""
    if breakage == "webkit-wording":
        monkeypatch.setitem(webkit._MESSAGES, "acao-multiple", "Access-Control-Allow-Origin cannot contain more "
                            "than one value.")
    elif breakage == "webkit-status-first":
        monkeypatch.setattr(webkit, "PREFLIGHT_STATUS_FIRST", False)
    elif breakage == "firefox-authorization-warning":
        monkeypatch.setitem(rules._ENGINE_NOTES["firefox"], verdict.AUTHORIZATION_NOTE, verdict.AUTHORIZATION_NOTE)
    elif breakage == "firefox-key":
        monkeypatch.setitem(firefox._REASONS, "method-not-allowed", ("CORSMethodNotAllowed", *firefox._REASONS[
            "method-not-allowed"][1:]))
    elif breakage == "firefox-multiple":
        monkeypatch.setattr(firefox, "ACAO_LIST_SEPARATORS", ",")
    elif breakage == "chromium-prefix":
        monkeypatch.setattr(chromium, "PREFLIGHT_PREFIX", "Response to preflight request doesn't pass access "
                            "control check:")
    return {engine: len(list(mismatches(engine))) for engine in verdict.ENGINES}


@pytest.mark.parametrize(
    ("breakage", "engine"),
    [("webkit-wording", "webkit"), ("webkit-status-first", "webkit"), ("firefox-authorization-warning", "firefox"),
     ("firefox-key", "firefox"), ("firefox-multiple", "firefox"), ("chromium-prefix", "chromium")],
)
def test_a_broken_engine_is_caught_and_only_that_one(monkeypatch: pytest.MonkeyPatch, breakage: str,
                                                     engine: str) -> None:
    failing = broken_by(monkeypatch, breakage)
    assert failing[engine] > 0
    assert all(count == 0 for other, count in failing.items() if other != engine), failing


# -- every engine has words for every verdict, whatever comes in ---------------------------------------

_VALUES = st.sampled_from(["*", "true", "null", ORIGIN, "GET", "PATCH, *", "x-a, x b", "600", "99999"]) | st.text(
    max_size=40)
_NAMES = st.sampled_from(["Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Max-Age",
                          "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Location", "X-Foo"])
_HEADERS = st.lists(st.tuples(_NAMES, _VALUES), max_size=8)


@settings(max_examples=200, deadline=None)
@given(origin=_VALUES, method=_VALUES, names=st.lists(_VALUES, max_size=3), status=st.integers(-1, 1000),
       headers=_HEADERS, credentials=st.booleans(), private_network=st.booleans())
def test_every_engine_words_every_verdict(origin, method, names, status, headers, credentials, private_network):
    chromium_ok = None
    for engine in verdict.ENGINES:
        for v in (verdict.check_actual(origin, status, headers, credentials, engine=engine),
                  verdict.check_preflight(origin, method, names, status, headers, credentials, private_network,
                                          engine=engine)):
            assert v.engine == engine and (v.message == "") == v.ok
            text = verdict.console_text(v, url=URL)
            assert bool(text) == (not v.ok or firefox.AUTHORIZATION_NOTE in v.notes)
            assert bool(verdict.message_key(v, engine)) == (engine == "firefox" and bool(text))
            assert "\n" not in text or engine != "chromium"  # Firefox and Safari quote raw text (the log escapes it)
        if engine == "chromium":
            chromium_ok = v.ok
        elif not private_network:  # without Chromium's own Private Network Access, the outcome is the same
            assert v.ok == chromium_ok
