"""cors-lint: every rule on a deliberately broken policy (tests/lint_cases), the shipped policies clean."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from addon.tools.lint import RULES, lint, lint_path

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "lint_cases"
EXPECTED: dict = YAML(typ="safe", pure=True).load((CASES / "expected.yaml").read_text())
SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))
cors_lint = runpy.run_path(str(ROOT / "scripts" / "cors-lint"))["main"]

BASE = """\
version: 1
plugins:
  web:
    type: cors
    content:
      allow_origin: https://app.example.com
      allow_origin_regex: [{regex}]
apis:
  - {{name: all, method: ANY, path: /, match_mode: SWA, plugins: [web]}}
"""


def rules_of(text: str) -> list[str]:
    return [f.rule for f in lint(text)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_broken_policy_gets_exactly_its_findings_and_exit_code(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = EXPECTED[name]
    rc = cors_lint([str(CASES / name), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    got = [[f["severity"], f["rule"], f["line"], f["field"]] for f in report["findings"]]
    assert sorted(got) == sorted(expected["findings"])
    assert rc == expected["exit"]
    assert all(f["file"] == str(CASES / name) and f["message"] and f["fix"] for f in report["findings"])


def test_every_case_is_listed_and_every_rule_has_a_case() -> None:
    assert sorted(p.name for p in CASES.iterdir() if p.name != "expected.yaml") == sorted(EXPECTED)
    covered = {finding[1] for case in EXPECTED.values() for finding in case["findings"]}
    assert covered == set(RULES)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_lint_clean(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cors_lint([str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_text_format_names_place_rule_field_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES / "routing-tie.yaml"
    assert cors_lint([str(case)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{case}:7: error[routing-tie]: apis[1]: API 'user-by-name' ties with API 'user-by-id'")
    assert out[1].startswith("    fix: ")


def test_several_files_one_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cors_lint([str(CASES / "credentials-wildcard.yaml"), str(CASES / "routing-tie.yaml")]) == 1
    assert cors_lint([str(CASES / "credentials-wildcard.yaml"), str(SHIPPED[0])]) == 0
    capsys.readouterr()


def test_unreadable_file_is_an_error_finding(tmp_path: Path) -> None:
    (finding,) = lint_path(tmp_path / "missing.yaml")
    assert (finding.severity, finding.rule, finding.line) == ("error", "invalid", None)
    assert "cannot read file" in finding.message


def test_misspelt_plugin_reference_suggests_the_name() -> None:
    (finding,) = lint_path(CASES / "unknown-plugin.yaml")
    assert finding.fix == "write 'web'"


# -- suppression -----------------------------------------------------------------------------------

CREDENTIALS = """\
version: 1
plugins:
  open:
    type: cors
    content:
      allow_origin: "*"{same_line}
      allow_credentials: true
      max_age: 86400
"""


def test_suppression_on_the_line_or_above_silences_only_the_named_rule() -> None:
    assert rules_of(CREDENTIALS.format(same_line="")) == ["credentials-wildcard", "max-age-over-cap"]
    same_line = CREDENTIALS.format(same_line="  # cors-lint: ignore[credentials-wildcard] debug only")
    assert rules_of(same_line) == ["max-age-over-cap"]
    comment = "      # cors-lint: ignore[max-age-over-cap, credentials-wildcard]\n"
    above = CREDENTIALS.format(same_line="").replace('      allow_origin: "*"', comment + '      allow_origin: "*"')
    assert rules_of(above) == ["max-age-over-cap"]  # max_age is not on the next line
    other = CREDENTIALS.format(same_line="  # cors-lint: ignore[origin-trailing-slash]")
    assert rules_of(other) == ["credentials-wildcard", "max-age-over-cap"]


def test_loader_errors_cannot_be_suppressed() -> None:
    api = "{name: a, method: GET, path: /x, match_mod: SWA}"
    text = f"version: 1\napis:\n  - {api}  # cors-lint: ignore[unknown-field]\n"
    assert rules_of(text) == ["unknown-field"]


# -- rule details ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "regex",
    [
        r"'^https://pr-[0-9]+\.preview\.example\.com$'",
        r"'^https://(app|admin)\.example\.com$'",
        r"'^https://[a-z0-9-]+\.example\.com(:[0-9]+)?$'",
        r"'^http://localhost(:\d+)?$'",
        r"'^https://.*\.example\.com$'",
        r"'\Ahttps://app\.example\.com\Z'",
        r"'^https://([a-z0-9-]+\.)*example\.com$'",  # nested, but every label ends at a dot
        r"'^https://([a-z0-9]+(-[a-z0-9]+)*\.)+example\.com$'",
        r"'^https://(?>[a-z0-9-]+)+\.example\.com$'",  # an atomic group never gives back what it took
    ],
)
def test_well_made_regexes_pass(regex: str) -> None:
    assert rules_of(BASE.format(regex=regex)) == []


@pytest.mark.parametrize(
    ("regex", "rule"),
    [
        (r"'^https://app.example\.com$'", "origin-regex-broad"),  # unescaped dot
        (r"'^https://\w+example\.com$'", "origin-regex-broad"),  # suffix without its dot
        (r"'^https://[^/]*$'", "origin-regex-broad"),  # trailing wildcard after a negated set
        (r"'^https://.+$'", "origin-regex-broad"),
        (r"'^(https://a\.example\.com|https://b\.example\.com)'", "origin-regex-unanchored"),
        (r"'^https://a\.example\.com|https://b\.example\.com$'", "origin-regex-unanchored"),
        (r"'^https://([a-z0-9-]+)+\.example\.com$'", "origin-regex-backtracking"),
        (r"'^https://(\w+\.?)*example\.com$'", "origin-regex-backtracking"),  # the dot may be absent
        (r"'^https://([a-z]+|[0-9]+)+\.example\.com$'", "origin-regex-backtracking"),
        (r"'^https://([a-z]{1,20}){2,}\.example\.com$'", "origin-regex-backtracking"),
    ],
)
def test_broad_or_unanchored_regexes(regex: str, rule: str) -> None:
    assert rules_of(BASE.format(regex=regex)) == [rule]


def test_credentials_echo_of_headers_is_no_authorization_problem() -> None:
    content = "{allow_origin: 'https://a.example.com', allow_headers: '*', allow_credentials: true}"
    text = f"version: 1\nplugins:\n  w: {{type: cors, content: {content}}}\n"
    assert rules_of(text) == []  # with credentials corsgate echoes the requested names, Authorization included


def test_any_method_api_needs_no_method_in_allow_methods_but_star_covers_all() -> None:
    text = """\
version: 1
plugins:
  star: {type: cors, content: {allow_origin: "https://a.example.com", allow_methods: "*"}}
  none: {type: cors, content: {allow_origin: "https://a.example.com"}}
apis:
  - {name: put, method: PUT, path: /a, plugins: [star]}
  - {name: any, method: ANY, path: /b, plugins: [none]}
  - {name: del, method: DELETE, path: /c, plugins: [none]}
"""
    found = [(f.rule, f.field) for f in lint(text) if f.rule != "wildcard-uncached-in-firefox"]  # the star's own
    assert found == [("method-not-in-plugin", "apis[2].method")]


def test_reachable_overlaps_are_not_shadowed() -> None:
    text = """\
version: 1
apis:
  - {name: exact, method: GET, path: "/a/{x}"}
  - {name: prefix, method: GET, path: /a, match_mode: SWA}
  - {name: rest, method: ANY, path: "/a/{p+}"}
  - {name: host, method: GET, path: "/a/{x}", host: api.example.com}
  - {name: any-host-any, method: ANY, path: /, match_mode: SWA}
  - {name: options, method: OPTIONS, path: /, match_mode: SWA}
"""
    assert rules_of(text) == []


def test_host_specific_api_shadows_nothing_on_other_hosts_but_its_twin_on_its_host() -> None:
    text = """\
version: 1
apis:
  - {name: anyhost, method: GET, path: /a, match_mode: SWA}
  - {name: exact-on-host, method: GET, path: /a, host: api.example.com}
  - {name: prefix-on-host, method: GET, path: /a, match_mode: SWA, host: api.example.com}
  - {name: deeper-on-host, method: GET, path: "/a/{x}", match_mode: SWA, host: api.example.com}
"""
    (finding,) = lint(text)
    assert (finding.rule, finding.field) == ("shadowed-api", "apis[3]")
    assert "'prefix-on-host'" in finding.message


def test_apis_apart_by_group_domains_or_protocol_shadow_nothing() -> None:
    text = """version: 1
groups:
  a: {domains: [a.example]}
  b: {domains: [b.example]}
apis:
  - {name: x, group: a, method: GET, path: /x}
  - {name: y, group: b, method: GET, path: /x}
  - {name: s, method: GET, path: /s, req_protocol: HTTPS}
  - {name: p, method: GET, path: /s, match_mode: SWA, req_protocol: HTTP}
"""
    assert lint(text) == []
    # Without the domains, y is x's twin on every host: a tie, which the loader refuses.
    bare = text.replace("  a: {domains: [a.example]}\n  b: {domains: [b.example]}\n", "").replace("groups:\n", "")
    assert [f.rule for f in lint(bare)] == ["routing-tie"]
