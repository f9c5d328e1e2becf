"""Routing: APIG path patterns, match modes and the precedence of DESIGN §4.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from addon.core.cors import Engine, RequestFacts
from addon.core.policy import PolicyError, parse_policy
from addon.core.routing import DOMAINS, PROTOCOL, Route, Router, parse_path, route_signature


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


# -- groups with domains, req_protocol (issue 18) -------------------------------------------------------------

def conditioned(*apis: tuple[str | None, str, str, str, tuple[str, ...], str]) -> Router:
    return Router([a[:4] for a in apis], [(a[4], a[5]) for a in apis])


def test_group_domains_restrict_an_api_to_their_hosts() -> None:
    r = conditioned((None, "GET", "/a", "NORMAL", ("api.shop.example", "shop.example"), "BOTH"))
    assert r.lookup("api.shop.example", "GET", "/a").index == 0
    assert r.lookup("SHOP.example", "GET", "/a").index == 0
    missed = r.lookup("other.example", "GET", "/a")
    assert missed is not None and missed.index == -1 and missed.missed == ((0, DOMAINS),)


def test_domain_bound_api_ranks_as_host_specific_and_misses_are_reported_only_when_better() -> None:
    r = conditioned((None, "GET", "/", "SWA", (), "BOTH"),
                    (None, "GET", "/a", "NORMAL", ("api.shop.example",), "BOTH"))
    assert r.lookup("api.shop.example", "GET", "/a").index == 1
    fallback = r.lookup("other.example", "GET", "/a")
    assert fallback.index == 0 and fallback.missed == ((1, DOMAINS),)
    assert r.lookup("other.example", "GET", "/b").missed == ()  # nothing better was passed over


@pytest.mark.parametrize(("protocol", "plain", "tls"), [("BOTH", True, True), ("HTTP", True, False),
                                                       ("HTTPS", False, True)])
def test_req_protocol(protocol: str, plain: bool, tls: bool) -> None:
    r = conditioned((None, "OPTIONS", "/", "SWA", (), protocol))
    for over_tls, matches in ((False, plain), (True, tls)):
        found = r.lookup("h", "OPTIONS", "/x", over_tls)
        if matches:
            assert found is not None and found.index == 0 and found.missed == ()
        else:
            assert found is not None and found.index == -1 and found.missed == ((0, PROTOCOL),)


def test_https_only_api_falls_back_to_a_plain_one_and_says_so() -> None:
    r = conditioned((None, "GET", "/", "SWA", (), "BOTH"), (None, "GET", "/a", "NORMAL", (), "HTTPS"))
    assert r.lookup("h", "GET", "/a", True) == Route(1, 2)
    assert r.lookup("h", "GET", "/a", False) == Route(0, 1, ((1, PROTOCOL),))


def test_host_and_domains_and_protocol_together() -> None:
    r = conditioned(("api.shop.example", "GET", "/a", "NORMAL", ("api.shop.example", "shop.example"), "HTTPS"))
    assert r.lookup("api.shop.example", "GET", "/a", True).index == 0
    assert r.lookup("shop.example", "GET", "/a", True) is None  # its own host only (host: is not a group matter)
    assert r.lookup("api.shop.example", "GET", "/a", False).missed == ((0, PROTOCOL),)


def test_policy_groups_route_through_the_engine_with_the_reason_in_the_trail() -> None:
    e = Engine(parse_policy("""version: 1
gateway: {unmatched: reject, request_id: false}
groups:
  shop: {domains: [api.shop.example]}
apis:
  - {name: secure-preflight, group: shop, method: OPTIONS, path: /, match_mode: SWA, cors: true, req_protocol: https,
     backend: {type: mock}}
  - {name: orders, group: shop, method: PUT, path: /orders, cors: true}
"""))
    pre = ("OPTIONS", "api.shop.example", "/orders", "https://app.example", "PUT")
    answered = e.decide(RequestFacts(*pre, tls=True))
    assert answered.response is not None and answered.cors is not None and answered.cors.kind == "apig-preflight"
    plain = e.decide(RequestFacts(*pre, tls=False))
    assert plain.response is not None and plain.response.status == 404
    assert any("'secure-preflight'" in s and "req_protocol is HTTPS" in s and "plain HTTP" in s for s in plain.trail)
    elsewhere = e.decide(RequestFacts("PUT", "other.example", "/orders", "https://app.example", tls=True))
    assert elsewhere.response is not None and elsewhere.response.status == 404
    assert any("'orders'" in s and "bound to api.shop.example" in s and "'other.example'" in s
               for s in elsewhere.trail), elsewhere.trail


def test_cors_check_takes_an_https_url_as_a_request_over_tls(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    policy = tmp_path / "p.yaml"
    policy.write_text("""version: 1
gateway: {request_id: false}
apis:
  - {name: put, method: PUT, path: /a, cors: true}
  - {name: secure-preflight, method: OPTIONS, path: /, match_mode: SWA, cors: true, req_protocol: HTTPS,
     backend: {type: mock}}
""")

    def preflight(url: str) -> dict:
        done = subprocess.run([sys.executable, str(repo / "scripts" / "cors-check"), str(policy), "--origin",
                               "https://app.example", "--method", "PUT", "--url", url, "--format", "json"],
                              cwd=repo, capture_output=True, text=True, timeout=60, check=False)
        return json.loads(done.stdout)["preflight"]

    assert preflight("https://api.example/a")["gateway"]["api"] == "secure-preflight"
    plain = preflight("http://api.example/a")
    assert plain["gateway"]["api"] is None and not plain["verdict"]["ok"]
    assert any("req_protocol is HTTPS" in step for step in plain["gateway"]["trail"])


def test_policy_refuses_a_host_outside_its_groups_domains_and_bad_domains() -> None:
    text = """version: 1
groups:
  shop: {domains: [api.shop.example]}
apis:
  - {name: a, group: shop, method: GET, path: /a, host: other.example}
"""
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    assert "p.yaml:5: apis[0].host: host 'other.example' is not a domain of group 'shop'" in str(err.value)
    with pytest.raises(PolicyError, match="groups.shop.domains: 'https://api.shop.example' is not a host name"):
        parse_policy(text.replace("[api.shop.example]", "['https://api.shop.example']"), "p.yaml")
    loaded = parse_policy(text.replace("other.example", "API.shop.example").replace("[api.shop.example]",
                                                                                 "[API.Shop.Example.]"))
    assert loaded.policy.groups["shop"].domains == ("api.shop.example",)
    assert parse_policy(text.replace("host: other.example", "req_protocol: https")).policy.apis[0].req_protocol == "HTTPS"
