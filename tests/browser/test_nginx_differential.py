"""The browser differential through real nginx (issue 16, item 1).

The differential matrix (tests/browser/matrix.py: every policy, every exchange) runs twice with real
Chromium deciding: through corsgate, and through real nginx running `cors-export nginx --standalone` of
the same policy in front of the same backend (and, for the `down` rows, in front of the same unreachable
port). A bare recording mitmdump sits in front of nginx only to record what nginx answered; it changes
nothing. For every exchange the two runs must give the same browser outcome and console message, the same
status, the same Access-Control-* fields and values, the same Vary tokens and an X-Request-Id (32
lowercase hex) exactly where corsgate sends one. A difference counts as documented only where the
export warned about it (README "From corsgate to production"): then it is listed, not failed.

The matrix's `report` policy is corsgate's diagnosis-only mode (cors_mode=report), not a policy: there is
nothing to export, so it runs only through corsgate (test_differential.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.matrix import OTHER, PAGE, POLICIES, Exchange, PolicySpec, exchanges
from tests.browser.test_differential import (  # noqa: F401 - rig is a fixture
    Record, Rig, engine_reason, fetch_many, judge, records_of, response_of, rig,
)
from tests.support.browser import BrowserHarness, FetchResult, PageServer
from tests.support.nginx import Nginx, cors_view, differences, unavailable_reason, warned_fields
from tests.support.procs import Backend, ProxyPool, free_port

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"nginx differential: {REASON}")
EXPORTED = tuple(spec for spec in POLICIES if not spec.report)
# The exporter's warning that makes a lower-case method (fetch's `patch`) a documented difference: nginx
# refuses such a request line with 400 before any CORS header.
LOWER_CASE_METHODS = "admits methods that are not upper-case"


@pytest.fixture(scope="module", autouse=True)
def _mitmdump_only(launcher: tuple[str, ...] | None) -> None:
    """nginx is compared with corsgate once, under mitmdump (the launchers' sameness is test_differential's);
    autouse, so the lean launcher's run skips before any proxy starts."""
    if launcher is not None:
        pytest.skip("the nginx differential runs against corsgate under mitmdump only")


@dataclass
class NginxRig:
    """nginx per (policy, upstream down), each behind a recording bare mitmdump, and each export's warnings."""

    rig: Rig
    warnings: Mapping[str, str]  # policy name -> the export's stderr


@pytest.fixture(scope="module")
def nginx_rig(
    page_server: PageServer, proxies: ProxyPool, backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxRig]:
    tmp = tmp_path_factory.mktemp("nginx-matrix-policies")
    dead = f"http://127.0.0.1:{free_port()}"
    wanted = [(spec, False) for spec in EXPORTED] + [(spec, True) for spec in EXPORTED if spec.down]
    started: dict[tuple[str, bool], Nginx] = {}
    try:
        for spec, down in wanted:
            started[spec.name, down] = Nginx(spec.source(tmp, page_server.origin), dead if down else backend.url)
        recorders = {key: proxies(None, f"reverse:{server.url}", addon=False) for key, server in started.items()}
        yield NginxRig(Rig(page_server, recorders), {name: server.warnings for (name, _), server in started.items()})
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def exported_matrix() -> list[Exchange]:
    # Its own id prefix: the corsgate proxies are shared with test_differential's runs, which record theirs.
    return [e for e in exchanges(prefix="nx") if not e.policy.report]


def run(
    rig: Rig, harness: BrowserHarness, matrix: Sequence[Exchange]
) -> tuple[dict[str, FetchResult], dict[str, list[Record]]]:
    """The matrix in Chromium through `rig`'s proxies: what the page saw, and what the proxies recorded."""
    results: dict[str, FetchResult] = {}
    for which in (PAGE, OTHER):
        results |= fetch_many(rig, harness, rig.origin(which), [e for e in matrix if e.origin == which])
    return results, records_of(rig, matrix)


def compare(
    exchange: Exchange, warnings: str, ours: tuple[FetchResult, Sequence[Record]],
    theirs: tuple[FetchResult, Sequence[Record]],
) -> tuple[list[str], list[str]]:
    """(disagreements, documented differences) between the corsgate run and the nginx run of one exchange."""
    (a, a_records), (b, b_records) = ours, theirs
    found: list[str] = []
    excused: list[str] = []  # differences in a field the export warned about (warned_fields)
    if a.ok != b.ok:
        found.append(f"outcome: corsgate {'ok' if a.ok else 'blocked'}, nginx {'ok' if b.ok else 'blocked'}")
    elif not a.ok and engine_reason(a) != engine_reason(b):
        found.append(f"console: corsgate {engine_reason(a)!r}, nginx {engine_reason(b)!r}")
    if a.ok and b.ok and a.status != b.status:
        found.append(f"status seen by the page: corsgate {a.status}, nginx {b.status}")
    for kind, wanted in (("preflight", "OPTIONS"), ("actual", None)):
        mine = [r for r in a_records if (r["method"] == wanted) == (wanted is not None)]
        other = [r for r in b_records if (r["method"] == wanted) == (wanted is not None)]
        if len(mine) != len(other):
            found.append(f"{kind}: corsgate {len(mine)} sent, nginx {len(other)}")
            continue
        for x, y in zip(mine, other):
            views = cors_view(*response_of(x)), cors_view(*response_of(y))
            counted = differences(*views, warned_fields(warnings))
            found += [f"{kind} {d}" for d in counted]
            excused += [f"{kind} {d}" for d in differences(*views) if d not in counted]
    if found and exchange.method == "patch" and LOWER_CASE_METHODS in warnings:
        return [], found + excused
    return found, excused


def test_nginx_answers_as_corsgate_in_chromium(
    rig: Rig, nginx_rig: NginxRig, exported_matrix: list[Exchange], browser_harness: BrowserHarness,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    ours = run(rig, browser_harness, exported_matrix)
    theirs = run(nginx_rig.rig, browser_harness, exported_matrix)
    disagreements: list[str] = []
    documented: list[str] = []
    outcomes: Counter[tuple[str, str]] = Counter()
    nginx_judged = 0
    for e in exported_matrix:
        bad, excused = compare(e, nginx_rig.warnings[e.policy.name], (ours[0][e.id], ours[1][e.id]),
                               (theirs[0][e.id], theirs[1][e.id]))
        if bad:
            disagreements.append(f"{e.describe()}\n    " + "\n    ".join(bad))
        if excused:
            documented.append(f"{e.describe()}: " + "; ".join(excused))
        verdict = judge("chromium", e, theirs[1][e.id], theirs[0][e.id], nginx_rig.rig.url(e))  # Chromium vs verdict.py on nginx's answers
        nginx_judged += not verdict.problems
        outcomes["ok" if theirs[0][e.id].ok else "blocked", verdict.verdict.rule] += 1
    preflighted = sum(any(r["method"] == "OPTIONS" for r in theirs[1][e.id]) for e in exported_matrix)
    lines = [
        f"nginx differential: {len(exported_matrix)} exchanges in {time.monotonic() - started:.1f} s, "
        f"{preflighted} preflighted, {len(disagreements)} disagreements with corsgate, "
        f"{len(documented)} documented nginx limitations (warned by the exporter)",
        *(f"  {outcome:8} {rule:28} {count:4}" for (outcome, rule), count in sorted(outcomes.items())),
        f"  Chromium and verdict.py agree on nginx's answers: {nginx_judged}/{len(exported_matrix)}",
        "  by policy (ok/blocked through nginx): " + ", ".join(
            f"{spec.name} {sum(theirs[0][e.id].ok for e in exported_matrix if e.policy is spec)}/"
            f"{sum(not theirs[0][e.id].ok for e in exported_matrix if e.policy is spec)}" for spec in EXPORTED
        ),
        *(f"  documented: {d}" for d in documented),
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements)
    assert len(exported_matrix) >= 150
    assert {o for o, _ in outcomes} == {"ok", "blocked"}
