"""APIG's set_resp_headers plug-in through a real mitmdump in reverse mode, in front of the real backend sending
duplicates of the same header: all five actions on the wire, upstream and mock answers edited, gateway-made
errors not, the CORS edit after the plug-in's, and a protected header refused at start with file:line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.test_gateway_e2e import values
from tests.support.procs import Backend, Proxy, free_port, http, run_to_exit

POLICY = """version: 1
gateway: {request_id: true}
plugins:
  web:
    type: cors
    content: {allow_origin: "https://app.example.com", allow_methods: "GET,PUT", expose_headers: "*",
              allow_credentials: true}
  headers:
    type: set_resp_headers
    content:
      response_headers:
        - {name: X-Override, value: mine, action: override}
        - {name: X-Append, value: mine, action: append}
        - {name: X-Delete, action: delete}
        - {name: X-Skip, value: mine, action: skip}
        - {name: X-Add, value: mine, action: add}
        - {name: X-Absent-Skip, value: mine, action: skip}
apis:
  - {name: up, method: ANY, path: /up, match_mode: SWA, plugins: [web, headers]}
  - {name: mock, method: GET, path: /mock, plugins: [web, headers],
     backend: {type: mock, headers: {X-Override: m, X-Delete: m, X-Skip: m}}}
  - {name: locked, method: GET, path: /locked, auth: app, plugins: [web, headers]}
"""
ORIGIN = "https://app.example.com"
DUPLICATES = [("X-Override", "1"), ("X-Override", "2"), ("X-Append", "1"), ("X-Append", "2"), ("X-Delete", "1"),
              ("X-Delete", "2"), ("X-Skip", "1"), ("X-Skip", "2"), ("X-Add", "1")]
PLUGIN_NAMES = {"x-override", "x-append", "x-delete", "x-skip", "x-add", "x-absent-skip"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resp") / "resp.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def proxy(policy: Path, backend: Backend) -> Iterator[Proxy]:
    with Proxy(policy, mode=f"reverse:{backend.url}") as p:
        yield p


def test_all_five_actions_on_upstream_duplicates(proxy: Proxy) -> None:
    query = urlencode([("header", f"{k}:{v}") for k, v in DUPLICATES])
    status, headers, _ = http("GET", f"{proxy.url}/up?{query}", {"Origin": ORIGIN})
    assert status == 200
    assert values(headers, "X-Override") == ["mine"]  # one field, every backend one replaced
    assert values(headers, "X-Append") == ["1,2,mine"]  # the backend's values and this one, joined with ','
    assert values(headers, "X-Delete") == []  # all removed
    assert values(headers, "X-Skip") == ["1", "2"]  # the backend's kept, all of them
    assert values(headers, "X-Add") == ["1", "mine"]  # another field
    assert values(headers, "X-Absent-Skip") == ["mine"]  # skip adds a header the backend did not send
    # The CORS edit came after: '*' with credentials echoes the names, the plug-in's included.
    exposed = {n.lower() for n in values(headers, "Access-Control-Expose-Headers")[0].split(",")}
    assert PLUGIN_NAMES - {"x-delete"} <= exposed and "x-delete" not in exposed
    assert values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert len(values(headers, "X-Request-Id")) == 1


def test_mock_answers_are_edited_too(proxy: Proxy) -> None:
    status, headers, _ = http("GET", f"{proxy.url}/mock", {"Origin": ORIGIN})
    assert status == 200
    assert values(headers, "X-Override") == ["mine"] and values(headers, "X-Delete") == []
    assert values(headers, "X-Skip") == ["m"] and values(headers, "X-Append") == ["mine"]
    assert values(headers, "X-Add") == ["mine"] and values(headers, "Server") == ["api-gateway"]


def test_gateway_made_errors_are_not_edited(proxy: Proxy, backend: Backend, policy: Path) -> None:
    status, headers, _ = http("GET", f"{proxy.url}/locked", {"Origin": ORIGIN})  # APIG.0303: no Authorization
    assert status == 401 and values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert not PLUGIN_NAMES & {k.lower() for k, _ in headers}
    status, headers, _ = http("OPTIONS", f"{proxy.url}/up", {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert status == 200 and not PLUGIN_NAMES & {k.lower() for k, _ in headers}  # the CORS plug-in's answer
    with Proxy(policy, mode=f"reverse:http://127.0.0.1:{free_port()}") as dead:
        status, headers, _ = http("GET", f"{dead.url}/up", {"Origin": ORIGIN})
    assert status == 502 and values(headers, "Access-Control-Allow-Origin") == [ORIGIN]
    assert not PLUGIN_NAMES & {k.lower() for k, _ in headers}


def test_protected_header_refused_at_start_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("{name: X-Add, value: mine, action: add}",
                                  "{name: X-Apig-Latency, value: '0', action: add}"))
    rc, out = run_to_exit(["-s", "addon/cors_gateway.py", "--set", f"cors_policy={bad}"])
    assert rc == 1
    assert f"{bad}:16: plugins.headers.content.response_headers[4].name: 'X-Apig-Latency' cannot be managed" in out
