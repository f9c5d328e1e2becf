"""cors-learn and cors-check --flows on recordings built here (issue 17): reading, pairing, learning, diagnosing.

Flow files are written with mitmproxy's own FlowWriter, HARs in the shape Chromium and Playwright write;
the CLIs run as subprocesses, as a user runs them. Browsers recording real sessions:
tests/browser/test_learn_browser.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http, io
from mitmproxy.test import tflow

from addon import verdict
from addon.core.cors import Engine, RequestFacts, response_edit
from addon.core.policy import load_policy
from addon.tools import recordings
from addon.tools.learn import learn, render
from addon.tools.lint import lint_path
from addon.tools.recordings import Recording, RecordingError, read

REPO = Path(__file__).resolve().parents[2]
APP = "http://app.local:3000"
OTHER = "http://admin.local:4000"
API = "http://api.local:8000"


def make_flow(method: str, url: str, request: Mapping[str, str], status: int | None = 200,
              response: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None) -> http.HTTPFlow:
    f = tflow.tflow(resp=status is not None)
    f.request = http.Request.make(method, url, b"", dict(request))
    if status is not None:
        f.response = http.Response.make(status, b"", dict(response or {}))
    f.metadata.update(metadata or {})
    return f


def write_flows(path: Path, flows: Sequence[Any]) -> Path:
    with open(path, "wb") as fo:
        writer = io.FlowWriter(fo)
        for f in flows:
            writer.add(f)
    return path


def har_entry(method: str, url: str, request: Mapping[str, str], status: int = 200,
              response: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "startedDateTime": "2026-12-06T04:00:00.000Z", "time": 12,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": k, "value": v} for k, v in request.items()]},
        "response": {"status": status, "httpVersion": "HTTP/1.1", "content": {"size": 0},
                     "headers": [{"name": k, "value": v} for k, v in (response or {}).items()]},
        **extra,
    }


def write_har(path: Path, entries: Sequence[Any], pages: Sequence[Any] = ()) -> Path:
    path.write_text(json.dumps({"log": {"version": "1.2", "pages": list(pages), "entries": list(entries)}}))
    return path


def session(tmp_path: Path) -> Path:
    """A session through corsgate's default policy: preflighted PUT with credentials, two origins, a same-origin
    request, a navigation, a request without Origin and a TCP flow."""
    answered = {"corsgate.trail": ["x"], "corsgate.answered": True}
    decorated = {"corsgate.trail": ["x"]}
    return write_flows(tmp_path / "session.flows", [
        make_flow("OPTIONS", f"{API}/users/42", {"Origin": APP, "Access-Control-Request-Method": "PUT",
                                                 "Access-Control-Request-Headers": "content-type,x-sdk-date"},
                  200, {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true",
                        "Access-Control-Allow-Methods": "PUT",
                        "Access-Control-Allow-Headers": "content-type,x-sdk-date"},
                  answered),
        make_flow("PUT", f"{API}/users/42", {"Origin": APP, "Content-Type": "application/json", "X-Sdk-Date": "1",
                                             "Cookie": "sid=1"},
                  200, {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true",
                        "Access-Control-Expose-Headers": "X-Total,Content-Type", "X-Total": "3",
                        "Content-Type": "application/json", "Set-Cookie": "a=b"}, decorated),
        make_flow("GET", f"{API}/users/7", {"Origin": OTHER}, 200, {"X-Page": "1"}),
        make_flow("GET", f"{API}/users/7", {"Origin": API, "Sec-Fetch-Site": "same-origin"}, 200, {}),
        make_flow("GET", f"{API}/", {"Sec-Fetch-Mode": "navigate", "Origin": OTHER}, 200, {}),
        make_flow("GET", f"{API}/plain", {}, 200, {}),
        tflow.ttcpflow(),
    ])


def learn_to(tmp_path: Path, *inputs: Path, extra: Sequence[str] = ()) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "learned.yaml"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "cors-learn"), *map(str, inputs), "-o", str(out),
                           *extra], capture_output=True, text=True, timeout=60)
    return proc, out


def cors_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "cors-check"), *args], capture_output=True,
                          text=True, timeout=60)


# -- reading -------------------------------------------------------------------------------------------


def test_flow_file_is_read_paired_and_counted(tmp_path: Path) -> None:
    recording = Recording()
    exchanges = list(read([session(tmp_path)], recording))
    assert [(e.method, e.origin, e.preflight is not None) for e in exchanges] == [
        ("PUT", APP, True), ("GET", OTHER, False)]
    put = exchanges[0]
    assert put.preflight.request_headers == ("content-type", "x-sdk-date")
    assert put.preflight.upstream_headers is None, "a gateway-made preflight says nothing about the upstream"
    assert put.upstream_headers is not None and not any(
        k.lower().startswith("access-control-") for k, _ in put.upstream_headers), "corsgate's fields are its own"
    assert put.cookies and put.credentialed and not exchanges[1].credentialed
    assert recording.skipped == {recordings.SAME_ORIGIN: 1, recordings.NO_CORS: 1, recordings.NO_ORIGIN: 1,
                                 recordings.NOT_HTTP: 1}
    assert recording.seen == 7


def test_har_pairs_preflights_and_takes_the_origin_from_referer_or_page(tmp_path: Path) -> None:
    har = write_har(tmp_path / "app.har", [
        har_entry("OPTIONS", f"{API}/orders", {"Origin": APP, "Access-Control-Request-Method": "DELETE"}, 204,
                  {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "GET"}),
        # thin: the failed request, no Origin, status 0 and no headers (Chromium), -1 (Playwright)
        har_entry("GET", f"{API}/thin", {"Referer": f"{APP}/index.html", "X-Trace": "1"}, 0, _error="net::ERR_FAILED"),
        har_entry("GET", f"{API}/thin2", {"Accept": "*/*"}, -1, pageref="page_1"),
        har_entry("GET", f"{API}/nothing", {"Accept": "*/*"}, 0),
        {"request": {"method": "GET"}},  # broken
        "not even an object",
    ], pages=[{"id": "page_1", "title": f"{OTHER}/app", "startedDateTime": "2026-12-06T04:00:00Z"}])
    recording = Recording()
    exchanges = list(read([har], recording))
    by_path = {e.path: e for e in exchanges}
    assert set(by_path) == {"/orders", "/thin", "/thin2"}
    assert by_path["/orders"].sent is False and by_path["/orders"].method == "DELETE", "preflight only: it failed"
    assert (by_path["/thin"].origin, by_path["/thin"].origin_from, by_path["/thin"].status) == (APP, "Referer", None)
    assert by_path["/thin"].error == "net::ERR_FAILED"
    assert (by_path["/thin2"].origin, by_path["/thin2"].origin_from) == (OTHER, "page")
    assert recording.skipped == {recordings.NO_ORIGIN: 1, recordings.BROKEN: 2}
    assert len(recording.broken) == 2 and all(b.startswith(f"{har}#") for b in recording.broken)


def assert_cli_refuses(tmp_path: Path, path: Path, expected: str) -> None:
    """cors-learn on a broken input: exit 1, the located message, no traceback, and no policy written."""
    proc, out = learn_to(tmp_path, path)
    assert proc.returncode == 1 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("content, expected", [
    (b"hello world", "not a mitmproxy flow file (mitmdump -w) or a HAR file"),
    (b'{"log": {"entries": 3}}', "log.entries: missing or not a list"),
    (b'{"log": \n {"entries": [}', ":2:15: not a HAR file: invalid JSON"),
    (b'{"log": {"entries": ["\xff"]}}', ":1: not UTF-8 (byte 22)"),
    (b"12:not a tnetstring", "flow #1 (byte 0): not a readable mitmproxy flow"),
])
def test_not_a_recording_is_a_located_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match="^" + str(path)) as raised:
        list(read([path]))
    assert expected in str(raised.value)
    assert_cli_refuses(tmp_path, path, expected)


def test_har_entries_are_read_one_at_a_time_in_any_member_order(tmp_path: Path) -> None:
    """The HAR is walked member by member (entries decoded one by one); pages after the entries still give
    a thin entry its page's origin, other members are skipped, and bodies never reach the exchange."""
    entry = har_entry("GET", f"{API}/x", {}, -1, pageref="p1")
    body = har_entry("POST", f"{API}/y", {"Origin": APP}, 200, {"X-A": "1"})
    body["request"]["postData"] = {"mimeType": "text/plain", "text": "\u00e9" * 1000}
    body["response"]["content"] = {"size": 3, "text": "YWJj", "encoding": "base64"}
    text = json.dumps({"comment": {"entries": "no"}, "log": {"version": "1.2", "entries": [entry, body],
                                                             "creator": {"name": "x"},
                                                             "pages": [{"id": "p1", "title": f"{OTHER}/page"}]}},
                      indent=1)
    path = tmp_path / "late-pages.har"
    path.write_text(text)
    got = list(read([path]))
    assert [(e.origin, e.origin_from, e.method) for e in got] == [(OTHER, "page", "GET"), (APP, "Origin", "POST")]
    assert dict(got[1].response_headers)["X-A"] == "1"


@pytest.mark.parametrize("cut, expected", [
    (lambda t: t[: len(t) * 2 // 3], "not a HAR file: invalid JSON"),
    (lambda t: t + " {}", "not a HAR file: invalid JSON: Extra data"),
    (lambda t: t.replace('"entries": [', '"entries": [1 2, '), ":1:"),
])
def test_a_har_broken_after_its_first_entries_is_a_located_error(tmp_path: Path, cut: Any, expected: str) -> None:
    entries = [har_entry("GET", f"{API}/n{i}", {"Origin": APP}) for i in range(30)]
    path = tmp_path / "cut.har"
    path.write_text(cut(json.dumps({"log": {"version": "1.2", "pages": [], "entries": entries}})))
    with pytest.raises(RecordingError, match=r"^" + str(path) + ":") as raised:
        list(read([path]))
    assert expected in str(raised.value)
    assert_cli_refuses(tmp_path, path, expected)


def test_truncated_flow_file_names_the_flow_and_offset(tmp_path: Path) -> None:
    whole = session(tmp_path).read_bytes()
    cut = tmp_path / "cut.flows"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RecordingError, match=r"cut\.flows: flow #\d+ \(byte \d+\): not a readable mitmproxy flow"):
        list(read([cut]))


# -- learning ------------------------------------------------------------------------------------------


def test_learned_policy_is_the_tight_one_and_lints_clean(tmp_path: Path) -> None:
    proc, out = learn_to(tmp_path, session(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "from 2 cross-origin exchange(s) of 7 recorded" in proc.stdout
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    schema = text.splitlines()[0].split("$schema=")[1]
    assert (out.parent / schema).resolve() == REPO / "policies" / "schema.json"
    assert "# Learned by cors-learn from 1 file: session.flows" in text
    assert "2 cross-origin exchanges (1 with a recorded preflight" in text
    assert lint_path(out) == []
    content = load_policy(out).policy.plugins["cors-api-local"].content
    assert content.allow_origin == (OTHER, APP)
    assert content.allow_methods == ("GET", "PUT")
    assert content.allow_headers == ("Content-Type", "X-Sdk-Date")
    assert content.expose_headers == ("X-Page", "X-Total"), "non-safelisted upstream fields, no Set-Cookie/CORS"
    assert content.allow_credentials is True and content.max_age == 600
    apis = [(a.method, a.path, a.match_mode) for a in load_policy(out).policy.apis]
    assert apis == [("GET", "/users/{id}", "NORMAL"), ("PUT", "/users/{id}", "NORMAL")]


def judge_through(policy: Path, origin: str, method: str, path: str, headers: Sequence[str] = (),
                  credentials: bool = False) -> verdict.Verdict:
    """The browser's verdict on a request through the engine with this policy (preflight first when needed)."""
    engine = Engine(load_policy(policy))
    if method not in ("GET", "HEAD", "POST") or headers:
        decision = engine.decide(RequestFacts("OPTIONS", "api.local", path, origin, method, tuple(headers)))
        if decision.action != "respond":
            return verdict.check_preflight(origin, method, list(headers), 200, [], credentials)
        assert decision.response is not None
        v = verdict.check_preflight(origin, method, list(headers), decision.response.status,
                                    list(decision.response.headers), credentials)
        if not v.ok:
            return v
    decision = engine.decide(RequestFacts(method, "api.local", path, origin))
    return verdict.check_actual(origin, 200, list(response_edit(decision.cors, ()).set), credentials)


def test_learned_policy_admits_what_was_recorded_and_nothing_else(tmp_path: Path) -> None:
    _, out = learn_to(tmp_path, session(tmp_path))
    assert judge_through(out, APP, "PUT", "/users/9", ["content-type", "x-sdk-date"], True).ok
    assert judge_through(out, OTHER, "GET", "/users/1").ok
    assert judge_through(out, "http://evil.local", "GET", "/users/1").rule == "acao-missing"
    assert judge_through(out, APP, "DELETE", "/users/1").rule in ("method-not-allowed", "acao-missing")
    assert judge_through(out, APP, "PUT", "/users/1", ["x-unrecorded"]).rule == "header-not-allowed"
    assert judge_through(out, APP, "GET", "/elsewhere").rule == "acao-missing"


def test_paths_are_grouped_by_ids_and_prefixes(tmp_path: Path) -> None:
    flows = [make_flow("GET", f"{API}/items/{n}", {"Origin": APP}) for n in range(3)]
    flows += [make_flow("GET", f"{API}/files/f{n}.txt", {"Origin": APP}) for n in range(12)]
    flows += [make_flow("GET", f"{API}/v1/orders/6f1c1b0e-8d0a-4a8e-9a53-1b2c3d4e5f60/lines/7", {"Origin": APP})]
    flows += [make_flow("GET", "http://cdn.local/img", {"Origin": APP})]
    proc, out = learn_to(tmp_path, write_flows(tmp_path / "paths.flows", flows), extra=["--max-age", "60"])
    assert proc.returncode == 0, proc.stderr
    policy = load_policy(out).policy
    assert sorted((a.host, a.path, a.match_mode) for a in policy.apis) == [
        ("api.local", "/files", "SWA"), ("api.local", "/items/{id}", "NORMAL"),
        ("api.local", "/v1/orders/{id}/lines/{id2}", "NORMAL"), ("cdn.local", "/img", "NORMAL")]
    assert set(policy.plugins) == {"cors-api-local", "cors-cdn-local"}
    assert {p.content.max_age for p in policy.plugins.values()} == {60}
    assert lint_path(out) == []


def test_wildcards_only_when_asked(tmp_path: Path) -> None:
    origins = ["https://a.shop.example.com", "https://b.shop.example.com", "https://shop.example.com"]
    flows = write_flows(tmp_path / "w.flows", [make_flow("GET", f"{API}/x", {"Origin": o}) for o in origins])
    _, exact = learn_to(tmp_path, flows)
    assert load_policy(exact).policy.plugins["cors-api-local"].content.allow_origin == tuple(sorted(origins))
    _, wide = learn_to(tmp_path, flows, extra=["--wildcard-origins"])
    assert load_policy(wide).policy.plugins["cors-api-local"].content.allow_origin == (
        "https://*.shop.example.com", "https://shop.example.com")
    assert lint_path(wide) == []


def test_nothing_to_learn_is_exit_1(tmp_path: Path) -> None:
    flows = write_flows(tmp_path / "none.flows", [make_flow("GET", f"{API}/x", {}), tflow.ttcpflow()])
    proc, out = learn_to(tmp_path, flows)
    assert proc.returncode == 1 and "no cross-origin exchange to learn from" in proc.stderr
    assert "1 not HTTP" in proc.stderr and not out.exists()


def test_render_round_trips_through_the_loader(tmp_path: Path) -> None:
    recording = Recording()
    learned = learn(read([session(tmp_path)], recording), recording)
    text = render(learned, tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text(text)
    assert load_policy(tmp_path / "p.yaml").policy == learned.policy


# -- cors-check --flows --------------------------------------------------------------------------------


def test_check_flows_before_and_after(tmp_path: Path) -> None:
    flows = session(tmp_path)
    before = cors_check("--flows", str(flows))
    assert before.returncode == 1, before.stderr
    assert "PUT http://api.local:8000/users/42 from http://app.local:3000 (cookies)  ok" in before.stdout
    assert "No 'Access-Control-Allow-Origin' header is present on the requested resource." in before.stdout
    assert before.stdout.rstrip().endswith("1 no Origin (and no Referer or page to tell it), "
                                           "1 no-cors (navigation, <img>, <script> and the like), "
                                           "1 not HTTP (TCP, UDP, DNS, WebSocket messages), 1 same-origin")
    _, learned = learn_to(tmp_path, flows)
    after = cors_check("--flows", str(flows), str(learned), "--format", "json")
    assert after.returncode == 0, after.stdout + after.stderr
    report = json.loads(after.stdout)
    assert [r["after"]["state"] for r in report["exchanges"]] == ["ok", "ok"]
    assert report["summary"] == {"exchanges": 2, "before": {"ok": 1, "blocked": 1}, "after": {"ok": 2}, "fixed": 1,
                                 "broken": 0}
    strict = cors_check("--flows", str(flows), str(REPO / "policies" / "strict-allowlist.yaml"))
    assert strict.returncode == 1
    assert "after 0 ok, 2 blocked" in strict.stdout


def test_check_flows_thin_har_says_what_it_cannot_show(tmp_path: Path) -> None:
    har = write_har(tmp_path / "thin.har", [
        har_entry("PUT", f"{API}/things/1", {"Referer": f"{APP}/", "X-Sdk-Date": "1", "Content-Type": "text/plain"},
                  -1),
    ])
    proc = cors_check("--flows", str(har))
    assert proc.returncode == 1
    assert "unknown: failed in the browser with no recorded response" in proc.stdout
    assert f"no Origin header recorded: the page's origin {APP} is taken from the Referer" in proc.stdout
    assert "needs a preflight (method PUT, request headers x-sdk-date); none is in the recording" in proc.stdout
    _, learned = learn_to(tmp_path, har)
    after = cors_check("--flows", str(har), str(learned))
    assert after.returncode == 0, after.stdout
    assert "taken as a CORS-less 200" in after.stdout


def test_check_flows_bad_policy_and_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\n")
    proc = cors_check("--flows", str(session(tmp_path)), str(bad))
    assert proc.returncode == 2 and "bad.yaml:1: version" in proc.stderr
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01garbage")
    proc = cors_check("--flows", str(junk))
    assert proc.returncode == 1 and "not a mitmproxy flow file" in proc.stderr and "Traceback" not in proc.stderr
