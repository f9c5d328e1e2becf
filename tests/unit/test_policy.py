"""Policy loading: formats, validation with located errors, suggestions, immutability."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from addon.core.policy import MAX_PROBLEMS, Policy, PolicyError, _problems, load_policy, parse_policy

POLICIES = Path(__file__).resolve().parents[2] / "policies"

MINIMAL = """\
version: 1
plugins:
  web:
    type: cors
    content:
      allow_origin: https://a.example.com, https://b.example.com
      allow_methods: [GET, PUT]
apis:
  - name: one
    method: GET
    path: /users/{id}
    plugins: web
"""


@pytest.mark.parametrize("name", ["default", "apig-default", "apig-seed", "strict-allowlist"])
def test_shipped_policies_load(name: str) -> None:
    loaded = load_policy(POLICIES / f"{name}.yaml")
    assert loaded.policy.version == 1
    assert loaded.policy.apis
    assert len(loaded.digest) == 12


def test_empty_path_is_the_embedded_default() -> None:
    assert load_policy("").source.endswith("policies/default.yaml")


def test_comma_strings_and_lists_are_the_same() -> None:
    content = parse_policy(MINIMAL).policy.plugins["web"].content
    assert content.allow_origin == ("https://a.example.com", "https://b.example.com")
    assert content.allow_methods == ("GET", "PUT")
    assert parse_policy(MINIMAL).policy.apis[0].plugins == ("web",)


def test_json_loads_like_yaml(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"version": 1, "apis": [{"name": "a", "method": "ANY", "path": "/", "match_mode": "SWA"}]}')
    assert load_policy(path).policy.apis[0].match_mode == "SWA"


def test_policy_is_immutable() -> None:
    policy = parse_policy(MINIMAL).policy
    with pytest.raises(ValidationError):
        policy.apis[0].name = "other"  # type: ignore[misc]


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml")
    return info.value


def test_misspelt_key_names_line_field_and_suggestion() -> None:
    err = _error(MINIMAL.replace("allow_methods", "allow_method"))
    assert "p.yaml:7: plugins.web.content.allow_method: unknown field 'allow_method'" in str(err)
    assert "did you mean 'allow_methods'?" in str(err)


def test_misspelt_api_key() -> None:
    err = _error(MINIMAL.replace("    plugins: web", "    plugin: web"))
    assert "p.yaml:12: apis[0].plugin: unknown field" in str(err)
    assert "did you mean 'plugins'?" in str(err)


def test_unknown_plugin_reference() -> None:
    err = _error(MINIMAL.replace("plugins: web", "plugins: wbe"))
    assert "apis[0].plugins: unknown plug-in 'wbe' (did you mean 'web'?)" in str(err)
    assert err.problems[0].line == 12


def test_wrong_types_are_refused_not_coerced() -> None:
    err = _error(MINIMAL.replace("      allow_methods: [GET, PUT]", "      allow_credentials: yes"))
    assert "plugins.web.content.allow_credentials: must be true or false, got 'yes'" in str(err)


def test_bad_method_enum() -> None:
    err = _error(MINIMAL.replace("method: GET", "method: FETCH"))
    assert "apis[0].method: must be one of" in str(err)


def test_bad_origin_rule() -> None:
    err = _error(MINIMAL.replace("https://b.example.com", "https://b.example.com/app"))
    assert "plugins.web.content.allow_origin" in str(err)
    assert "no path" in str(err)


def test_bad_path_pattern() -> None:
    err = _error(MINIMAL.replace("/users/{id}", "/users/{rest+}/x"))
    assert "must be the last segment" in str(err)


def test_routing_tie_is_a_load_error() -> None:
    text = MINIMAL + "  - name: two\n    method: GET\n    path: /users/{other}\n"
    err = _error(text)
    assert "ties with API 'one'" in str(err)
    assert err.problems[0].line == 13


def test_two_cors_plugins_on_one_api() -> None:
    text = MINIMAL.replace("plugins:\n  web:", "plugins:\n  web2:\n    type: cors\n    content: {allow_origin: '*'}\n  web:")
    text = text.replace("    plugins: web", "    plugins: web,web2")
    assert "more than one plug-in of type 'cors'" in str(_error(text))


def test_missing_required_fields() -> None:
    err = _error("version: 1\napis:\n  - method: GET\n")
    assert "apis[0].name: required field is missing" in str(err)
    assert "apis[0].path: required field is missing" in str(err)


def test_yaml_syntax_error_has_line() -> None:
    err = _error("version: 1\napis: [\n  {name: a\n")
    assert err.problems[0].line is not None
    assert "invalid YAML" in str(err)


def test_json_syntax_error_has_line() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy('{"version": 1,\n "apis": [,]}', "p.json")
    assert "p.json:2: (top level): invalid JSON" in str(info.value)


def test_aliases_are_refused() -> None:
    err = _error("version: 1\nx: &a [1]\ny: *a\n")
    assert "anchors/aliases are not allowed" in str(err)


def test_not_utf8() -> None:
    with pytest.raises(PolicyError, match="not UTF-8"):
        parse_policy(b"version: 1\nname: \xff\n", "p.yaml")


def test_missing_file() -> None:
    with pytest.raises(PolicyError, match="cannot read file"):
        load_policy("/nonexistent/policy.yaml")


def test_wrong_version() -> None:
    assert "version: must be one of" in str(_error("version: 2\n"))


def test_empty_file_names_line_1() -> None:
    assert str(_error("")).startswith("p.yaml:1: (top level): must be a mapping")


def _api(i: int, **fields: Any) -> dict[str, Any]:
    return {"name": f"a{i}", "method": "GET", "path": f"/p{i}", "plugins": "web", **fields}


_WEB = {"web": {"type": "cors", "content": {"allow_origin": "https://a.example.com"}}}
# Documents whose problems span the top level, plug-ins and APIs: parse_policy validates the APIs one
# by one (a paced load rests between them), and must report what one validation of the whole reports.
BROKEN: dict[str, dict[str, Any]] = {
    "everywhere": {"zzz": 1, "version": 2, "plugins": {"w": {"type": "x"}},
                   "apis": [_api(0, name=5, extra=1), "not a mapping", _api(2, method="FETCH")], "aaa": 2},
    "apis only": {"version": 1, "plugins": _WEB, "apis": [_api(0), _api(1, path="/a/{x+}/b"), _api(2, cors="yes")]},
    "unknown key after apis": {"version": 1, "apis": [_api(0, match_mode="EXACT")], "plugin": {}},
    "more than reported": {"version": 1, "apis": [_api(i, method="FETCH", cors=1) for i in range(MAX_PROBLEMS)],
                           "zzz": 1},
    "cross-field": {"version": 1, "plugins": _WEB, "apis": [_api(0), _api(1, plugins="wbe"), _api(2, path="/p0")]},
    "apis not a list": {"version": 1, "apis": {"name": "x"}},
}


@pytest.mark.parametrize("document", BROKEN.values(), ids=BROKEN.keys())
@pytest.mark.parametrize("indent", [None, 1], ids=["one line", "indented"])
def test_apis_checked_one_by_one_report_as_one_validation(document: dict[str, Any], indent: int | None) -> None:
    text = json.dumps(document, indent=indent)
    with pytest.raises(ValidationError) as whole:
        Policy.model_validate(document)
    expected = PolicyError("p.json", _problems(whole.value.errors(include_url=False), text))
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.json")
    assert str(info.value) == str(expected)


def test_apis_checked_one_by_one_make_the_same_policy() -> None:
    document = {"version": 1, "plugins": _WEB, "apis": [_api(i) for i in range(20)]}
    policy = parse_policy(json.dumps(document)).policy
    assert policy == Policy.model_validate(document)
    assert isinstance(policy.apis, tuple)
