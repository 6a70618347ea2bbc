"""Size limits of the package's code: no function over 150 lines, no module over 800 lines.

A function's length is counted from its ``def`` (or first decorator) to its last line,
nested functions included; a module's is its line count. The offenders are printed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kg2tool

PACKAGE = Path(kg2tool.__file__).parent
MAX_FUNCTION_LINES = 150
MAX_MODULE_LINES = 800


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _long_functions(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines) of the functions in ``path`` over the limit."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                    lines = (child.end_lineno or child.lineno) - start + 1
                    if lines > MAX_FUNCTION_LINES:
                        found.append((name, lines))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _offenders() -> list[str]:
    out = []
    for path in _modules():
        rel = path.relative_to(PACKAGE.parent)
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{rel}: module of {n} lines (limit {MAX_MODULE_LINES})")
        for name, lines in _long_functions(path):
            out.append(f"{rel}: {name} is {lines} lines (limit {MAX_FUNCTION_LINES})")
    return out


def test_long_function_is_found(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    path = tmp_path / "m.py"
    path.write_text(f"class C:\n    def short(self):\n        pass\n\n\ndef long():\n{body}\n")
    assert _long_functions(path) == [("long", MAX_FUNCTION_LINES + 1)]


def test_no_function_or_module_over_the_limits() -> None:
    offenders = _offenders()
    print("\n".join(offenders))
    assert not offenders, "\n" + "\n".join(offenders)
