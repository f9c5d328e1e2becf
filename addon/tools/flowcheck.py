"""Recorded exchanges diagnosed offline (`cors-check --flows INPUT [POLICY]`): as recorded, and before -> after.

Before: each cross-origin exchange as the recording has it, judged by the browser's checks (addon.verdict)
on the recorded preflight and response. After: what corsgate with POLICY would have answered (the gateway's
own code, handed in by scripts/cors-check as `answer`, since tools never import the glue) with the upstream
answering as recorded, and the browser's verdict on that. Judged in the credentials mode the recording
shows (cookies sent: include). Every judgement goes through `_preflight`/`_actual`, once per browser engine
chosen (`--browsers`, default BROWSERS: Chrome, Firefox and Safari); the gateway answers once per exchange
and each engine judges that answer. Where the engines agree a column reads as one verdict; where they
differ it says which engine blocks and why ("blocked in Safari (...); ok in Chrome and Firefox"), as the
gateway's flow comment does.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from addon import verdict
from addon.core.cors import Engine
from addon.core.policy import PolicyError, load_policy
from addon.tools.recordings import Exchange, Headers, Recording, RecordingError, read

BROWSERS = verdict.ENGINES  # the judge's engines, the default choice
Pairs = list[tuple[str, str]]
# scripts/cors-check's `exchange`: (engine, method, url, headers, (upstream status, headers)) -> its report dict.
Answer = Callable[[Engine, str, str, Pairs, tuple[int, Pairs]], dict[str, Any]]
# What the upstream is taken to answer where the recording does not show it: a CORS-less backend's 200.
ASSUMED_UPSTREAM: tuple[int, Pairs] = (200, [])
_ENGINE_HEADERS = frozenset({"authorization", "content-type"})  # of the page's, what the gateway reads (and shows)


@dataclass
class Outcome:
    """One column of the table: ok, blocked (with the browser's words) or unknown (with what is missing)."""

    state: str  # "ok" | "blocked" | "unknown"
    stage: str = ""  # "preflight" | "actual" | ""
    rule: str = ""
    message: str = ""  # the console text, or why the recording cannot tell
    notes: list[str] = field(default_factory=list)
    gateway: str = ""  # after: what corsgate did
    key: str = ""  # Firefox's message key

    @property
    def short(self) -> str:
        if self.state == "blocked":
            return f"blocked ({self.stage}: {self.rule})"
        return self.state

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "stage": self.stage, "rule": self.rule, "message": self.message,
                "notes": self.notes, **({"gateway": self.gateway} if self.gateway else {}),
                **({"key": self.key} if self.key else {})}


Outcomes = dict[str, Outcome]  # per browser engine, in the order chosen


@dataclass
class Row:
    exchange: Exchange
    before: Outcomes
    after: Outcomes | None
    shows: list[str]  # what the recording can and cannot show about it

    @property
    def last(self) -> Outcomes:
        return self.after if self.after is not None else self.before


def state(outcomes: Outcomes) -> str:
    """One column's state over the engines: blocked if any engine blocks, else unknown if any cannot tell."""
    states = {o.state for o in outcomes.values()}
    return "blocked" if "blocked" in states else "unknown" if "unknown" in states else "ok"


def check(exchanges: Iterable[Exchange], engine: Engine | None = None, answer: Answer | None = None,
          browsers: Sequence[str] = BROWSERS) -> list[Row]:
    """Judge every exchange as recorded and, with an engine (and the gateway's `answer`), after the policy,
    for each of `browsers`."""
    rows = []
    for exchange in exchanges:
        after = _after(exchange, engine, answer, browsers) if engine is not None and answer is not None else None
        rows.append(Row(exchange, _before(exchange, browsers), after, _shows(exchange)))
    return rows


# -- judging -------------------------------------------------------------------------------------------


def _preflight(origin: str, method: str, names: Sequence[str], status: int, headers: Sequence[tuple[str, str]],
               credentials: bool, browser: str) -> verdict.Verdict:
    return verdict.check_preflight(origin, method, list(names), status, list(headers), credentials, engine=browser)


def _actual(origin: str, status: int, headers: Sequence[tuple[str, str]], credentials: bool,
            browser: str) -> verdict.Verdict:
    return verdict.check_actual(origin, status, list(headers), credentials, engine=browser)


def _outcome(v: verdict.Verdict, stage: str, url: str, gateway: str = "",
             other: verdict.Verdict | None = None) -> Outcome:
    """An outcome from one engine's verdict, in its console's words; `other`, the verdict in credentials mode
    `include` where the recording cannot show the mode (no cookies), becomes a note when it differs."""
    notes = list(v.notes)
    if other is not None and (other.ok, other.rule) != (v.ok, v.rule):
        said = "ok" if other.ok else f"blocked: {verdict.console_text(other, url=url)}"
        notes.append(f"no cookies recorded, so judged as credentials 'omit'; with credentials 'include': {said}")
    if v.ok:
        return Outcome("ok", stage, "ok", "", notes, gateway)
    return Outcome("blocked", stage, v.rule, verdict.console_text(v, url=url), notes, gateway,
                   verdict.message_key(v, v.engine))


def _both(judge: Callable[[bool], verdict.Verdict], cookies: bool) -> tuple[verdict.Verdict, verdict.Verdict | None]:
    """The verdict in the mode the recording shows, and in `include` too where it shows none."""
    return judge(cookies), (None if cookies else judge(True))


def _before(exchange: Exchange, browsers: Sequence[str]) -> Outcomes:
    credentials, origin, url = exchange.cookies, exchange.origin, exchange.url
    out: Outcomes = {}
    pre = exchange.preflight
    if pre is not None:
        if pre.status is None:
            unknown = Outcome("unknown", "preflight", "", "the preflight has no recorded response"
                              + (f" ({pre.where}: {exchange.error})" if exchange.error else ""))
            return dict.fromkeys(browsers, unknown)
        for b in browsers:
            judged, other = _both(lambda mode: _preflight(origin, pre.request_method, pre.request_headers,
                                                          pre.status, pre.response_headers, mode, b), credentials)
            if not judged.ok or not exchange.sent:
                out[b] = _outcome(judged, "preflight", url, other=other)
    if len(out) == len(browsers):
        return out
    if exchange.status is None:
        unknown = Outcome("unknown", "actual", "", "failed in the browser with no recorded response"
                          + (f" ({exchange.error})" if exchange.error else ""))
        return {b: out.get(b, unknown) for b in browsers}
    status, headers = exchange.status, exchange.response_headers
    for b in browsers:
        if b not in out:
            judged, other = _both(lambda mode: _actual(origin, status, headers, mode, b), credentials)
            out[b] = _outcome(judged, "actual", url, other=other)
    return {b: out[b] for b in browsers}


def _after(exchange: Exchange, engine: Engine, answer: Answer, browsers: Sequence[str]) -> Outcomes:
    """What each engine concludes about corsgate's answers: the gateway answers once, every engine judges."""
    credentials, origin, method, url = exchange.cookies, exchange.origin, exchange.method, exchange.url
    names = list(exchange.unsafe_headers)
    notes: list[str] = []
    out: Outcomes = {}
    try:
        if exchange.preflight is not None or method not in ("GET", "HEAD", "POST") or names:
            sent = [("Origin", origin), ("Access-Control-Request-Method", method)]
            if names:
                sent.append(("Access-Control-Request-Headers", ",".join(names)))
            pre = exchange.preflight
            upstream = _upstream(pre.status if pre else None, pre.upstream_headers if pre else None, notes,
                                 "preflight")
            report = answer(engine, "OPTIONS", url, _latin1(sent), upstream)
            status, headers = _response(report)
            for b in browsers:
                judged, other = _both(lambda mode: _preflight(origin, method, names, status, headers, mode, b),
                                      credentials)
                if not judged.ok:
                    out[b] = _with_notes(_outcome(judged, "preflight", url, _gateway(report), other), notes)
        if len(out) < len(browsers):
            page = [(k, v) for k, v in exchange.request_headers if k.lower() in _ENGINE_HEADERS]
            upstream = _upstream(exchange.status, exchange.upstream_headers, notes, "response")
            report = answer(engine, method, url, _latin1([("Origin", origin), *page]), upstream)
            status, headers = _response(report)
            for b in browsers:
                if b not in out:
                    judged, other = _both(lambda mode: _actual(origin, status, headers, mode, b), credentials)
                    out[b] = _with_notes(_outcome(judged, "actual", url, _gateway(report), other), notes)
    except Exception as e:  # one exchange the gateway's code cannot take (a URL it refuses): said, never a crash
        said = f"cannot be replayed through the policy: {' '.join(str(e).split())[:160]}"
        return dict.fromkeys(browsers, Outcome("unknown", "", "", said))
    return {b: out[b] for b in browsers}


def _upstream(status: int | None, headers: Headers | None, notes: list[str], what: str) -> tuple[int, Pairs]:
    if status is None or headers is None:
        notes.append(f"the upstream's {what} is not in the recording: taken as a CORS-less 200")
        return ASSUMED_UPSTREAM
    return status, _latin1(headers)


def _with_notes(outcome: Outcome, notes: list[str]) -> Outcome:
    outcome.notes[:0] = notes  # the exchange's notes (what the recording lacks), each engine's own after them
    return outcome


def _response(report: dict[str, Any]) -> tuple[int, Pairs]:
    return report["response"]["status"], report["response"]["headers"]


def _gateway(report: dict[str, Any]) -> str:
    gateway = report["gateway"]
    return gateway["action"] + (f" (API {gateway['api']!r})" if gateway["api"] else "")


def _latin1(pairs: Iterable[tuple[str, str]]) -> Pairs:
    """Header text the gateway's request builder takes (one byte per character)."""
    return [(k.encode("latin-1", "replace").decode("latin-1"), v.encode("latin-1", "replace").decode("latin-1"))
            for k, v in pairs]


def _shows(exchange: Exchange) -> list[str]:
    """What the recording can and cannot show about an exchange (said where it is thin)."""
    out = []
    if exchange.origin_from != "Origin":
        out.append(f"no Origin header recorded: the page's origin {exchange.origin} is taken from the "
                   f"{exchange.origin_from}")
    if exchange.status is None and exchange.sent:
        out.append("no response recorded: the browser's reason (which CORS check failed, or a network error) and "
                   "the upstream's headers cannot be told")
    names = exchange.unsafe_headers
    needed = exchange.method not in ("GET", "HEAD", "POST") or bool(names)
    if exchange.preflight is None and needed:
        why = ", ".join([f"method {exchange.method}"] * (exchange.method not in ("GET", "HEAD", "POST"))
                        + [f"request headers {', '.join(names)}"] * bool(names))
        out.append(f"needs a preflight ({why}); none is in the recording")
    if not exchange.sent:
        out.append("the actual request was not sent (its preflight failed) or not recorded")
    if not exchange.cookies and (exchange.status is None or not exchange.sent):
        out.append("the credentials mode cannot be told (no request with cookies recorded)")
    return out


# -- output --------------------------------------------------------------------------------------------


def counts(rows: Sequence[Row]) -> dict[str, Any]:
    """Exchanges per state of each column, over the chosen engines (blocked: in any of them)."""
    before = Counter(state(r.before) for r in rows)
    out: dict[str, Any] = {"exchanges": len(rows), "before": dict(before)}
    if rows and rows[0].after is not None:
        out["after"] = dict(Counter(state(r.last) for r in rows))
        out["fixed"] = sum(state(r.before) != "ok" and state(r.last) == "ok" for r in rows)
        out["broken"] = sum(state(r.before) == "ok" and state(r.last) != "ok" for r in rows)
    return out


def failed(rows: Sequence[Row]) -> bool:
    """Is any exchange blocked in a chosen engine (or failed for a reason the recording cannot show) in the
    last column?"""
    return any(state(r.last) != "ok" for r in rows)


def summary_line(rows: Sequence[Row], recording: Recording) -> str:
    c = counts(rows)
    text = f"{c['exchanges']} cross-origin exchange(s): before " + _states(c["before"])
    if "after" in c:
        text += f"; after {_states(c['after'])} ({c['fixed']} fixed, {c['broken']} broken by the policy)"
    skipped = recording.skipped
    if skipped:
        text += "; not diagnosed: " + ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
    return text


def _states(counter: dict[str, int]) -> str:
    return ", ".join(f"{counter.get(s, 0)} {s}" for s in ("ok", "blocked", "unknown"))


def _groups(outcomes: Outcomes) -> list[tuple[str, list[str]]]:
    """The engines by their short verdict, blocking ones first, each group in the order chosen."""
    groups: dict[str, list[str]] = {}
    for b, o in outcomes.items():
        groups.setdefault(o.short, []).append(b)
    return sorted(groups.items(), key=lambda item: item[0] == "ok")


def _cell(outcomes: Outcomes) -> str:
    """One table cell: the verdict where the engines agree, else which engines block and which pass."""
    groups = _groups(outcomes)
    if len(groups) == 1:
        return groups[0][0]
    return "; ".join(f"{_state_word(short)} in {verdict.engine_names(bs)}{_rest(short)}" for short, bs in groups)


def _state_word(short: str) -> str:
    return short.split(" ", 1)[0]


def _rest(short: str) -> str:
    return short[len(_state_word(short)):]


def render_text(rows: Sequence[Row], recording: Recording, browsers: Sequence[str] = BROWSERS) -> str:
    with_after = bool(rows) and rows[0].after is not None
    head = ["#", "where", "request", "before"] + (["after"] if with_after else [])
    table = [head]
    for n, row in enumerate(rows, 1):
        e = row.exchange
        request = f"{e.method} {e.url} from {e.origin}" + (" (cookies)" if e.cookies else "")
        table.append([str(n), e.where, request, _cell(row.before)] + ([_cell(row.last)] if with_after else []))
    widths = [min(max(len(r[i]) for r in table), 70) for i in range(len(head))]
    lines = [f"browsers: {verdict.engine_names(browsers)}", ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    details = []
    for n, row in enumerate(rows, 1):
        said = [f"  before: {_said(row.before)}"]
        if row.after is not None:
            said.append(f"  after:  {_said(row.after)}")
        said += [f"  recording: {text}" for text in row.shows]
        if state(row.before) != "ok" or (row.after is not None and state(row.after) != "ok") or row.shows:
            details += [f"[{n}] {row.exchange.where}", *said]
    for where in recording.broken:
        details.append(f"skipped {where}")
    body = "\n".join(lines + ([""] + details if details else []))
    return body + "\n\n" + summary_line(rows, recording)


def _said(outcomes: Outcomes) -> str:
    """A column's detail: one verdict where every engine says the same, else the engines grouped by verdict
    and each engine's own words under it."""
    first = next(iter(outcomes.values()))
    if all(o == first for o in outcomes.values()):
        return _words(first)
    text = _cell(outcomes) + (f" [corsgate: {first.gateway}]" if first.gateway else "")
    common = [note for note in first.notes if all(note in o.notes for o in outcomes.values())]
    for b, o in outcomes.items():
        words = o.message or o.state
        text += f"\n          {verdict.NAMES[b]}: {words}" + (f" [{o.key}]" if o.key else "")
        text += "".join(f"\n            note: {note}" for note in o.notes if note not in common)
    return text + "".join(f"\n          note: {note}" for note in common)


def _words(outcome: Outcome) -> str:
    text = outcome.short if outcome.state != "unknown" else "unknown"
    if outcome.message:
        text += f": {outcome.message}"
    if outcome.gateway:
        text += f" [corsgate: {outcome.gateway}]"
    return text + "".join(f"\n          note: {note}" for note in outcome.notes)


def _lead(outcomes: Outcomes) -> dict[str, Any]:
    """The column as one entry: the first blocking engine's outcome (with `blocked_in`), else the first's."""
    blocking = [b for b, o in outcomes.items() if o.state != "ok"]
    lead = outcomes[(blocking or list(outcomes))[0]].as_dict()
    if any(o.state == "blocked" for o in outcomes.values()):
        lead["blocked_in"] = [b for b, o in outcomes.items() if o.state == "blocked"]
    return lead


def render_json(rows: Sequence[Row], recording: Recording, browsers: Sequence[str] = BROWSERS) -> str:
    def row_dict(n: int, row: Row) -> dict[str, Any]:
        e = row.exchange
        out: dict[str, Any] = {
            "n": n, "where": e.where, "origin": e.origin, "origin_from": e.origin_from, "method": e.method,
            "url": e.url, "cookies": e.cookies, "preflight_recorded": e.preflight is not None,
            "status": e.status, "browsers": list(browsers), "before": _lead(row.before), "recording": row.shows,
        }
        if row.after is not None:
            out["after"] = _lead(row.after)
        out["engines"] = {
            b: {"name": verdict.NAMES[b], "before": row.before[b].as_dict(),
                **({"after": row.after[b].as_dict()} if row.after is not None else {})}
            for b in browsers
        }
        return out

    report = {
        "files": recording.files, "browsers": list(browsers),
        "exchanges": [row_dict(n, r) for n, r in enumerate(rows, 1)],
        "summary": counts(rows), "not_diagnosed": dict(recording.skipped), "broken": recording.broken,
    }
    return json.dumps(report, indent=2)


def run(inputs: Sequence[str], policy: str | None, fmt: str, answer: Answer,
        browsers: Sequence[str] = BROWSERS) -> int:
    """cors-check --flows: print the report; 0 when every exchange is ok for every chosen engine in the last
    column, 1 otherwise or on a file that is not a recording; 2 on a policy that does not load, as
    cors-check's other form)."""
    engine = None
    if policy is not None:
        try:
            engine = Engine(load_policy(policy))
        except PolicyError as e:
            print(e, file=sys.stderr)
            return 2
    recording = Recording()
    try:
        rows = check(read(inputs, recording), engine, answer, browsers)
    except RecordingError as e:
        print(f"cors-check: {e}", file=sys.stderr)
        return 1
    print(render_json(rows, recording, browsers) if fmt == "json" else render_text(rows, recording, browsers))
    return 1 if failed(rows) else 0
