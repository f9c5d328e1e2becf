"""Policy loading: formats, validation with located errors, suggestions, immutability."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from addon.policy import PolicyError, load_policy, parse_policy

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
