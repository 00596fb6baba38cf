"""The import contracts of ``make lint`` hold on the tree and catch what they forbid.

Each check runs ``lint-imports`` with the project's own contracts (pyproject.toml): on
the real package it passes; on a copy with one deliberate upward import or one cycle it
fails, naming the broken contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "watchkeep"
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> dict[str, dict[str, Any]]:
    with CONFIG.open("rb") as f:
        found = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    return {c["id"]: c for c in found}


def lint_imports(source: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts, importing ``watchkeep`` from ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(CONFIG), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def broken(result: subprocess.CompletedProcess[str]) -> set[str]:
    """The names of the contracts the run reports broken."""
    return {line.removesuffix(" BROKEN") for line in result.stdout.splitlines() if line.endswith(" BROKEN")}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package to break, first on the path."""
    shutil.copytree(PACKAGE, tmp_path / "src" / "watchkeep", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "src"


def append(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_an_upward_import_and_a_cycle_fail(copy: Path, tmp_path: Path) -> None:
    store = copy / "watchkeep" / "store"
    append(store / "clock.py", "import watchkeep.api  # store reaching up to the API")
    append(store / "rows.py", "from watchkeep.store import span_writer  # rows <-> writer")
    append(copy / "watchkeep" / "api" / "routes" / "traces.py", "from watchkeep.store import tables")
    append(copy / "watchkeep" / "sdk" / "errors.py", "import watchkeep.config")
    result = lint_imports(copy, tmp_path)
    assert result.returncode != 0
    names = {c: str(contracts()[c]["name"]) for c in ("layers", "store-writes", "acyclic", "routers", "sdk")}
    assert broken(result) == set(names.values()), result.stdout
    assert "watchkeep.store.clock -> watchkeep.api" in result.stdout


def test_a_cycle_the_layers_do_not_name_still_fails(copy: Path, tmp_path: Path) -> None:
    """Two store modules outside the write layers importing each other: only the acyclic
    contract sees it."""
    append(copy / "watchkeep" / "store" / "clock.py", "from watchkeep.store import projects")
    result = lint_imports(copy, tmp_path)
    assert result.returncode != 0
    assert broken(result) == {str(contracts()["acyclic"]["name"])}, result.stdout


def test_every_package_has_its_place() -> None:
    """A package (or top-level module) is placed in the layers or kept out of the SDK and
    the query client (which ship without the server), and
    the map names it: adding one without updating the contracts and docs fails here."""
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} | {
        p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("_")
    }
    layered = {name.strip() for layer in contracts()["layers"]["layers"] for name in str(layer).split("|")}
    assert packages == layered | {"sdk", "client"}
    forbidden_to_sdk = {str(m).removeprefix("watchkeep.") for m in contracts()["sdk"]["forbidden_modules"]}
    assert forbidden_to_sdk == packages - {"sdk", "semconv"}
    forbidden_to_client = {
        str(m).removeprefix("watchkeep.") for m in contracts()["client"]["forbidden_modules"]
    }
    assert forbidden_to_client == packages - {"client"}
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    assert all(f"`{p}`" in architecture for p in packages)
