"""Routing: APIG path patterns, match modes and the precedence of DESIGN §4.1."""

from __future__ import annotations

import pytest

from addon.core.routing import Router, parse_path, route_signature


def _router(*apis: tuple[str | None, str, str, str]) -> Router:
    return Router(list(apis))


def _hit(router: Router, method: str, path: str, host: str = "h") -> int | None:
    found = router.lookup(host, method, path)
    return found.index if found else None


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("/", ()),
        ("/a/{b}", (("lit", "a"), ("param", "b"))),
        ("/files/{p+}", (("lit", "files"), ("rest", "p"))),
        ("/a/", (("lit", "a"), ("lit", ""))),
    ],
)
def test_parse_path(path: str, segments: tuple[tuple[str, str], ...]) -> None:
    assert parse_path(path) == segments


@pytest.mark.parametrize("path", ["a", "/a/{b+}/c", "/a/pre-{x}", "/a//b", "/a/{b c}"])
def test_parse_path_rejects(path: str) -> None:
    with pytest.raises(ValueError):
        parse_path(path)


def test_normal_is_exact_and_swa_is_segment_prefix() -> None:
    r = _router((None, "GET", "/simple", "NORMAL"), (None, "GET", "/pre", "SWA"))
    assert _hit(r, "GET", "/simple") == 0
    assert _hit(r, "GET", "/simple/x") is None
    assert _hit(r, "GET", "/pre") == 1
    assert _hit(r, "GET", "/pre/a/b") == 1
    assert _hit(r, "GET", "/prefix") is None  # segment boundaries, not string prefix


def test_params_match_one_segment_and_plus_the_rest() -> None:
    r = _router((None, "GET", "/users/{id}", "NORMAL"), (None, "GET", "/files/{p+}", "NORMAL"))
    assert _hit(r, "GET", "/users/42") == 0
    assert _hit(r, "GET", "/users/42/x") is None
    assert _hit(r, "GET", "/users/") is None
    assert _hit(r, "GET", "/files/a/b/c") == 1
    assert _hit(r, "GET", "/files") is None


def test_host_specific_before_any_host() -> None:
    r = _router((None, "GET", "/a", "NORMAL"), ("api.example.com", "GET", "/", "SWA"))
    assert _hit(r, "GET", "/a", host="API.example.com") == 1
    assert _hit(r, "GET", "/a", host="other") == 0


def test_normal_before_swa_even_if_swa_is_longer() -> None:
    r = _router((None, "GET", "/a/b", "SWA"), (None, "GET", "/a/{x}", "NORMAL"))
    assert _hit(r, "GET", "/a/b") == 1


def test_longer_literal_before_shorter() -> None:
    r = _router((None, "GET", "/test", "SWA"), (None, "GET", "/test/AA/BB", "SWA"), (None, "GET", "/test/AA", "SWA"))
    assert _hit(r, "GET", "/test/AA/BB/c") == 1
    assert _hit(r, "GET", "/test/AA/x") == 2
    assert _hit(r, "GET", "/test/x") == 0


def test_fewer_params_before_more() -> None:
    r = _router((None, "GET", "/a/{x}/{y}", "NORMAL"), (None, "GET", "/a/{x}/c", "NORMAL"))
    assert _hit(r, "GET", "/a/b/c") == 1


def test_named_method_before_any_then_file_order() -> None:
    r = _router((None, "ANY", "/a", "NORMAL"), (None, "GET", "/a", "NORMAL"), (None, "ANY", "/{x}", "NORMAL"))
    assert _hit(r, "GET", "/a") == 1
    assert _hit(r, "PUT", "/a") == 0
    assert _hit(r, "PUT", "/b") == 2


def test_methods_are_case_sensitive() -> None:
    r = _router((None, "PATCH", "/a", "NORMAL"))
    assert _hit(r, "PATCH", "/a") == 0
    assert _hit(r, "patch", "/a") is None


def test_signature_ignores_param_names() -> None:
    assert route_signature(None, "GET", "/a/{x}", "NORMAL") == route_signature(None, "GET", "/a/{y}", "NORMAL")
    assert route_signature(None, "GET", "/a/{x}", "NORMAL") != route_signature(None, "GET", "/a/{x+}", "NORMAL")


def test_candidates_are_counted() -> None:
    r = _router((None, "ANY", "/", "SWA"), (None, "GET", "/a", "SWA"))
    found = r.lookup("h", "GET", "/a/b")
    assert found is not None and found.index == 1 and found.candidates == 2


def test_ten_thousand_apis_route_correctly() -> None:
    apis = [(f"h{i}.example.com", "GET", f"/svc{i}/{{id}}", "NORMAL") for i in range(10_000)]
    r = Router(apis)
    assert _hit(r, "GET", "/svc5000/7", host="h5000.example.com") == 5000
    assert _hit(r, "GET", "/svc5000/7", host="h5001.example.com") is None
