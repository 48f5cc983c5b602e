"""Every `with pytest.raises(...)` in tests/ checks which error it caught: a `match=`, or an `as NAME`
that the function reads after the block. A bare type passes on any error of that type, the wrong one
included (a ValueError from a typo, SystemExit(1) where 2 was meant)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_raises(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "raises"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "pytest"
    )


def read_after(scope: ast.AST, name: str, block: ast.With) -> bool:
    """Whether `scope` reads `name` after `block` and before anything binds it again."""
    end = (block.end_lineno, block.end_col_offset)
    uses = sorted(
        ((n.lineno, n.col_offset), isinstance(n.ctx, ast.Load))
        for n in ast.walk(scope)
        if isinstance(n, ast.Name) and n.id == name and (n.lineno, n.col_offset) > end
    )
    return bool(uses) and uses[0][1]


def unchecked(tree: ast.Module) -> list[int]:
    """The lines of the `with pytest.raises(...)` items in `tree` that check nothing."""
    lines = []
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    for scope in scopes:
        # The blocks of this scope alone: a nested function is a scope of its own.
        todo, blocks = list(ast.iter_child_nodes(scope)), []
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.With, ast.AsyncWith)):
                blocks.append(node)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                todo.extend(ast.iter_child_nodes(node))
        for block in blocks:
            for item in block.items:
                if not is_raises(item.context_expr) or any(k.arg == "match" for k in item.context_expr.keywords):
                    continue
                name = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
                if name is None or not read_after(scope, name, block):
                    lines.append(item.context_expr.lineno)
    return sorted(lines)


def test_every_pytest_raises_checks_the_error_it_caught():
    found = {path: unchecked(ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(TESTS.rglob("*.py"))}
    assert len(found) > 50  # the glob found the tests
    bad = [f"{path.relative_to(TESTS.parent)}:{line}" for path, lines in found.items() for line in lines]
    assert not bad, "pytest.raises without a match= or a read of its `as` name:\n" + "\n".join(bad)


def test_the_check_tells_a_checked_raises_from_an_unchecked_one():
    source = """
def checked():
    with pytest.raises(ValueError, match="bad"):
        f()
    with pytest.raises(SystemExit) as e:
        f()
    assert e.value.code == 2

def unchecked():
    with pytest.raises(ValueError):
        f()
    with pytest.raises(KeyError) as e:
        f()
    with pytest.raises(SystemExit) as e:
        f()
    assert e.value.code == 2
    with open("x") as f, pytest.raises(OSError) as never_read:
        f()

def reads_it_elsewhere():
    e = 1
    with pytest.raises(KeyError) as e:
        f()

def f():
    return e
"""
    assert unchecked(ast.parse(source)) == [10, 12, 17, 22]
