"""The house rules of addon/, read from the imports with ast (issue 15).

- addon/core/ (the engine) never imports mitmproxy, the glue, the judge or the tools;
- addon/verdict/ (the judge) never imports mitmproxy, the glue, the tools or the engine's decisions
  (addon/core/cors.py): a judge that shares the defendant's logic cannot catch its mistakes;
- addon/tools/ never imports the glue (it may read mitmproxy's flow files, not run a proxy).
The glue is what knows mitmproxy: addon/cors_gateway.py, addon/gateway.py, addon/launcher.py.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ADDON = Path(__file__).resolve().parents[2] / "addon"
GLUE = ("addon.cors_gateway", "addon.gateway", "addon.launcher")
FORBIDDEN = {
    "core": ("mitmproxy", *GLUE, "addon.verdict", "addon.tools"),
    "verdict": ("mitmproxy", *GLUE, "addon.tools", "addon.core.cors"),
    "tools": GLUE,
}


def _module_name(path: Path, addon: Path) -> str:
    parts = path.relative_to(addon.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, addon: Path) -> set[str]:
    """Every module a file imports, anywhere in it, relative imports resolved; `from a import b` counts a.b too."""
    package = _module_name(path, addon)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def violations(addon: Path) -> list[str]:
    """'file imports module' for every import that breaks a room's rule."""
    broken = []
    for room, forbidden in FORBIDDEN.items():
        for path in sorted((addon / room).rglob("*.py")):
            for module in sorted(imported_modules(path, addon)):
                if any(module == f or module.startswith(f + ".") for f in forbidden):
                    broken.append(f"{path.relative_to(addon.parent)} imports {module}")
    return broken


def test_every_room_keeps_its_import_rules():
    assert violations(ADDON) == []


def test_the_rooms_exist_and_the_top_of_addon_holds_only_the_glue():
    assert {p.name for p in ADDON.glob("*.py")} == {"__init__.py", "cors_gateway.py", "gateway.py", "launcher.py"}
    for room in FORBIDDEN:
        assert (ADDON / room / "__init__.py").is_file()
        assert len(list((ADDON / room).glob("*.py"))) > 1, f"addon/{room}/ holds no module"


def test_a_planted_violation_is_caught_in_each_room(tmp_path):
    copy = tmp_path / "addon"
    shutil.copytree(ADDON, copy, ignore=shutil.ignore_patterns("__pycache__"))
    plants = {
        "core/origins.py": "from mitmproxy import http\n",
        "core/fields.py": "from .. import gateway\n",
        "verdict/rules.py": "from addon.core.cors import Engine\n",
        "tools/lint.py": "import addon.launcher\n",
    }
    for relative, line in plants.items():
        target = copy / relative
        target.write_text(target.read_text(encoding="utf-8") + "\n\ndef _planted():\n    " + line, encoding="utf-8")
    assert violations(copy) == [
        "addon/core/fields.py imports addon.gateway",
        "addon/core/origins.py imports mitmproxy",
        "addon/core/origins.py imports mitmproxy.http",
        "addon/verdict/rules.py imports addon.core.cors",
        "addon/verdict/rules.py imports addon.core.cors.Engine",
        "addon/tools/lint.py imports addon.launcher",
    ]
