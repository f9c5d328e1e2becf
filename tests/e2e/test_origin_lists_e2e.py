"""Issue 18 part 1 through a real mitmdump in reverse mode in front of the real CORS-less backend:
plug-ins whose allow list is regexes only, `null` only, or nothing at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Backend, Proxy, http

POLICY = r"""version: 1
gateway: {request_id: false}
plugins:
  previews:
    type: cors
    content:
      allow_origin_regex: ["^https://pr-[0-9]+\\.preview\\.example\\.com$"]
      allow_methods: GET,PUT
      allow_headers: Content-Type
  sandboxed:
    type: cors
    content: {allow_null_origin: true, allow_methods: "GET,PUT", allow_headers: Content-Type}
  nobody:
    type: cors
    content: {allow_origin: "", allow_methods: "GET,PUT"}  # cors-lint: ignore[origin-admits-none] on purpose
apis:
  - {name: previews, method: ANY, path: /previews, match_mode: SWA, plugins: [previews]}
  - {name: sandboxed, method: ANY, path: /sandboxed, match_mode: SWA, plugins: [sandboxed]}
  - {name: closed, method: ANY, path: /closed, match_mode: SWA, plugins: [nobody]}
"""
PREVIEW = "https://pr-12.preview.example.com"


@pytest.fixture(scope="module")
def proxy(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    path: Path = tmp_path_factory.mktemp("lists") / "lists.yaml"
    path.write_text(POLICY)
    with Proxy(path, mode=f"reverse:{backend.url}") as p:
        yield p


def cors(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers if k.lower().startswith("access-control-") or k.lower() == "vary"}


def preflight(proxy: Proxy, path: str, origin: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = http("OPTIONS", proxy.url + path, {
        "Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"})
    return status, cors(headers)


def get(proxy: Proxy, path: str, origin: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = http("GET", proxy.url + path, {"Origin": origin})
    return status, cors(headers)


@pytest.mark.parametrize(("path", "admitted", "refused"), [
    ("/previews", PREVIEW, ["https://pr-12.preview.example.com.evil.net", "https://preview.example.com", "null"]),
    ("/sandboxed", "null", ["https://app.example.com", PREVIEW]),
    ("/closed", None, ["https://app.example.com", PREVIEW, "null"]),
], ids=["regex-only", "null-only", "admits-nobody"])
def test_allow_lists_on_the_wire(
    proxy: Proxy, backend: Backend, path: str, admitted: str | None, refused: list[str]
) -> None:
    backend.clear()
    if admitted is not None:
        status, answer = preflight(proxy, path, admitted)
        assert status == 200 and answer["access-control-allow-origin"] == admitted, answer
        assert answer["access-control-allow-methods"] == "GET,PUT" and answer["vary"] == "Origin"
        status, answer = get(proxy, path, admitted)
        assert status == 200 and answer == {"access-control-allow-origin": admitted, "vary": "Origin"}
    for origin in refused:
        status, answer = preflight(proxy, path, origin)
        assert status == 403 and answer == {"vary": "Origin"}, (origin, answer)
        status, answer = get(proxy, path, origin)
        assert status == 200 and answer == {"vary": "Origin"}, (origin, answer)
    # Refused preflights never reach the backend; every GET does.
    assert [hit["method"] for hit in backend.hits()] == ["GET"] * (len(refused) + (admitted is not None))
