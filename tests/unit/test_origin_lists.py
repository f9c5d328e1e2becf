"""Issue 18 part 1: allow lists made only of regexes, only of `null`, or of nothing, through the loader,
the engine, cors-lint, apig-import and cors-check; no message points at '*' as the way out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from addon.core.cors import Decision, Engine, RequestFacts, merge_vary, response_edit
from addon.core.policy import PolicyError, parse_policy
from addon.tools.apig_import import convert, plugins_from
from addon.tools.lint import lint

REPO = Path(__file__).resolve().parents[2]
PREVIEW = r"^https://pr-[0-9]+\.preview\.example\.com$"
REGEX_ONLY = f"{{allow_origin_regex: '{PREVIEW}', allow_methods: 'GET,PUT', allow_credentials: true}}"
NULL_ONLY = "{allow_origin: [], allow_null_origin: true, allow_methods: 'GET,PUT'}"
NOBODY = "{allow_methods: 'GET,PUT'}"
EMPTY_STRING = "{allow_origin: '', allow_methods: 'GET,PUT'}"


def policy_text(content: str) -> str:
    return ("version: 1\nplugins:\n  web:\n    type: cors\n    content: " + content + "\n"
            "apis:\n  - {name: api, method: ANY, path: /, match_mode: SWA, plugins: [web]}\n")


def engine(content: str) -> Engine:
    return Engine(parse_policy(policy_text(content)))


def preflight(e: Engine, origin: str) -> Decision:
    return e.decide(RequestFacts("OPTIONS", "h", "/x", origin, "PUT", ("content-type",)))


def actual_headers(e: Engine, origin: str) -> dict[str, str]:
    """The final headers of a forwarded GET's response, as gateway.py applies the edit."""
    d = e.decide(RequestFacts("GET", "h", "/x", origin))
    assert d.action == "forward"
    edit = response_edit(d.cors, [("Content-Type", "application/json")])
    out = {k.lower(): v for k, v in edit.set}
    merged = merge_vary([], edit.vary)
    if merged:
        out["vary"] = merged
    return out


@pytest.mark.parametrize("content", [REGEX_ONLY, NULL_ONLY, NOBODY, EMPTY_STRING],
                         ids=["regex-only", "null-only", "left-out", "empty-string"])
def test_allow_origin_may_be_empty_or_left_out(content: str) -> None:
    plugin = parse_policy(policy_text(content)).policy.plugins["web"].content
    assert plugin.allow_origin == ()


@pytest.mark.parametrize("origin", ["https://pr-1.preview.example.com", "https://pr-4711.preview.example.com"])
def test_regex_only_admits_a_matching_origin(origin: str) -> None:
    e = engine(REGEX_ONLY)
    d = preflight(e, origin)
    assert d.response is not None and d.response.status == 200
    answer = {k.lower(): v for k, v in d.response.headers}
    assert answer["access-control-allow-origin"] == origin
    assert answer["access-control-allow-credentials"] == "true"
    assert "Origin" in answer["vary"]
    assert any("allowed by" in step and "allow_origin_regex" in step for step in d.trail), d.trail
    assert actual_headers(e, origin) == {"access-control-allow-origin": origin,
                                         "access-control-allow-credentials": "true", "vary": "Origin"}


@pytest.mark.parametrize("origin", [
    "https://pr-1.preview.example.com.evil.net",  # the pattern is matched in full
    "https://preview.example.com",  # the apex
    "https://example.com",
    "http://pr-1.preview.example.com",  # another scheme
    "https://pr-x.preview.example.com",
    "null",
])
def test_regex_only_refuses_everything_else(origin: str) -> None:
    e = engine(REGEX_ONLY)
    d = preflight(e, origin)
    assert d.response is not None and d.response.status == 403
    assert not any(k.lower().startswith("access-control-") for k, _ in d.response.headers)
    assert actual_headers(e, origin) == {"vary": "Origin"}


def test_null_only_admits_null_and_nothing_else() -> None:
    e = engine(NULL_ONLY)
    ok = preflight(e, "null")
    assert ok.response is not None and ok.response.status == 200
    assert dict((k.lower(), v) for k, v in ok.response.headers)["access-control-allow-origin"] == "null"
    assert actual_headers(e, "null")["access-control-allow-origin"] == "null"
    refused = preflight(e, "https://app.example.com")
    assert refused.response is not None and refused.response.status == 403
    assert actual_headers(e, "https://app.example.com") == {"vary": "Origin"}


@pytest.mark.parametrize("content", [NOBODY, EMPTY_STRING])
@pytest.mark.parametrize("origin", ["https://app.example.com", "null", "http://127.0.0.1:5173"])
def test_a_plugin_that_admits_nobody_refuses_every_origin_and_says_why(content: str, origin: str) -> None:
    e = engine(content)
    d = preflight(e, origin)
    assert d.response is not None and d.response.status == 403
    assert not any(k.lower().startswith("access-control-") for k, _ in d.response.headers)
    assert any("admits no origin" in step for step in d.trail), d.trail
    assert actual_headers(e, origin) == {"vary": "Origin"}


def test_no_message_suggests_star() -> None:
    """The old loader error pointed at '*'; bad origins still fail, with reasons that do not."""
    for content in ("{allow_origin: 'https://a.example.com/path'}", "{allow_origin: 'ftp:/x'}",
                    "{allow_origin: 'https://*example.com'}"):
        with pytest.raises(PolicyError) as err:
            parse_policy(policy_text(content))
        assert "'*'" not in str(err.value) and '"*"' not in str(err.value), str(err.value)
    for finding in lint(policy_text(NOBODY)):
        assert "'*'" not in finding.message + finding.fix and "\"*\"" not in finding.message + finding.fix


def test_lint_warns_only_about_the_plugin_that_admits_nobody() -> None:
    rules = {(f.rule, f.field) for f in lint(policy_text(NOBODY))}
    assert ("origin-admits-none", "plugins.web.content") in rules
    for content in (REGEX_ONLY, NULL_ONLY):
        assert not any(f.rule == "origin-admits-none" for f in lint(policy_text(content)))


@pytest.mark.parametrize("given", [{}, {"allow_origin": ""}])
def test_apig_import_keeps_a_missing_allow_origin_empty_and_notes_it(given: dict[str, str]) -> None:
    content = {**given, "allow_methods": "GET"}
    plugins = plugins_from([{"plugin_name": "closed", "plugin_type": "cors", "plugin_content": json.dumps(content)}])
    export = {"swagger": "2.0", "info": {"title": "g"},
              "paths": {"/a": {"get": {"operationId": "a", "x-apigateway-plugins": ["closed"]}}}}
    result = convert(export, plugins)
    assert result.policy["plugins"]["closed"]["content"].get("allow_origin", "") == ""
    note = next(n for n in result.notes if "requires allow_origin" in n)
    assert "admits no origin" in note and "'*'" not in note
    loaded = parse_policy(json.dumps(result.policy))
    assert loaded.policy.plugins["closed"].content.admits_no_origin


def test_cors_check_on_a_regex_only_policy(tmp_path: Path) -> None:
    policy = tmp_path / "previews.yaml"
    policy.write_text(policy_text(REGEX_ONLY))

    def check(origin: str) -> tuple[int, dict]:
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "cors-check"), str(policy), "--origin", origin, "--method", "PUT",
             "--url", "http://127.0.0.1:9/x", "--format", "json"],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, json.loads(done.stdout)

    rc, report = check("https://pr-7.preview.example.com")
    assert rc == 0 and report["verdict"]["ok"] and report["preflight"]["response"]["status"] == 200
    rc, report = check("https://pr-7.preview.example.com.evil.net")
    assert rc == 1 and report["verdict"]["stage"] == "preflight"
    assert report["preflight"]["response"]["status"] == 403
