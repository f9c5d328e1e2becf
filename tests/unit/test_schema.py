"""policies/schema.json: generated from the loader's models, committed up to date, and agreeing with the loader."""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from addon.core.policy import PolicyError, load_policy

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "policies" / "schema.json"
CASES = ROOT / "tests" / "lint_cases"
EXPECTED: dict = YAML(typ="safe", pure=True).load((CASES / "expected.yaml").read_text())
SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))
gen_schema = runpy.run_path(str(ROOT / "scripts" / "gen-schema"))


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def document(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) in the schema."""
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            yield from properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for item in node:
            yield from properties(item, where)


def test_committed_schema_is_what_the_models_generate(capsys: pytest.CaptureFixture[str]) -> None:
    assert SCHEMA_FILE.read_text() == gen_schema["schema_text"](), "drifted: run scripts/gen-schema"
    assert gen_schema["main"](["--check"]) == 0
    capsys.readouterr()


def test_drift_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text(SCHEMA_FILE.read_text().replace("Format version; always 1.", "Format version."))
    monkeypatch.setitem(gen_schema["main"].__globals__, "SCHEMA_PATH", stale)
    assert gen_schema["main"](["--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_every_field_has_a_description_for_the_editor() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    found = list(properties(schema))
    assert len(found) > 30
    assert [where for where, prop in found if not prop.get("description")] == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_schema_accepts_every_shipped_policy(path: Path) -> None:
    assert [e.message for e in validator().iter_errors(document(path))] == []
    assert path.read_text().startswith("# yaml-language-server: $schema=./schema.json\n")


def test_comma_strings_and_lists_are_both_valid() -> None:
    v = validator()
    policy = {"version": 1, "plugins": {"w": {"type": "cors", "content": {"allow_origin": "https://a.example.com"}}}}
    assert v.is_valid(policy)
    policy["plugins"]["w"]["content"]["allow_origin"] = ["https://a.example.com", "https://b.example.com"]
    assert v.is_valid(policy)
    policy["plugins"]["w"]["content"]["allow_origin"] = 42
    assert not v.is_valid(policy)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_agrees_with_the_loader_on_the_broken_policies(name: str) -> None:
    """Rejected by the loader -> rejected by the schema, unless expected.yaml says why a schema cannot;
    then the schema really accepts it (so the claim is checked too). Loaded -> accepted."""
    path = CASES / name
    schema_ok = validator().is_valid(document(path))
    try:
        load_policy(path)
    except PolicyError:
        claim = EXPECTED[name].get("schema")
        assert claim, f"{name}: the loader rejects it; say in expected.yaml whether the schema does"
        assert schema_ok == claim.startswith("not expressible"), f"{name}: schema {schema_ok=}, expected.yaml: {claim}"
    else:
        assert schema_ok
        assert "schema" not in EXPECTED[name]
