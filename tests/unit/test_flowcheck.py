"""cors-check --flows per engine (issue 19 on issue 17's diagnosis) and with issue 18's policies.

Each engine judges the answer the gateway's own code gives (scripts/cors-check's `exchange`), so the
table says where Chrome, Firefox and Safari differ; a policy with set_resp_headers, groups with domains and
req_protocol answers a recorded exchange as the gateway would (TLS: the recorded URL's scheme).
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

from addon import verdict
from addon.core.cors import Engine
from addon.core.policy import load_policy
from addon.tools import flowcheck
from addon.tools.recordings import Recording, read
from tests.unit.test_learn import APP, API, cors_check, har_entry, make_flow, write_flows, write_har

REPO = Path(__file__).resolve().parents[2]
exchange = runpy.run_path(str(REPO / "scripts" / "cors-check"))["exchange"]


def listed_origins(tmp_path: Path) -> Path:
    """A failed preflight (500) whose Access-Control-Allow-Origin lists the origin twice: each engine stops at
    its own check (Chrome: several values, Firefox: no match, Safari: the status before anything else)."""
    return write_flows(tmp_path / "listed.flows", [
        make_flow("OPTIONS", f"{API}/me", {"Origin": APP, "Access-Control-Request-Method": "PUT"},
                  500, {"Access-Control-Allow-Origin": f"{APP}, {APP}", "Access-Control-Allow-Methods": "PUT"}),
    ])


def test_engines_that_differ_are_named_in_the_table(tmp_path: Path) -> None:
    proc = cors_check("--flows", str(listed_origins(tmp_path)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("browsers: Chrome, Firefox and Safari\n")
    row = next(line for line in proc.stdout.splitlines() if line.startswith("1 "))
    assert row.endswith("blocked in Chrome (preflight: acao-multiple); blocked in Firefox (preflight: acao-mismatch); "
                        "blocked in Safari (preflight: preflight-status)"), row
    detail = proc.stdout.split("\n[1] ", 1)[1]
    for b in verdict.ENGINES:
        judged = verdict.check_preflight(APP, "PUT", [], 500, [("Access-Control-Allow-Origin", f"{APP}, {APP}"),
                                                               ("Access-Control-Allow-Methods", "PUT")], False, engine=b)
        assert f"{verdict.NAMES[b]}: {verdict.console_text(judged, url=f'{API}/me')}" in detail, b
    assert "before 0 ok, 1 blocked, 0 unknown" in proc.stdout


def test_only_the_chosen_engines_are_judged(tmp_path: Path) -> None:
    flows = str(listed_origins(tmp_path))
    safari = cors_check("--flows", flows, "--browsers", "safari")
    assert safari.returncode == 1 and safari.stdout.startswith("browsers: Safari\n")
    assert "Chrome" not in safari.stdout and "Firefox" not in safari.stdout
    assert "blocked (preflight: preflight-status)" in safari.stdout
    bad = cors_check("--flows", flows, "--browsers", "opera")
    assert bad.returncode == 2 and "unknown browser engine 'opera'" in bad.stderr


def test_one_blocking_engine_blocks_the_column(tmp_path: Path) -> None:
    """Where one engine blocks and the others pass, the column is blocked, the exit status 1, and the cell
    says which engine blocks and which pass, as the gateway's flow comment does."""
    ok = flowcheck.Outcome("ok", "actual", "ok")
    blocked = flowcheck.Outcome("blocked", "actual", "acao-missing", "Origin ... is not allowed")
    outcomes = {"chromium": ok, "firefox": ok, "webkit": blocked}
    flows = write_flows(tmp_path / "one.flows", [make_flow("GET", f"{API}/x", {"Origin": APP}, 200, {})])
    exchange = next(iter(read([flows], Recording())))
    row = flowcheck.Row(exchange, {b: ok for b in outcomes}, outcomes, [])
    assert flowcheck.state(row.last) == "blocked" and flowcheck.failed([row])
    assert flowcheck.counts([row]) == {"exchanges": 1, "before": {"ok": 1}, "after": {"blocked": 1}, "fixed": 0,
                                       "broken": 1}
    text = flowcheck.render_text([row], Recording())
    line = next(line for line in text.splitlines() if line.startswith("1 "))
    assert line.endswith(" ok      blocked in Safari (actual: acao-missing); ok in Chrome and Firefox"), line
    assert "Safari: Origin ... is not allowed" in text and "Chrome: ok" in text
    report = json.loads(flowcheck.render_json([row], Recording()))
    assert report["exchanges"][0]["after"]["blocked_in"] == ["webkit"]
    assert not flowcheck.failed([flowcheck.Row(exchange, {"chromium": ok}, {"chromium": ok}, [])])


def test_json_has_one_entry_per_engine_per_exchange(tmp_path: Path) -> None:
    proc = cors_check("--flows", str(listed_origins(tmp_path)), "--format", "json")
    report = json.loads(proc.stdout)
    assert report["browsers"] == list(verdict.ENGINES)
    (row,) = report["exchanges"]
    assert list(row["engines"]) == list(verdict.ENGINES)
    rules = {b: e["before"]["rule"] for b, e in row["engines"].items()}
    assert rules == {"chromium": "acao-multiple", "firefox": "acao-mismatch", "webkit": "preflight-status"}
    assert row["engines"]["firefox"]["name"] == "Firefox" and row["engines"]["firefox"]["before"]["key"]
    assert row["before"]["blocked_in"] == list(verdict.ENGINES) and row["before"]["rule"] == "acao-multiple"
    assert report["summary"] == {"exchanges": 1, "before": {"blocked": 1}}


def test_each_engine_in_its_own_words(tmp_path: Path) -> None:
    """Blocked everywhere: each engine's console text (Firefox's with its key), judged with that engine."""
    flows = write_flows(tmp_path / "none.flows", [make_flow("GET", f"{API}/x", {"Origin": APP}, 200, {})])
    report = json.loads(cors_check("--flows", str(flows), "--format", "json").stdout)
    engines = report["exchanges"][0]["engines"]
    for b in verdict.ENGINES:
        expected = verdict.check_actual(APP, 200, [], False, engine=b)
        assert engines[b]["before"]["message"] == verdict.console_text(expected, url=f"{API}/x"), b
    assert engines["firefox"]["before"]["key"] == verdict.message_key(verdict.check_actual(APP, 200, [], False,
                                                                                           engine="firefox"))
    assert "key" not in engines["webkit"]["before"]


# -- issue 18's policies: the gateway's own code path ----------------------------------------------------

SHOP = "https://app.shop.example"
POLICY = f"""version: 1
gateway: {{request_id: false}}
groups:
  shop: {{domains: [api.shop.example]}}
plugins:
  cors-shop:
    type: cors
    content: {{allow_origin: "{SHOP}", allow_methods: PUT, allow_headers: Content-Type, max_age: 600,
               expose_headers: X-Build}}
  headers:
    type: set_resp_headers
    content:
      response_headers:
        - {{name: X-Build, value: "42", action: add}}
        - {{name: Server-Timing, value: x, action: delete}}
apis:
  - {{name: orders, group: shop, method: PUT, path: /orders, plugins: [cors-shop, headers], req_protocol: HTTPS}}
  - {{name: preflight, group: shop, method: OPTIONS, path: /, match_mode: SWA, plugins: [cors-shop],
     req_protocol: HTTPS, backend: {{type: mock}}}}
"""


def test_a_policy_with_groups_protocol_and_response_headers_answers_as_the_gateway(tmp_path: Path) -> None:
    policy = tmp_path / "shop.yaml"
    policy.write_text(POLICY)
    page = {"Referer": f"{SHOP}/", "Content-Type": "application/json"}
    har = write_har(tmp_path / "shop.har", [
        har_entry("PUT", "https://api.shop.example/orders", page, 200, {"Server-Timing": "db;dur=3"}),
        har_entry("PUT", "http://api.shop.example/orders", page, 200, {}),  # plain HTTP: req_protocol HTTPS
        har_entry("PUT", "https://api.other.example/orders", page, 200, {}),  # not the group's domain
    ])
    seen: list[dict[str, Any]] = []

    def answer(*args: Any) -> dict[str, Any]:
        seen.append(exchange(*args))
        return seen[-1]

    engine = Engine(load_policy(policy))
    rows = flowcheck.check(read([har], Recording()), engine, answer)
    assert [flowcheck.state(r.after) for r in rows if r.after] == ["ok", "blocked", "blocked"]
    first = rows[0].after
    assert first is not None and first["webkit"].gateway == "forward (API 'orders')"
    preflight, actual = seen[0], seen[1]
    assert preflight["gateway"]["action"] == "respond", preflight
    headers = dict(actual["response"]["headers"])
    assert headers["X-Build"] == "42" and "Server-Timing" not in headers, "the set_resp_headers edit"
    assert headers["Access-Control-Expose-Headers"] == "X-Build"
    trails = " ".join(step for report in seen[2:] for step in report["gateway"]["trail"])
    assert "req_protocol is HTTPS" in trails and "came over plain HTTP" in trails
    # The same answers as cors-check's single-request form gives for the same request.
    single = cors_check(str(policy), "--origin", SHOP, "--method", "PUT", "--url", "https://api.shop.example/orders",
                        "-H", "Content-Type: application/json", "--backend-header", "Server-Timing: db;dur=3",
                        "--format", "json")
    assert single.returncode == 0, single.stdout
    assert json.loads(single.stdout)["actual"]["response"] == json.loads(json.dumps(actual["response"]))
    table = cors_check("--flows", str(har), str(policy))
    assert table.returncode == 1 and "after 1 ok, 2 blocked" in table.stdout
