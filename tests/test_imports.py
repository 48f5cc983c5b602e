"""The package's import graph: no cycles, imports only downward, and no heavy library behind `hepbench --help`.

The graph is read from the source (ast), not by importing: an edge is a module-level
`import hepbench.x` / `from hepbench.x import y` (y counts as a module when it is one). Imports
inside functions are left out on purpose: those are the deliberate lazy ones (TensorFlow, Ray, ...).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hepbench"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, importer: str) -> str | None:
    if node.level == 0:
        return node.module
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def module_level_imports(name: str) -> set[str]:
    """The hepbench modules `name` imports at module level (also inside if/try at that level)."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found: set[str] = set()

    def visit(statements):
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "hepbench")
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(node, name)
                if target and target.split(".")[0] == "hepbench":
                    submodules = {f"{target}.{a.name}" for a in node.names} & MODULES.keys()
                    found.update(submodules)
                    if len(submodules) < len(node.names):  # some names are the module's own
                        found.add(target)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for block in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, block, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(tree.body)
    # A module's own packages are left out: Python imports them first whatever the module says.
    return {m for m in found if m in MODULES and m != name and not name.startswith(m + ".")}


GRAPH = {name: module_level_imports(name) for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state and (cycle := walk(child)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_from_imports_of_submodules():
    # `from hepbench.mlpf.run import cli as run_cli` is an edge to the submodule.
    assert "hepbench.mlpf.run.cli" in GRAPH["hepbench.mlpf.cli"]


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# (importer, what it must not import): the workloads import only downward (core <- mlpf <- hpo,
# core <- qsvr <- hpo); hepbench.core imports nothing of hepbench's but the package (its version).
LAYERS = [
    ("hepbench.mlpf", ("hepbench.qsvr", "hepbench.hpo", "hepbench.cli")),
    ("hepbench.qsvr", ("hepbench.mlpf", "hepbench.hpo", "hepbench.cli")),
    ("hepbench.hpo", ("hepbench.cli",)),
]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            for layer, forbidden in LAYERS:
                if _under(importer, layer) and any(_under(target, f) for f in forbidden):
                    bad.append(f"{importer} imports {target}")
            if _under(importer, "hepbench.core") and not _under(target, "hepbench.core") and target != "hepbench":
                bad.append(f"{importer} imports {target} (core depends on nothing of hepbench's)")
            if target == "hepbench.cli" and importer != "hepbench.__main__":
                bad.append(f"{importer} imports hepbench.cli (only __main__ may)")
    return sorted(set(bad))


def test_layer_rules_are_enforced_on_a_made_up_graph():
    graph = {
        "hepbench.core.files": {"hepbench.mlpf.config"},
        "hepbench.qsvr.model": {"hepbench.mlpf.run.plan"},
        "hepbench.mlpf.run.cli": {"hepbench.cli"},
        "hepbench.hpo.bench": {"hepbench.mlpf.config"},
    }
    assert layer_violations(graph) == [
        "hepbench.core.files imports hepbench.mlpf.config (core depends on nothing of hepbench's)",
        "hepbench.mlpf.run.cli imports hepbench.cli",
        "hepbench.mlpf.run.cli imports hepbench.cli (only __main__ may)",
        "hepbench.qsvr.model imports hepbench.mlpf.run.plan",
    ]


def test_imports_go_only_downward():
    assert layer_violations(GRAPH) == []


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    probe = f"import sys; {code}; print(sorted(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return eval(out.strip())  # a list literal printed by the probe


HEAVY = (
    "tensorflow",
    "ray",
    "sklearn",
    "dimod",
    "matplotlib",
    "tensorflow_datasets",
    "keras",
    "horovod",
    "jax",
    "torch",
)


@pytest.mark.parametrize(
    "code",
    [
        "import hepbench.cli",
        "from hepbench.cli import build_parser; build_parser().format_help()",
    ],
)
def test_the_command_line_loads_no_heavy_library(code):
    assert _loaded_after(code, HEAVY) == []


def test_the_coordinating_process_never_imports_a_framework():
    # benchmark.py starts the copies and writes the report; a framework would cost it seconds and memory,
    # and Keras would fix its backend before a copy could choose one.
    assert _loaded_after("import hepbench.mlpf.run.benchmark, hepbench.mlpf.run.scale", HEAVY) == []


def test_a_copy_process_imports_no_framework_before_it_selects_its_backend():
    # worker.py's module-level imports run before run_copy calls engines.backends.select_backend.
    assert _loaded_after("import hepbench.mlpf.run.worker, hepbench.mlpf.engines.backends", HEAVY) == []
