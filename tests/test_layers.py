"""The package's layers hold: no stage imports a stage above it, and the test oracles stay out
of the product (the contracts are declared in pyproject.toml, checked by import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_import_contracts_are_kept() -> None:
    pytest.importorskip("importlinter")
    got = _lint(ROOT / "pyproject.toml")
    assert got.returncode == 0, got.stdout[-4000:] + got.stderr[-2000:]
    assert "0 broken" in got.stdout


def test_a_backward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The check is not blind: a contract that puts the CLI below the graph fails."""
    pytest.importorskip("importlinter")
    config = tmp_path / "pyproject.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "kg2tool"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "upside down"\ntype = "layers"\nlayers = ["kg2tool.kg", "kg2tool.cli"]\n'
    )
    got = _lint(config)
    assert got.returncode != 0
    assert "kg2tool.cli is not allowed to import kg2tool.kg" in got.stdout


def test_readme_layout_names_every_module() -> None:
    """The README's layout section names every module and subpackage of the package, so the
    picture a newcomer reads stays the tree that is there."""
    import re

    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout of the code", 1)[1].split("\n## ", 1)[0]
    words = set(re.findall(r"[a-z_]+", block))
    pkg = ROOT / "python" / "kg2tool"
    missing = sorted(
        str(p.relative_to(pkg))
        for p in [*pkg.rglob("*.py"), *(d for d in pkg.iterdir() if (d / "__init__.py").exists())]
        if p.stem != "__init__" and p.stem not in words and "data" not in p.parts
    )
    assert not missing, f"README layout section does not name: {missing}"
