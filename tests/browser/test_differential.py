"""Each real engine against verdict.py on a generated matrix of exchanges (issue 3, items 2 and 3; issue 19).

Every exchange of tests/browser/matrix.py is fetched by each engine (Chromium, Firefox,
WebKit) through a recording corsgate proxy (reverse mode, one mitmdump per policy and
upstream, shared with the other browser tests and the engines; each engine's exchanges
have their own id prefix). The flows the proxy actually produced (the preflight if any,
then the actual request) are then judged by verdict.py for that engine in the page's
credentials mode, the way the browser proceeds: a failed preflight ends the exchange.
Engine and verdict.py must agree on ok/blocked and on the words of the console message
(Firefox: also its message key, and whether it warned about Authorization under `*`);
on the way, the request side (whether a preflight is sent, its Access-Control-Request-*
fields) and the headers a script can read are compared too. Where verdict.py has no
voice for an engine yet (verdict.ENGINES lacks it), only ok/blocked is compared, against
its Chromium verdict, and the reason is printed. The exchanges on which the engines
disagree with each other are printed by class. With CORSGATE_OBSERVED=1 each engine's
observations are written to tests/browser/observed-ENGINE.json (what it printed for
every exchange, with the flows), for checking a judge against without running browsers.

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

import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from addon import verdict
from addon.core.fields import split_list
from addon.verdict import Verdict
from tests.browser.matrix import DOWN, OTHER, PAGE, POLICIES, REPORT, Exchange, PolicySpec, exchanges
from tests.support.browser import ENGINES, ONE_LAUNCHER, Engine, FetchResult, PageServer
from tests.support.procs import Backend, Proxy, ProxyPool, free_port

HERE = Path(__file__).resolve().parent
BLOCKED_HEAD = "has been blocked by CORS policy: "
COOKIE = ("matrix", "1")  # set for 127.0.0.1, the host of every proxy (cookies ignore the port)
CONCURRENCY = 8  # fetches in flight per page; Chromium queues beyond 6 per proxy anyway (WebKit: one at a time)
CONSOLE_GRACE = 5.0  # engines log a CORS error just after the promise rejects
RECORDS_SETTLE = 0.3  # the recorder may write a flow just after the browser has its answer
RECORDS_TIMEOUT = 10.0
PREFIX = {"chromium": "dx", "firefox": "fx", "webkit": "wx"}  # exchange id prefix per engine
_XID = re.compile(r"xid=([a-z]x\d{4})")  # dx fx wx: the engines; nx, lx: the nginx and learn suites
FIREFOX_AUTHORIZATION_WARNING = "CORSAllowHeaderFromPreflightDeprecation"
OBSERVED_ENV = "CORSGATE_OBSERVED"
# The engines verdict.py speaks for (the per-engine judge, issue 19, adds verdict.ENGINES); the others are
# compared on ok/blocked only, against its Chromium verdict.
JUDGED = tuple(getattr(verdict, "ENGINES", ("chromium",)))

Record = dict[str, Any]


# -- running the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rig:
    """Everything an exchange needs to run: the page origins and a proxy per (policy, upstream)."""

    pages: PageServer
    proxies: Mapping[tuple[str, bool], Proxy]  # (policy name, upstream down) -> proxy

    def origin(self, which: str) -> str:
        return self.pages.origin if which == PAGE else self.pages.other_origin

    def proxy(self, exchange: Exchange) -> Proxy:
        return self.proxies[exchange.policy.name, exchange.behaviour == DOWN]

    def url(self, exchange: Exchange) -> str:
        return exchange.url(self.proxy(exchange).url, self.pages.origin)


@pytest.fixture(scope="module")
def rig(
    page_server: PageServer, proxies: ProxyPool, backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Rig:
    """One recording proxy per policy (and per policy with an unreachable upstream), started side by side."""
    # One folder for the session: pytest sets this module fixture up again when the engine changes, and the
    # same policy paths find the proxies already running in the pool.
    tmp = tmp_path_factory.getbasetemp() / "matrix-policies"
    tmp.mkdir(exist_ok=True)
    dead = f"http://127.0.0.1:{free_port()}"
    wanted: list[tuple[PolicySpec, bool]] = [(spec, False) for spec in POLICIES]
    wanted += [(spec, True) for spec in POLICIES if spec.down]
    sources = {spec.name: spec.source(tmp, page_server.origin) for spec in POLICIES}

    def args(spec: PolicySpec, down: bool) -> tuple[Any, str, Sequence[str]]:
        return sources[spec.name], f"reverse:{dead if down else backend.url}", REPORT if spec.report else ()

    # mitmdump's start-up is CPU-bound: as many starters as cores (ProxyPool.warm cannot pass `extra`).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        started = list(pool.map(lambda wanted: proxies(*args(*wanted)), wanted))
    return Rig(page_server, {(spec.name, down): proxy for (spec, down), proxy in zip(wanted, started)})


def fetch_many(rig: Rig, engine: Engine, origin: str, batch: Sequence[Exchange]) -> dict[str, FetchResult]:
    """Run a batch of exchanges in `engine` from one page at `origin` (with the proxy host's cookie), concurrently
    where the engine can; each result carries the console messages that belong to its exchange."""
    cookie = {"name": COOKIE[0], "value": COOKIE[1], "url": rig.proxy(batch[0]).url}
    # Fixed-width ids: no exchange's tag is a prefix of another's.
    results = engine.fetch_batch(
        origin, [(rig.url(e), e.init()) for e in batch], [e.tag for e in batch], cookies=[cookie],
        concurrency=CONCURRENCY, grace=CONSOLE_GRACE,
    )
    return {e.id: r for e, r in zip(batch, results)}


def records_of(rig: Rig, matrix: Sequence[Exchange]) -> dict[str, list[Record]]:
    """The recorder's flows per exchange (the shared proxies also carry other tests' and engines' flows)."""
    proxies = {id(p): p for p in map(rig.proxy, matrix)}.values()
    marker = "xid=" + matrix[0].id[:2]
    for proxy in proxies:
        # Every exchange produced at least one flow; a preflighted one maybe two.
        proxy.records(sum(rig.proxy(e) is proxy for e in matrix), RECORDS_TIMEOUT, path_contains=marker)
    time.sleep(RECORDS_SETTLE)
    out: dict[str, list[Record]] = {e.id: [] for e in matrix}
    for proxy in proxies:
        for entry in proxy.records(path_contains=marker):
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


def engine_kwargs(engine: str) -> dict[str, str]:
    """How verdict.py is asked for one engine's verdict: by name where it speaks for the engine (the calls without
    `engine=` mean Chromium, and the judge before issue 19 knows no other), its Chromium verdict otherwise."""
    return {"engine": engine} if engine in JUDGED and engine != "chromium" else {}


@dataclass
class Judgement:
    """verdict.py's view of one exchange, and every way it differs from the engine's."""

    verdict: Verdict  # the exchange's: the failed preflight's, or the actual response's
    preflight: Verdict | None  # None: no preflight was sent
    problems: list[str]
    url: str = ""  # what was fetched
    status: int | None = None  # the status of the response the verdict is about


def judge(engine: str, exchange: Exchange, records: Sequence[Record], result: FetchResult, url: str) -> Judgement:
    """Run verdict.py on the flows the proxy produced, as the browser proceeds, and compare with the engine."""
    problems: list[str] = []
    by = engine_kwargs(engine)
    preflights = [r for r in records if r["method"] == "OPTIONS"]
    actuals = [r for r in records if r["method"] != "OPTIONS"]
    expected_preflight = verdict.needs_preflight(exchange.method, exchange.request_headers())
    if len(preflights) != int(expected_preflight) or len(actuals) > 1:
        problems.append(f"flows {[r['method'] for r in records]}, verdict.needs_preflight={expected_preflight}")

    judged = preflighted = None
    status = None
    if preflights:
        preflight = preflights[0]
        fields = request_fields(preflight)
        requested = split_list(fields.get("access-control-request-headers"))
        if fields.get("access-control-request-method") != verdict.normalize_method(exchange.method):
            problems.append(f"Access-Control-Request-Method {fields.get('access-control-request-method')!r}")
        if requested != verdict.unsafe_request_headers(exchange.request_headers()):
            problems.append(f"Access-Control-Request-Headers {requested} != verdict.unsafe_request_headers")
        status = response_of(preflight)[0]
        judged = preflighted = verdict.check_preflight(
            fields.get("origin", ""), fields.get("access-control-request-method", ""), requested,
            *response_of(preflight), exchange.include, **by,
        )
        if engine == "chromium":
            _same_as_diagnose(judged, preflight, exchange, problems)
        if not judged.ok and actuals:
            problems.append(f"{engine} sent the actual request after a preflight verdict.py fails: {judged.rule}")
    if judged is None or judged.ok:
        if not actuals:
            problems.append(f"no actual request reached the proxy ({engine}'s preflight failed?)")
            return Judgement(judged or verdict.OK, preflighted, problems, url, status)
        actual = actuals[0]
        status, headers = response_of(actual)
        judged = verdict.check_actual(request_fields(actual).get("origin", ""), status, headers, exchange.include, **by)
        if engine == "chromium":
            _same_as_diagnose(judged, actual, exchange, problems)
        if judged.ok and result.ok:
            if result.status != status:
                problems.append(f"status: {engine} {result.status}, proxy {status}")
            readable = verdict.readable_response_headers(headers, exchange.include)
            if sorted(result.readable_headers) != readable:
                problems.append(f"readable headers: {engine} {sorted(result.readable_headers)}, verdict.py {readable}")

    if judged.ok != result.ok:
        problems.append(f"outcome: {engine} {'ok' if result.ok else 'blocked'}, verdict.py {judged.rule}")
    elif not result.ok and engine in JUDGED:
        printed, expected = engine_reason(result), expected_text(engine, judged, url, status)
        if engine == "webkit" and judged.rule == "header-not-allowed":
            expected = as_the_page_wrote(expected, judged.hints[0], exchange)
        if printed != expected:
            problems.append(f"reason:\n      {engine}: {printed}\n      verdict.py: {expected}")
        if engine == "firefox" and result.cors_key != verdict.message_key(judged, engine="firefox"):
            problems.append(f"message key: firefox {result.cors_key}, verdict.py {verdict.message_key(judged, engine='firefox')}")
    if engine == "firefox":
        # Firefox alone warns (a console warning, not a block) when `*` in Allow-Headers carries Authorization.
        warned = FIREFOX_AUTHORIZATION_WARNING in result.console_keys
        noted = (preflighted is not None and preflighted.ok
                 and verdict.message_key(preflighted, engine="firefox") == FIREFOX_AUTHORIZATION_WARNING)
        if warned != noted:
            problems.append(f"Authorization warning: firefox {'warned' if warned else 'silent'}, verdict.py note {noted}")
    return Judgement(judged, preflighted, problems, url, status)


def as_the_page_wrote(text: str, name: str, exchange: Exchange) -> str:
    """WebKit quotes a header name as the page spelled it; the judge, fed the preflight's
    Access-Control-Request-Headers, has it lower-cased as the wire carries it. Put the page's spelling (the
    exchange's own request header) in place of exactly that quoted name; the rest is compared as is."""
    (spelled,) = [own for own, _ in exchange.request_headers() if own.lower() == name]
    quoted = f"Request header field {name} is"
    assert quoted in text, text
    return text.replace(quoted, f"Request header field {spelled} is")


def expected_text(engine: str, judged: Verdict, url: str, status: int | None) -> str:
    """verdict.py's console text for a blocked exchange, in the engine's words."""
    if engine == "chromium":
        return verdict.console_text(judged)
    return verdict.console_text(judged, initiator="fetch", engine=engine, url=url, status=status)


def engine_reason(result: FetchResult) -> str | None:
    """What the engine printed for the block: Chromium's text after "... has been blocked by CORS policy: ",
    Firefox's whole console message, WebKit's reason line."""
    message = result.cors_error
    if message is None or result.engine != "chromium":
        return message
    return message.split(BLOCKED_HEAD, 1)[1]


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


def _actual_sent(records: Sequence[Record]) -> bool:
    return any(r["method"] != "OPTIONS" for r in records)


def cookie_sent(records: Sequence[Record]) -> bool:
    return any("=".join(COOKIE) in request_fields(r).get("cookie", "") for r in records)


# -- running and remembering each engine's run ------------------------------------------------------------


@dataclass
class EngineRun:
    """One engine's run of the matrix, judged."""

    engine: str
    matrix: list[Exchange]
    results: dict[str, FetchResult]
    records: dict[str, list[Record]]
    judged: dict[str, Judgement]
    seconds: float


_RUNS: dict[tuple[int, str], EngineRun] = {}  # (id of the rig, engine) -> its run: each engine runs the matrix once


def run(rig: Rig, engine: Engine) -> EngineRun:
    """The matrix in `engine` (once per rig; the cross-engine comparison reuses it)."""
    key = (id(rig), engine.name)
    if key not in _RUNS:
        matrix = exchanges(prefix=PREFIX[engine.name])
        started = time.monotonic()
        results: dict[str, FetchResult] = {}
        for which in (PAGE, OTHER):
            results |= fetch_many(rig, engine, rig.origin(which), [e for e in matrix if e.origin == which])
        records = records_of(rig, matrix)
        judged = {e.id: judge(engine.name, e, records[e.id], results[e.id], rig.url(e)) for e in matrix}
        _RUNS[key] = EngineRun(engine.name, matrix, results, records, judged, time.monotonic() - started)
        if os.environ.get(OBSERVED_ENV):
            write_observed(rig, _RUNS[key])
    return _RUNS[key]


def write_observed(rig: Rig, engine_run: EngineRun) -> Path:
    """What the engine printed for every exchange, with the flows the proxy saw, as tests/browser/observed-ENGINE.json.
    Ports change from run to run: the page origins and the proxy URL of each exchange are recorded with it."""
    path = HERE / f"observed-{engine_run.engine}.json"
    out = {
        "engine": engine_run.engine,
        "page_origin": rig.origin(PAGE),
        "other_origin": rig.origin(OTHER),
        "exchanges": [
            {
                "id": e.id, "policy": e.policy.name, "origin": rig.origin(e.origin), "method": e.method,
                "headers": e.headers, "credentials": e.credentials, "behaviour": e.behaviour, "url": rig.url(e),
                "ok": r.ok, "status": r.status, "error": r.error, "readable_headers": sorted(r.readable_headers),
                "console": r.console, "console_keys": r.console_keys, "cors_error": r.cors_error,
                "cors_key": r.cors_key,
                "flows": [
                    {k: f[k] for k in ("method", "request_headers", "status", "response_headers", "error")}
                    for f in engine_run.records[e.id]
                ],
            }
            for e in engine_run.matrix
            for r in [engine_run.results[e.id]]
        ],
    }
    rows = ",\n".join(json.dumps(row, ensure_ascii=False) for row in out.pop("exchanges"))
    head = json.dumps(out, ensure_ascii=False)[:-1]
    path.write_text(f'{head}, "exchanges": [\n{rows}\n]}}\n', encoding="utf-8")  # one exchange a line
    return path


def summary(engine_run: EngineRun) -> str:
    """Counts by outcome and rule, per policy, and the browser behaviours the matrix ran into."""
    matrix, judged, records = engine_run.matrix, engine_run.judged, engine_run.records
    engine = engine_run.engine
    outcomes = Counter(("ok" if judged[e.id].verdict.ok else "blocked", judged[e.id].verdict.rule) for e in matrix)
    preflights = [j.preflight for j in judged.values() if j.preflight is not None]
    lenient = sum(verdict.AUTHORIZATION_NOTE in p.notes for p in preflights if p.ok)
    unseen = sum(e.include and _actual_sent(records[e.id]) and not cookie_sent(records[e.id]) for e in matrix)
    voice = "ok/blocked and message" if engine in JUDGED else (
        "ok/blocked only: verdict.ENGINES lacks it, so its messages are not compared"
    )
    lines = [
        f"differential matrix, {engine}: {len(matrix)} exchanges in {engine_run.seconds:.1f} s, "
        f"{len(preflights)} preflighted, {sum(1 for j in judged.values() if j.problems)} disagreements ({voice})",
        *(f"  {outcome:8} {rule:28} {count:4}" for (outcome, rule), count in sorted(outcomes.items())),
        f"  Authorization passed under Access-Control-Allow-Headers: * (not the Fetch Standard): {lenient}",
        f"  include-mode requests that carried no cookie (cross-site page; the proxy cannot tell the mode): {unseen}",
        "  by policy (ok/blocked): " + ", ".join(
            f"{spec.name} {sum(judged[e.id].verdict.ok for e in matrix if e.policy is spec)}/"
            f"{sum(not judged[e.id].verdict.ok for e in matrix if e.policy is spec)}"
            for spec in POLICIES
        ),
    ]
    return "\n".join(lines)


# -- the tests -----------------------------------------------------------------------------------------


def test_engine_and_verdict_agree(rig: Rig, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    engine_run = run(rig, engine)
    matrix, judged, records = engine_run.matrix, engine_run.judged, engine_run.records
    with capsys.disabled():
        print("\n" + summary(engine_run))

    disagreements = [
        f"{e.describe()}\n    " + "\n    ".join(judged[e.id].problems) for e in matrix if judged[e.id].problems
    ]
    assert not disagreements, f"{engine.name}: {len(disagreements)} disagreements:\n" + "\n".join(disagreements)
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
    if engine.name not in JUDGED:
        pytest.skip(f"{engine.name}: ok/blocked agree on all {len(matrix)} exchanges; the message comparison "
                    f"needs verdict.py's {engine.name} voice (verdict.ENGINES = {JUDGED})")


# What each engine's message says is wrong, as one family per reason (WebKit words a missing and a wrong
# Access-Control-Allow-Origin alike, so those two are one family: "acao").
_FAMILY = {"acao-missing": "acao", "acao-mismatch": "acao"}
FIREFOX_KEYS = {
    "CORSMissingAllowOrigin2": "acao", "CORSAllowOriginNotMatchingOrigin": "acao",
    "CORSMultipleAllowOriginNotAllowed": "acao-multiple", "CORSNotSupportingCredentials": "acao-wildcard-credentials",
    "CORSMissingAllowCredentials": "acac-not-true", "CORSMethodNotFound": "method-not-allowed",
    "CORSInvalidAllowMethod": "method-not-allowed", "CORSMissingAllowHeaderFromPreflight2": "header-not-allowed",
    "CORSInvalidAllowHeader": "header-not-allowed", "CORSPreflightDidNotSucceed3": "preflight-status",
}
WEBKIT_REASONS = [
    ("is not allowed by Access-Control-Allow-Origin", "acao"),
    ("cannot contain more than one origin", "acao-multiple"),
    ("Cannot use wildcard in Access-Control-Allow-Origin", "acao-wildcard-credentials"),
    ("Access-Control-Allow-Credentials is not", "acac-not-true"),
    ("is not allowed by Access-Control-Allow-Methods", "method-not-allowed"),
    ("is not allowed by Access-Control-Allow-Headers", "header-not-allowed"),
    ("Preflight response is not successful", "preflight-status"),
]


def reason_family(engine_run: EngineRun, exchange: Exchange) -> str:
    """Which reason the engine itself gave for a block (Chromium's: verdict.py's rule on its flows, which the
    differential proves is the one Chromium printed)."""
    result = engine_run.results[exchange.id]
    if engine_run.engine == "firefox":
        return FIREFOX_KEYS.get(result.cors_key or "", f"key {result.cors_key}")
    if engine_run.engine == "webkit":
        reason = result.cors_error or ""
        return next((family for marker, family in WEBKIT_REASONS if marker in reason), f"text {reason!r}")
    rule = engine_run.judged[exchange.id].verdict.rule
    return _FAMILY.get(rule, rule)


def outcome_class(engine_run: EngineRun, index: int) -> str:
    """How one engine ended exchange #index: ok, or blocked and for which reason (in its own message), plus
    whether it sent a preflight."""
    exchange = engine_run.matrix[index]
    sent = "preflight" if engine_run.judged[exchange.id].preflight is not None else "no preflight"
    outcome = "ok" if engine_run.results[exchange.id].ok else f"blocked ({reason_family(engine_run, exchange)})"
    return f"{outcome}, {sent}"


def test_engines_disagree_by_class(
    engine_pool: Any, launcher: tuple[str, ...] | None, request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The exchanges of the matrix on which the engines disagree with each other, listed by class: what users
    cannot easily find out. Every engine that runs here takes part (its run of the matrix is reused)."""
    if launcher is not None:
        pytest.skip(f"cross-engine list: {ONE_LAUNCHER}")
    rig: Rig = request.getfixturevalue("rig")
    runs: dict[str, EngineRun] = {}
    for name in ENGINES:
        try:
            engine = request.getfixturevalue("browser_harness") if name == "chromium" else engine_pool.get(name)
        except pytest.skip.Exception as skipped:
            print(f"{name} takes no part: {skipped}")
            continue
        runs[name] = run(rig, engine)
    if len(runs) < 2:
        pytest.skip(f"fewer than two engines ran here: {sorted(runs)}")
    first = next(iter(runs.values()))
    classes: dict[tuple[tuple[str, str], ...], list[str]] = defaultdict(list)
    for index, exchange in enumerate(first.matrix):
        seen = tuple((name, outcome_class(r, index)) for name, r in runs.items())
        if len({c for _, c in seen}) > 1:
            classes[seen].append(exchange.describe().split(" ", 1)[1])
    lines = [f"cross-engine differences over {len(first.matrix)} exchanges ({', '.join(runs)}): "
             f"{sum(map(len, classes.values()))} exchanges in {len(classes)} classes"]
    for seen, described in sorted(classes.items(), key=lambda item: -len(item[1])):
        lines.append("  " + "; ".join(f"{name}: {c}" for name, c in seen) + f" -- {len(described)} exchanges, e.g.")
        lines += [f"      {d}" for d in described[:3]]
    lines += wording_by_rule(runs)
    warned = {name: sum(FIREFOX_AUTHORIZATION_WARNING in res.console_keys for res in r.results.values())
              for name, r in runs.items()}
    lines.append(f"  console warnings on allowed exchanges (Authorization under Allow-Headers: *): {warned}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # Every engine judged every exchange it ran; the lists above are the finding, not a failure.
    assert all(len(r.judged) == len(first.matrix) for r in runs.values())


_URL = re.compile(r"http://(?:127\.0\.0\.1|localhost):\d+/\S*?(?=[’'\s]|\.?$|\. )")
_ORIGIN = re.compile(r"http://(?:127\.0\.0\.1|localhost):\d+")
_STATUS = re.compile(r"Status code: \d+")


def normalised(message: str) -> str:
    """A console message with the run's URLs, origins and status codes replaced, so templates compare."""
    return _STATUS.sub("Status code: N", _ORIGIN.sub("ORIGIN", _URL.sub("URL", message)))


def wording_by_rule(runs: Mapping[str, EngineRun]) -> list[str]:
    """Same block, different words: per rule (verdict.py's, on Chromium's flows), each engine's message templates."""
    words: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name, engine_run in runs.items():
        for exchange in engine_run.matrix:
            result, judgement = engine_run.results[exchange.id], engine_run.judged[exchange.id]
            reason = engine_reason(result)
            if not result.ok and reason is not None:
                key = f"[{result.cors_key}] " if result.cors_key else ""
                words[judgement.verdict.rule][name].add(key + normalised(reason))
    lines = ["  the same blocks in each engine's words (per rule; URL, ORIGIN and N stand for the run's values):"]
    for rule, by_engine in sorted(words.items()):
        lines.append(f"    {rule}:")
        for name, texts in by_engine.items():
            lines += [f"      {name:8} {text}" for text in sorted(texts)]
    return lines


REPORT_REASONS = {
    # What each engine prints for the two report-mode cases (the CORS-less backend; measured).
    "chromium": ("No 'Access-Control-Allow-Origin' header is present on the requested resource.",
                 verdict.PREFLIGHT_PREFIX + "No 'Access-Control-Allow-Origin' header is present on the requested resource."),
    "firefox": ("(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 200.",
                "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 200."),
    "webkit": ("is not allowed by Access-Control-Allow-Origin. Status code: 200",
               "is not allowed by Access-Control-Allow-Origin. Status code: 200"),
}


def test_report_mode_logs_what_the_engine_printed(rig: Rig, engine: Engine) -> None:
    """Issue 3, item 3, and issue 19: in report mode in front of the CORS-less backend, mitmdump logs each fetch the
    engine blocks with the reason the engine printed: a simple GET (no Access-Control-Allow-Origin) and a JSON POST
    (its preflight fails), while the responses go through untouched. The log line's `blocked in Chrome: ...; in
    Firefox: ...; in Safari: ...` carries each engine's words (Firefox's with the URL the page fetched)."""
    spec = next(s for s in POLICIES if s.report)
    prefix = PREFIX[engine.name]
    cases = [
        Exchange(f"{prefix}9000", spec, PAGE, "GET", "none", "omit", "plain"),
        Exchange(f"{prefix}9001", spec, PAGE, "POST", "json", "omit", "plain"),
    ]
    results = fetch_many(rig, engine, rig.origin(PAGE), cases)
    proxy = rig.proxy(cases[0])
    printed: dict[str, str] = {}
    for exchange, expected in zip(cases, REPORT_REASONS[engine.name]):
        result = results[exchange.id]
        reason = engine_reason(result)
        assert not result.ok and reason is not None and expected in reason, result
        printed[exchange.id] = reason
        (record,) = proxy.records(1, path_contains=exchange.tag)
        assert ("X-Backend", "1") in map(tuple, record["response_headers"]), "answered by the backend"
        assert not [name for name, _ in record["response_headers"] if name.lower().startswith("access-control-")]
    if engine.name not in JUDGED:
        pytest.skip(f"{engine.name} blocked both and printed its reasons, but the mitmdump log speaks for it only "
                    f"with verdict.py's {engine.name} voice (verdict.ENGINES = {JUDGED}; issue-19-judge)")
    for exchange in cases:
        record = proxy.records(1, path_contains=exchange.tag)[-1]
        # The log line names the request and carries the reason in the engine's own words.
        wanted = [f"{record['method']} {record['url']}", printed[exchange.id]]
        deadline = time.monotonic() + RECORDS_TIMEOUT
        while not any(all(w in line for w in wanted) for line in proxy.log().splitlines()):
            assert time.monotonic() < deadline, f"no log line with {wanted!r}:\n{proxy.log()}"
            time.sleep(0.05)


def rejudge(engine_run: EngineRun, rig: Rig) -> int:
    """How many exchanges of a stored run disagree with verdict.py as it is now (patched, in the test below)."""
    return sum(
        bool(judge(engine_run.engine, e, engine_run.records[e.id], engine_run.results[e.id], rig.url(e)).problems)
        for e in engine_run.matrix
    )


def test_breaking_the_judge_is_caught_per_engine(rig: Rig, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The differential fails, for this engine, when verdict.py is broken on purpose, against what the real engine
    did (its stored run is judged again): a decision flipped (every engine), the message's words changed (each
    engine verdict.py speaks for), and for Firefox the Authorization note dropped (Firefox's warning then has
    no counterpart)."""
    engine_run = run(rig, engine)
    assert rejudge(engine_run, rig) == 0
    by = engine_kwargs(engine.name)
    real_actual, real_preflight, real_text = verdict.check_actual, verdict.check_preflight, verdict.console_text

    def lenient_actual(*args: Any, **kwargs: Any) -> Verdict:
        judged = real_actual(*args, **kwargs)
        mine = kwargs.get("engine", "chromium") == by.get("engine", "chromium")
        return verdict.OK if mine and judged.rule == "acao-missing" else judged

    with monkeypatch.context() as patched:
        patched.setattr(verdict, "check_actual", lenient_actual)
        flipped = rejudge(engine_run, rig)
    assert flipped >= 5, f"{engine.name}: a judge that lets a missing Access-Control-Allow-Origin pass went unnoticed"

    broken = {"decision (missing ACAO passes)": flipped}
    if engine.name in JUDGED:
        def reworded(judged: Verdict, *args: Any, **kwargs: Any) -> str:
            text = real_text(judged, *args, **kwargs)
            mine = kwargs.get("engine", "chromium") == engine.name
            return text.replace("Access-Control-Allow-Origin", "Access-Control-Allow-0rigin") if mine else text

        with monkeypatch.context() as patched:
            patched.setattr(verdict, "console_text", reworded)
            broken["wording (0rigin)"] = rejudge(engine_run, rig)
        assert broken["wording (0rigin)"] >= 5, f"{engine.name}: a judge with other words went unnoticed"
    if engine.name == "firefox":
        def silent_preflight(*args: Any, **kwargs: Any) -> Verdict:
            return replace(real_preflight(*args, **kwargs), notes=())

        with monkeypatch.context() as patched:
            patched.setattr(verdict, "check_preflight", silent_preflight)
            broken["Authorization note dropped"] = rejudge(engine_run, rig)
        assert broken["Authorization note dropped"] >= 1, "firefox: a judge without the Authorization note went unnoticed"
    print(f"{engine.name}: disagreements with the judge broken on purpose: {broken}")
