"""APIG's set_resp_headers plug-in: each action against the cases apig_03_0022 documents, the load errors,
and the order against the CORS edit (the plug-in first, so the CORS layer and the judge see its headers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from addon.core.cors import Engine, RequestFacts
from addon.core.policy import PolicyError, RespHeadersContent, parse_policy
from addon.core.resp_headers import RespHeaderRule
from addon.gateway import apply_edit, make_response
from mitmproxy import http


def rule(*headers: dict[str, str]) -> RespHeaderRule:
    return RespHeaderRule("h", RespHeadersContent.model_validate({"response_headers": list(headers)}))


def edit(action: str, given: list[tuple[str, str]], name: str = "test", value: str = "mine") -> list[tuple[str, str]]:
    fields = [(k.encode(), v.encode()) for k, v in given]
    out = rule({"name": name, "value": value, "action": action}).apply(fields)
    return [(k.decode(), v.decode()) for k, v in out]


BACKEND = [("Content-Type", "text/plain"), ("Test", "a"), ("X-Other", "1"), ("test", "b")]


# -- override: "the value of this header overrides the same header ...; with several of the same name, only
#    this value is returned; with none, this value is returned"
def test_override_replaces_one() -> None:
    assert edit("override", [("Test", "a")]) == [("Test", "mine")]


def test_override_replaces_all_duplicates_with_one_field_at_the_first_place() -> None:
    assert edit("override", BACKEND) == [("Content-Type", "text/plain"), ("Test", "mine"), ("X-Other", "1")]


def test_override_adds_when_absent() -> None:
    assert edit("override", [("X-Other", "1")]) == [("X-Other", "1"), ("test", "mine")]


# -- append: "added following the existing value, separated with commas; several of the same name: their values
#    separated with commas, then this one; none: this value"
def test_append_follows_the_existing_value() -> None:
    assert edit("append", [("Test", "a")]) == [("Test", "a,mine")]


def test_append_joins_duplicates_then_this_one() -> None:
    assert edit("append", BACKEND) == [("Content-Type", "text/plain"), ("Test", "a,b,mine"), ("X-Other", "1")]


def test_append_adds_when_absent() -> None:
    assert edit("append", []) == [("test", "mine")]


# -- delete: "deleted if present; several of the same name: all deleted"
def test_delete_removes_every_field_of_the_name() -> None:
    assert edit("delete", BACKEND) == [("Content-Type", "text/plain"), ("X-Other", "1")]


def test_delete_of_an_absent_header_changes_nothing() -> None:
    assert edit("delete", [("X-Other", "1")]) == [("X-Other", "1")]


# -- skip: "skipped if present; several of the same name: all returned; none: this value"
def test_skip_keeps_existing_fields_all_of_them() -> None:
    assert edit("skip", BACKEND) == BACKEND


def test_skip_adds_when_absent() -> None:
    assert edit("skip", [("X-Other", "1")]) == [("X-Other", "1"), ("test", "mine")]


# -- add: "returned even if the response contains a header with the same name"
def test_add_always_adds_another_field() -> None:
    assert edit("add", BACKEND) == [*BACKEND, ("test", "mine")]
    assert edit("add", []) == [("test", "mine")]


def test_apig_example_script_in_order() -> None:
    """APIG's example: test append, test1 override, applied in the plug-in's order."""
    r = rule({"name": "test", "value": "test", "action": "append"},
             {"name": "test1", "value": "test1", "action": "override"})
    out = r.apply([(b"test", b"x"), (b"Test1", b"old"), (b"test1", b"older")])
    assert out == ((b"test", b"x,test"), (b"Test1", b"test1"))


def test_action_is_case_insensitive() -> None:
    content = RespHeadersContent.model_validate({"response_headers": [{"name": "A", "value": "1", "action": "Override"}]})
    assert content.response_headers[0].action == "override"


# -- load errors -------------------------------------------------------------------------------------------

def policy(headers: str, apis: str = "apis: []\n") -> str:
    return f"version: 1\nplugins:\n  h:\n    type: set_resp_headers\n    content:\n      response_headers:\n{headers}{apis}"


@pytest.mark.parametrize("name", ["X-Apig-Latency", "x-apig-mode", "X-Request-Id", "Access-Control-Allow-Origin",
                                  "access-control-expose-headers"])
def test_protected_headers_are_a_located_load_error(name: str) -> None:
    text = policy(f"        - {{name: X-Ok, value: v, action: add}}\n        - {{name: {name}, value: v, action: add}}\n")
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    (problem,) = err.value.problems
    assert (problem.line, problem.field) == (8, "plugins.h.content.response_headers[1].name")
    assert f"p.yaml:8: plugins.h.content.response_headers[1].name: {name!r} cannot be managed" in str(err.value)


def test_names_unique_case_insensitively_and_at_most_ten() -> None:
    with pytest.raises(PolicyError, match="listed twice"):
        parse_policy(policy("        - {name: X-A, value: v, action: add}\n        - {name: x-a, value: w, action: add}\n"))
    eleven = "".join(f"        - {{name: X-H{i}, value: v, action: add}}\n" for i in range(11))
    with pytest.raises(PolicyError, match="at most 10"):
        parse_policy(policy(eleven))


@pytest.mark.parametrize(("header", "message"), [
    ("{name: 1abc, value: v, action: add}", "not an APIG response header name"),
    ("{name: X-A, value: v, action: replace}", "must be one of"),
    ("{name: X-A, value: \"a\\r\\nb\", action: add}", "is not a header value"),
    ("{name: " + "X" * 33 + ", value: v, action: add}", "at most 32"),
])
def test_bad_entries(header: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(policy(f"        - {header}\n"))


def test_one_plugin_of_each_type_per_api() -> None:
    text = policy("        - {name: X-A, value: v, action: add}\n",
                  "  h2:\n    type: set_resp_headers\n    content: {response_headers: []}\n"
                  "apis:\n  - {name: a, method: GET, path: /, plugins: [h, h2]}\n")
    with pytest.raises(PolicyError, match="more than one plug-in of type 'set_resp_headers'"):
        parse_policy(text)


# -- the order against the CORS edit ------------------------------------------------------------------------

ORDERED = """version: 1
gateway: {request_id: false}
plugins:
  cors:
    type: cors
    content: {allow_origin: 'https://app.example.com', expose_headers: '*', allow_credentials: true}
  h:
    type: set_resp_headers
    content:
      response_headers:
        - {name: X-Added, value: yes, action: add}
        - {name: Server, action: delete}
apis:
  - {name: up, method: GET, path: /up, plugins: [cors, h]}
  - {name: mock, method: GET, path: /mock, plugins: [cors, h], backend: {type: mock, headers: {Server: m, X-M: '1'}}}
  - {name: bare, method: GET, path: /bare, plugins: [cors]}
"""


def test_echoed_expose_star_includes_the_plugin_added_header_upstream_and_mock() -> None:
    e = Engine(parse_policy(ORDERED))
    d = e.decide(RequestFacts("GET", "h", "/up", "https://app.example.com"))
    assert d.resp_headers is not None and any("set_resp_headers plug-in 'h'" in s for s in d.trail)
    headers = http.Headers([(b"Server", b"backend"), (b"X-B", b"1")])
    apply_edit(headers, d)
    assert headers.get_all("server") == [] and headers["x-added"] == "yes"
    assert headers["access-control-expose-headers"] == "X-B,X-Added"
    m = e.decide(RequestFacts("GET", "h", "/mock", "https://app.example.com"))
    assert m.response is not None
    response = make_response(m.response, m, "api-gateway")
    # The mock's own Server goes (the plug-in), the gateway's Server is set after it, as on APIG.
    assert response.headers.get_all("server") == ["api-gateway"] and response.headers["x-added"] == "yes"
    assert response.headers["access-control-expose-headers"].split(",")[:2] == ["X-M", "X-Added"]


def test_api_without_the_plugin_and_gateway_errors_are_not_edited() -> None:
    e = Engine(parse_policy(ORDERED))
    bare = e.decide(RequestFacts("GET", "h", "/bare", "https://app.example.com"))
    assert bare.resp_headers is None
    refused = e.decide(RequestFacts("OPTIONS", "h", "/up", "https://evil.example", "GET"))
    assert refused.response is not None and refused.response.status == 403
    assert "x-added" not in make_response(refused.response, refused, None).headers



def test_cors_check_shows_the_plugin_headers_and_what_the_page_can_read(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    path = tmp_path / "p.yaml"
    path.write_text("""version: 1
gateway: {request_id: false}
plugins:
  web:
    type: cors
    content: {allow_origin: "https://app.example.com", expose_headers: X-Exposed}
  h:
    type: set_resp_headers
    content:
      response_headers:
        - {name: X-Exposed, value: "1", action: add}
        - {name: X-Hidden, value: "2", action: add}
apis:
  - {name: a, method: GET, path: /a, plugins: [web, h]}
""")
    done = subprocess.run([sys.executable, str(repo / "scripts" / "cors-check"), str(path), "--origin",
                           "https://app.example.com", "--method", "GET", "--url", "http://127.0.0.1:9/a",
                           "--format", "json"], cwd=repo, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    actual = json.loads(done.stdout)["actual"]
    assert ("X-Hidden", "2") in [tuple(h) for h in actual["response"]["headers"]]
    assert any("set_resp_headers plug-in 'h'" in step for step in actual["gateway"]["trail"])
    assert "x-exposed" in [n.lower() for n in actual["readable"]]
    assert "x-hidden" not in [n.lower() for n in actual["readable"]]
