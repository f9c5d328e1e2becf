"""The nginx exporter's pure parts against the engine they translate (no nginx needed).

nginx's PCRE and Python's re read these regexes alike (the exporter writes only constructs both share;
`\\z` is Python's `\\Z`), so the route regexes, taken in the exporter's order with the first match
winning as nginx's `map` does, must pick the API routing.Router picks, and the origin regexes must admit
what origins.OriginMatcher admits. quote() must survive nginx's own unescaping."""

from __future__ import annotations

import itertools
import re

import pytest

from addon.core.origins import OriginMatcher, parse_origin_rule
from addon.core.policy import group_domains, parse_policy
from addon.core.routing import Router
from addon.tools.nginx_export import VALID_ORIGIN, ExportError, _rank, export_nginx, origin_regex, quote, route_regex
from tests.support.nginx import read_quoted

POLICY = """\
version: 1
apis:
  - {name: root-swa, method: ANY, path: /, match_mode: SWA}
  - {name: root, method: GET, path: /}
  - {name: users, method: GET, path: /users}
  - {name: users-swa, method: ANY, path: /users, match_mode: SWA}
  - {name: user, method: GET, path: "/users/{id}"}
  - {name: user-any, method: ANY, path: "/users/{id}"}
  - {name: me, method: GET, path: /users/me}
  - {name: slash, method: GET, path: /users/}
  - {name: files, method: ANY, path: "/files/{p+}"}
  - {name: file-x, method: PUT, path: "/files/x/{p+}"}
  - {name: deep, method: GET, path: "/a/{b}/c/{d}", match_mode: SWA}
  - {name: host, method: GET, path: /users, host: api.example.com}
  - {name: host-swa, method: ANY, path: /, match_mode: SWA, host: api.example.com}
  - {name: odd, method: POST, path: "/x.y/$a;'b\\"c"}
  - {name: lower, method: PATCH, path: /p}
  - {name: grouped, method: GET, path: /, group: g, req_protocol: HTTP}
  - {name: grouped-host, method: GET, path: /users/me, group: g, host: shop.example.com}
  - {name: tls-only, method: GET, path: /users/7, req_protocol: HTTPS}
  - {name: tls-grouped, method: ANY, path: /files, match_mode: SWA, group: g, req_protocol: HTTPS}
groups:
  g: {domains: [shop.example.com, API.example.com]}
"""
HOSTS = ("api.example.com", "other.example.com", "shop.example.com")
METHODS = ("GET", "PUT", "POST", "PATCH", "patch", "OPTIONS")
PATHS = ("/", "/users", "/users/", "/users/7", "/users/me", "/users/me/x", "/users//x", "/usersx", "/files",
         "/files/", "/files/a", "/files/x/y", "/files/x", "/a/1/c/2", "/a/1/c/2/e", "/a/1/c", "/x.y/$a;'b\"c",
         "/x.y/$a;'b\"cd", "/p", "/P", "/users/7/8")


def _python(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace(r"\z", r"\Z"))


def test_route_regexes_in_precedence_order_pick_the_routers_api() -> None:
    """Groups with domains and req_protocol included (issue 18): nginx's key starts with $scheme."""
    policy = parse_policy(POLICY).policy
    apis = policy.apis
    domains = [group_domains(policy, a) for a in apis]
    router = Router([(a.host, a.method, a.path, a.match_mode) for a in apis],
                    [(d, a.req_protocol) for a, d in zip(apis, domains)])
    ordered = sorted(range(len(apis)), key=lambda i: _rank(apis[i], i, domains[i]))
    regexes = [(i, _python(route_regex(apis[i], domains=domains[i]))) for i in ordered]
    checked = hit = 0
    for tls, host, method, path in itertools.product((False, True), HOSTS, METHODS, PATHS):
        found = router.lookup(host, method, path, tls)
        key = f"{'https' if tls else 'http'} {host} {path} {method}"
        first = next((i for i, regex in regexes if regex.search(key)), None)
        assert first == (found.index if found and found.index >= 0 else None), (key, first, found)
        checked += 1
        hit += first is not None and apis[first].name in ("grouped", "grouped-host", "tls-only", "tls-grouped")
    assert checked == 2 * len(HOSTS) * len(METHODS) * len(PATHS)
    assert hit > 10  # the issue-18 APIs are really reached


RULES = ("https://app.example.com", "https://*.example.org:8443", "http://localhost:5173", "http://[::1]:8080",
         "foo://bar:99", "https://*.xn--bcher-kva.example")
ORIGINS = (
    "https://app.example.com", "HTTPS://APP.EXAMPLE.COM", "https://app.example.com:443", "https://app.example.com:0443",
    "https://app.example.com/", "https://app.example.com.evil.net", "http://app.example.com", "https://a.b.example.org:8443",
    "https://example.org:8443", "https://x.example.org", "http://localhost:5173", "http://localhost:5174",
    "http://[::1]:8080", "foo://bar:99", "foo://bar", "https://1.2.3.4", "https://1.2.3.04", "https://a.1",
    "https://a.0x1f", "https://pr-7.preview.example.com", "null", "NULL", "", "https://", "https://a..b",
    "https://x.xn--bcher-kva.example", "https://app.example.com:65536", "https://-a.example.com",
    "https://a_b.example.com", "https://user@app.example.com",
)


@pytest.mark.parametrize("null", [False, True])
@pytest.mark.parametrize("star", [False, True])
def test_origin_regexes_admit_what_the_matcher_admits(null: bool, star: bool) -> None:
    regex = r"https://pr-[0-9]+\.preview\.example\.com"
    matcher = OriginMatcher(RULES + (("*",) if star else ()), (regex,), null)
    valid = _python(rf"^(?i:{VALID_ORIGIN})\z")
    listed = [_python(origin_regex(r)) for r in RULES] + [_python(rf"^(?:{regex})\z")]

    def nginx(value: str) -> bool:  # the order of the exported map: null, not a serialised origin, rules, default
        if re.fullmatch("null", value):
            return null
        if not valid.search(value):
            return False
        return any(r.search(value) for r in listed) or star

    for origin in ORIGINS:
        assert nginx(origin) == (matcher.match(origin) is not None), origin


def test_origin_regex_is_the_canonical_form() -> None:
    assert parse_origin_rule("https://APP.example.com:443/").kind == "exact"
    assert _python(origin_regex("https://APP.example.com:443/")).search("https://app.example.com")


def _nginx_unquote(token: str) -> str:
    """What ngx_conf_read_token makes of a double-quoted token: an unescaped quote must not end it early."""
    assert token[0] == '"'
    value, end = read_quoted(token, 0)
    assert end == len(token), "an unescaped quote ends the token early"
    return value


@pytest.mark.parametrize("text", ['a"b', "a\\", "\\\"", "x\\ty", "line\nbreak\r", "'; }", "#{$x}", "\\n", ""])
def test_quote_survives_nginx_unescaping(text: str) -> None:
    assert _nginx_unquote(quote(text)) == text
    assert _nginx_unquote(quote(text, variables=True)) == text.replace("$", "${cg_dollar}")


RESP = """\
version: 1
plugins:
  h:
    type: set_resp_headers
    content:
      response_headers:
        - {name: X-A, value: v, action: append}
        - {name: Server, value: s, action: override}
apis:
  - {name: a, method: GET, path: /a, plugins: [h]}
  - {name: t, method: GET, path: /t, req_protocol: HTTPS}
"""


def test_set_resp_headers_on_an_nginx_managed_name_is_refused_with_line_and_field() -> None:
    with pytest.raises(ExportError) as raised:
        export_nginx(parse_policy(RESP, "p.yaml"), "http://127.0.0.1:9", text=RESP)
    assert [str(p.render("p.yaml")) for p in raised.value.problems] == [
        "p.yaml:8: plugins.h.content.response_headers[1].name: server is set by nginx or by the exported CORS "
        "rules: nginx cannot let a set_resp_headers plug-in edit it"]


def test_append_and_https_only_are_warned_with_line_and_field() -> None:
    text = RESP.replace("        - {name: Server, value: s, action: override}\n", "")
    warnings = [p.render("p.yaml") for p in export_nginx(parse_policy(text, "p.yaml"), "http://127.0.0.1:9",
                                                         text=text).warnings]
    assert [w.split(": ")[0] + ": " + w.split(": ")[1] for w in warnings] == [
        "p.yaml:7: plugins.h.content.response_headers[0].action", "p.yaml:10: apis[1].req_protocol"]
    assert "append joins only that first field" in warnings[0] and "never matches" in warnings[1]
