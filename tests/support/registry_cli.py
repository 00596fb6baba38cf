"""Running ``watchkeep registry ...`` in-process against the test's database."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from watchkeep.cli.main import app


def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str) -> str:
    """Point the CLI at ``database_url``; returns a fresh project name."""
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("WATCHKEEP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WATCHKEEP_ACTOR", raising=False)
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_registry(*args: str) -> Any:
    """``watchkeep registry ARGS``'s result."""
    return CliRunner().invoke(app, ["registry", *args])


def ok_registry(*args: str) -> str:
    """``watchkeep registry ARGS``'s output; fails the test on a non-zero exit."""
    result = run_registry(*args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)
