"""The core imports nothing from the rest of hepbench, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import hepbench.core

CORE = Path(hepbench.core.__file__).parent


def _hepbench_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] if node.module != "hepbench" else [f"hepbench.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.append("." * node.level + (node.module or ""))  # relative: listed so the test names it
    return [n for n in names if n == "hepbench" or n.startswith(("hepbench.", "."))]


def test_core_modules_import_only_the_core():
    outside = {
        p.name: [n for n in _hepbench_imports(p) if not n.startswith("hepbench.core")]
        for p in sorted(CORE.glob("*.py"))
    }
    assert {name: found for name, found in outside.items() if found} == {}


def test_the_package_docstring_lists_every_core_module():
    listed = {line.split()[0] for line in hepbench.core.__doc__.splitlines()[1:] if line.strip()}
    assert listed == {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"}
