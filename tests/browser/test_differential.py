"""Chromium against verdict.py on a generated matrix of exchanges (issue 3, items 2 and 3).

Every exchange of tests/browser/matrix.py is fetched by real Chromium through a
recording corsgate proxy (reverse mode, one mitmdump per policy and upstream, shared
with the other browser tests). The flows the proxy actually produced (the preflight
if any, then the actual request) are then judged by verdict.py in the page's
credentials mode, the way the browser proceeds: a failed preflight ends the
exchange. Chromium and verdict.py must agree on ok/blocked and on the words of the
console message; on the way, the request side (whether a preflight is sent, its
Access-Control-Request-* fields) and the headers a script can read are compared too.

Browser behaviour this relies on, checked with Chromium 156:
- `cache: 'no-store'` makes Chromium bypass its preflight cache; every exchange also
  has its own URL (`?xid=`), so no preflight answer is ever reused;
- an upstream that cannot be reached and that the gateway does not answer for (report
  mode, or a request no API matches) gets mitmproxy's own 502, which passes no addon
  hook: the recorder sees only the error, and it is judged as a 502 without any
  header, as gateway.py judges it;
- Chromium sends the cookie of the proxy's host (127.0.0.1) with `credentials:
  'include'` only from the same-site page origin (127.0.0.1:A); from localhost:A the
  request is cross-site and the SameSite=Lax default keeps it back. The CORS checks
  depend on the credentials mode, not on the cookie, so both origins are judged by
  their mode; the cookie only shows the proxy that the mode was `include`.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from addon import verdict
from addon.core.fields import split_list
from addon.verdict import Verdict
from tests.browser.matrix import DOWN, OTHER, PAGE, POLICIES, REPORT, Exchange, PolicySpec, exchanges
from tests.support.browser import PAGE_PATH, BrowserHarness, FetchResult
from tests.support.procs import Backend, Proxy, ProxyPool, free_port

BLOCKED_HEAD = "has been blocked by CORS policy: "
COOKIE = ("matrix", "1")  # set for 127.0.0.1, the host of every proxy (cookies ignore the port)
CONCURRENCY = 8  # fetches in flight per page; Chromium queues beyond 6 per proxy anyway
FETCH_TIMEOUT_MS = 15_000
CONSOLE_GRACE = 5.0  # Chromium logs a CORS error just after the promise rejects
RECORDS_SETTLE = 0.3  # the recorder may write a flow just after the browser has its answer
RECORDS_TIMEOUT = 10.0
_XID = re.compile(r"xid=(dx\d{4})")

# Runs fetch() for every [url, init] with at most `limit` in flight; never rejects.
_FETCH_MANY_JS = """
async ([items, limit, timeout]) => {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      const [url, init] = items[i];
      try {
        const response = await fetch(url, {...init, signal: AbortSignal.timeout(timeout)});
        const headers = {};
        response.headers.forEach((value, name) => { headers[name] = value; });
        const body = await response.text();
        results[i] = {ok: true, status: response.status, type: response.type, headers, body, error: null};
      } catch (e) {
        results[i] = {ok: false, status: null, type: null, headers: {}, body: null, error: String(e)};
      }
    }
  }
  await Promise.all(Array.from({length: limit}, worker));
  return results;
}
"""

Record = dict[str, Any]


# -- running the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rig:
    """Everything an exchange needs to run: the page origins and a proxy per (policy, upstream)."""

    harness: BrowserHarness
    proxies: Mapping[tuple[str, bool], Proxy]  # (policy name, upstream down) -> proxy

    def origin(self, which: str) -> str:
        return self.harness.origin if which == PAGE else self.harness.other_origin

    def proxy(self, exchange: Exchange) -> Proxy:
        return self.proxies[exchange.policy.name, exchange.behaviour == DOWN]

    def url(self, exchange: Exchange) -> str:
        return exchange.url(self.proxy(exchange).url, self.harness.origin)


@pytest.fixture(scope="module")
def rig(
    browser_harness: BrowserHarness, proxies: ProxyPool, backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Rig:
    """One recording proxy per policy (and per policy with an unreachable upstream), started side by side."""
    tmp = tmp_path_factory.mktemp("matrix-policies")
    dead = f"http://127.0.0.1:{free_port()}"
    wanted: list[tuple[PolicySpec, bool]] = [(spec, False) for spec in POLICIES]
    wanted += [(spec, True) for spec in POLICIES if spec.down]
    sources = {spec.name: spec.source(tmp, browser_harness.origin) for spec in POLICIES}

    def args(spec: PolicySpec, down: bool) -> tuple[Any, str, Sequence[str]]:
        return sources[spec.name], f"reverse:{dead if down else backend.url}", REPORT if spec.report else ()

    # mitmdump's start-up is CPU-bound: as many starters as cores (ProxyPool.warm cannot pass `extra`).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        started = list(pool.map(lambda wanted: proxies(*args(*wanted)), wanted))
    return Rig(browser_harness, {(spec.name, down): proxy for (spec, down), proxy in zip(wanted, started)})


def fetch_many(rig: Rig, origin: str, batch: Sequence[Exchange]) -> dict[str, FetchResult]:
    """Run a batch of exchanges from one page at `origin` (one fresh context, with the proxy host's cookie),
    concurrently; each result carries the console messages that name its URL."""
    context = rig.harness.browser.new_context()
    try:
        context.add_cookies([{"name": COOKIE[0], "value": COOKIE[1], "url": rig.proxy(batch[0]).url}])
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(origin + PAGE_PATH, wait_until="load")
        raw = page.evaluate(
            _FETCH_MANY_JS, [[[rig.url(e), e.init()] for e in batch], CONCURRENCY, FETCH_TIMEOUT_MS]
        )
        rejected = {e.tag for e, r in zip(batch, raw) if not r["ok"]}
        deadline = time.monotonic() + CONSOLE_GRACE
        while time.monotonic() < deadline and not all(any(tag in m for m in console) for tag in rejected):
            page.wait_for_timeout(50)
        cookies = context.cookies()
    finally:
        context.close()
    return {
        e.id: FetchResult(
            ok=r["ok"], status=r["status"], type=r["type"], readable_headers=r["headers"], body=r["body"],
            # Fixed-width ids: no exchange's tag is a prefix of another's.
            error=r["error"], console=[m for m in console if e.tag in m], cookies=cookies,
        )
        for e, r in zip(batch, raw)
    }


def records_of(rig: Rig, matrix: Sequence[Exchange]) -> dict[str, list[Record]]:
    """The recorder's flows per exchange (the shared proxies also carry other tests' flows)."""
    proxies = {id(p): p for p in map(rig.proxy, matrix)}.values()
    for proxy in proxies:
        # Every exchange produced at least one flow; a preflighted one maybe two.
        proxy.records(sum(rig.proxy(e) is proxy for e in matrix), RECORDS_TIMEOUT, path_contains="xid=dx")
    time.sleep(RECORDS_SETTLE)
    out: dict[str, list[Record]] = {e.id: [] for e in matrix}
    for proxy in proxies:
        for entry in proxy.records(path_contains="xid=dx"):
            match = _XID.search(entry["path"])
            if match and match.group(1) in out:
                out[match.group(1)].append(entry)
    return out


# -- judging -------------------------------------------------------------------------------------------


def response_of(record: Record) -> tuple[int, list[tuple[str, str]]]:
    """Status and headers the browser got. A flow that ended in the error hook got mitmproxy's own 502,
    which no addon hook sees and which carries no CORS header (gateway.py judges it the same way)."""
    if record["status"] is None:
        return 502, []
    return record["status"], [(name, value) for name, value in record["response_headers"]]


def request_fields(record: Record) -> dict[str, str]:
    return {name.lower(): value for name, value in record["request_headers"]}


@dataclass
class Judgement:
    """verdict.py's view of one exchange, and every way it differs from Chromium's."""

    verdict: Verdict  # the exchange's: the failed preflight's, or the actual response's
    preflight: Verdict | None  # None: no preflight was sent
    problems: list[str]


def judge(exchange: Exchange, records: Sequence[Record], result: FetchResult) -> Judgement:
    """Run verdict.py on the flows the proxy produced, as the browser proceeds, and compare with Chromium."""
    problems: list[str] = []
    preflights = [r for r in records if r["method"] == "OPTIONS"]
    actuals = [r for r in records if r["method"] != "OPTIONS"]
    expected_preflight = verdict.needs_preflight(exchange.method, exchange.request_headers())
    if len(preflights) != int(expected_preflight) or len(actuals) > 1:
        problems.append(f"flows {[r['method'] for r in records]}, verdict.needs_preflight={expected_preflight}")

    judged = preflighted = None
    if preflights:
        preflight = preflights[0]
        fields = request_fields(preflight)
        requested = split_list(fields.get("access-control-request-headers"))
        if fields.get("access-control-request-method") != verdict.normalize_method(exchange.method):
            problems.append(f"Access-Control-Request-Method {fields.get('access-control-request-method')!r}")
        if requested != verdict.unsafe_request_headers(exchange.request_headers()):
            problems.append(f"Access-Control-Request-Headers {requested} != verdict.unsafe_request_headers")
        judged = preflighted = verdict.check_preflight(
            fields.get("origin", ""), fields.get("access-control-request-method", ""), requested,
            *response_of(preflight), exchange.include,
        )
        _same_as_diagnose(judged, preflight, exchange, problems)
        if not judged.ok and actuals:
            problems.append(f"Chromium sent the actual request after a preflight verdict.py fails: {judged.rule}")
    if judged is None or judged.ok:
        if not actuals:
            problems.append("no actual request reached the proxy (Chromium's preflight failed?)")
            return Judgement(judged or verdict.OK, preflighted, problems)
        actual = actuals[0]
        status, headers = response_of(actual)
        judged = verdict.check_actual(request_fields(actual).get("origin", ""), status, headers, exchange.include)
        _same_as_diagnose(judged, actual, exchange, problems)
        if judged.ok and result.ok:
            if result.status != status:
                problems.append(f"status: Chromium {result.status}, proxy {status}")
            readable = verdict.readable_response_headers(headers, exchange.include)
            if sorted(result.readable_headers) != readable:
                problems.append(f"readable headers: Chromium {sorted(result.readable_headers)}, verdict.py {readable}")

    if judged.ok != result.ok:
        problems.append(f"outcome: Chromium {'ok' if result.ok else 'blocked'}, verdict.py {judged.rule}")
    elif not result.ok:
        chromium = chromium_reason(result)
        if chromium != verdict.console_text(judged):
            problems.append(f"reason:\n      Chromium:   {chromium}\n      verdict.py: {verdict.console_text(judged)}")
    return Judgement(judged, preflighted, problems)


def _same_as_diagnose(judged: Verdict, record: Record, exchange: Exchange, problems: list[str]) -> None:
    """diagnose(), the entry gateway.py uses, must reach the same verdict from the flow alone, and the line
    it logs for a blocked flow must carry the reason even when the proxy cannot see the credentials mode."""
    diagnosis = verdict.diagnose(record["method"], record["request_headers"], *response_of(record))
    mode = diagnosis.with_credentials if exchange.include else diagnosis.without_credentials
    kind = "preflight" if record["method"] == "OPTIONS" else "actual"
    if diagnosis.kind != kind or mode != judged:
        problems.append(f"diagnose() on the {kind}: {diagnosis}")
    if kind == "actual" and diagnosis.credentials and not exchange.include:
        problems.append("diagnose() saw credentials on an omit-mode request")
    if not judged.ok and judged.message not in diagnosis.summary():
        problems.append(f"diagnosis line {diagnosis.summary()!r} lacks the reason")


def chromium_reason(result: FetchResult) -> str | None:
    """Chromium's console text after "... has been blocked by CORS policy: "."""
    message = result.cors_error
    return message.split(BLOCKED_HEAD, 1)[1] if message is not None else None


def _actual_sent(records: Sequence[Record]) -> bool:
    return any(r["method"] != "OPTIONS" for r in records)


def cookie_sent(records: Sequence[Record]) -> bool:
    return any("=".join(COOKIE) in request_fields(r).get("cookie", "") for r in records)


# -- the tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix() -> list[Exchange]:
    return exchanges()


def run(rig: Rig, matrix: Sequence[Exchange]) -> tuple[dict[str, FetchResult], dict[str, list[Record]]]:
    results: dict[str, FetchResult] = {}
    for which in (PAGE, OTHER):
        results |= fetch_many(rig, rig.origin(which), [e for e in matrix if e.origin == which])
    return results, records_of(rig, matrix)


def summary(
    matrix: Sequence[Exchange], judged: Mapping[str, Judgement], records: Mapping[str, Sequence[Record]], seconds: float
) -> str:
    """Counts by outcome and rule, per policy, and the browser behaviours the matrix ran into."""
    outcomes = Counter(("ok" if judged[e.id].verdict.ok else "blocked", judged[e.id].verdict.rule) for e in matrix)
    preflights = [j.preflight for j in judged.values() if j.preflight is not None]
    lenient = sum(verdict.AUTHORIZATION_NOTE in p.notes for p in preflights if p.ok)
    unseen = sum(e.include and _actual_sent(records[e.id]) and not cookie_sent(records[e.id]) for e in matrix)
    lines = [
        f"differential matrix: {len(matrix)} exchanges in {seconds:.1f} s, {len(preflights)} preflighted, "
        f"{sum(1 for j in judged.values() if j.problems)} disagreements",
        *(f"  {outcome:8} {rule:28} {count:4}" for (outcome, rule), count in sorted(outcomes.items())),
        f"  Authorization passed under Access-Control-Allow-Headers: * (Chromium, not the Fetch Standard): {lenient}",
        f"  include-mode requests that carried no cookie (cross-site page; the proxy cannot tell the mode): {unseen}",
        "  by policy (ok/blocked): " + ", ".join(
            f"{spec.name} {sum(judged[e.id].verdict.ok for e in matrix if e.policy is spec)}/"
            f"{sum(not judged[e.id].verdict.ok for e in matrix if e.policy is spec)}"
            for spec in POLICIES
        ),
    ]
    return "\n".join(lines)


def test_chromium_and_verdict_agree(rig: Rig, matrix: list[Exchange], capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    results, records = run(rig, matrix)
    judged = {e.id: judge(e, records[e.id], results[e.id]) for e in matrix}
    with capsys.disabled():
        print("\n" + summary(matrix, judged, records, time.monotonic() - started))

    disagreements = [
        f"{e.describe()}\n    " + "\n    ".join(judged[e.id].problems) for e in matrix if judged[e.id].problems
    ]
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements)
    # A matrix that only ever passes, or fails one way, proves little: it must reach both outcomes and
    # most of the rules a gateway can trip.
    rules = {j.verdict.rule for j in judged.values()}
    assert len(matrix) >= 150
    assert {"ok", "acao-missing", "acao-wildcard-credentials", "acac-not-true", "method-not-allowed",
            "header-not-allowed", "preflight-status"} <= rules, rules
    # `include` was really in force: the same-site page's actual requests carried the cookie, no omit-mode one did.
    sent = {e.id for e in matrix if cookie_sent(records[e.id])}
    same_site_include = {e.id for e in matrix if e.include and e.origin == PAGE and _actual_sent(records[e.id])}
    assert same_site_include and same_site_include <= sent <= {e.id for e in matrix if e.include}


def test_report_mode_logs_what_chromium_printed(rig: Rig) -> None:
    """Issue 3, item 3: in report mode in front of the CORS-less backend, mitmdump logs each fetch Chromium
    blocks with the reason Chromium printed: a simple GET (no Access-Control-Allow-Origin) and a JSON POST
    (its preflight fails), while the responses go through untouched."""
    spec = next(s for s in POLICIES if s.report)
    no_acao = "No 'Access-Control-Allow-Origin' header is present on the requested resource."
    cases = {
        Exchange("dx9000", spec, PAGE, "GET", "none", "omit", "plain"): no_acao,
        Exchange("dx9001", spec, PAGE, "POST", "json", "omit", "plain"): verdict.PREFLIGHT_PREFIX + no_acao,
    }
    results = fetch_many(rig, rig.origin(PAGE), list(cases))
    proxy = rig.proxy(next(iter(cases)))
    for exchange, expected in cases.items():
        assert chromium_reason(results[exchange.id]) == expected, results[exchange.id]
        (record,) = proxy.records(1, path_contains=exchange.tag)
        assert ("X-Backend", "1") in map(tuple, record["response_headers"]), "answered by the backend"
        assert not [name for name, _ in record["response_headers"] if name.lower().startswith("access-control-")]
        logged = f"{record['method']} {record['url']} from origin {rig.origin(PAGE)}: blocked: {expected}"
        deadline = time.monotonic() + RECORDS_TIMEOUT
        while logged not in proxy.log():
            assert time.monotonic() < deadline, f"no log line with {logged!r}:\n{proxy.log()}"
            time.sleep(0.05)
