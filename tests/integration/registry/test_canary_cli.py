"""``watchkeep registry canary``: start, list, show, stop and its refusals, on both databases."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.support.registry_cli import cli_env, ok_registry, run_registry


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's database; returns a fresh project name."""
    return cli_env(database_url, tmp_path, monkeypatch, "can")


_run = run_registry
_ok = ok_registry


def test_canary_commands(env: str) -> None:
    p = ("--project", env)
    for i in range(2):
        _ok("models", "register", "bot", "--backend", "mock", "--param", f"temperature={i}", *p)
    _ok("move", "bot", "production", "1", "--reason", "first", *p)
    _ok("move", "bot", "canary", "2", "--reason", "try", *p)

    refused = _run("canary", "start", "bot", "--route", "chat", "--metric", "p99", *p)
    assert refused.exit_code == 1
    assert "unknown canary metric" in refused.stderr
    out = _ok(
        "canary", "start", "bot", "--route", "chat", "--metric", "error_rate", "--metric", "score:ok", *p
    )
    assert "v2 vs v1 on chat" in out
    canary_id = out.split()[2].rstrip(":")
    again = _run("canary", "start", "bot", "--route", "chat", *p)
    assert again.exit_code == 1
    assert "already running" in again.stderr

    listed = _ok("canary", "list", "--status", "running", *p)
    assert f"{canary_id}\trunning\tbot v2 (canary) vs v1 (production)\troute chat" in listed
    shown = _ok("canary", "show", canary_id, *p)
    assert "score:ok" in shown
    assert "Continue" in shown
    assert "stopped" in _ok("canary", "stop", canary_id, "--reason", "enough", *p)
    assert _run("canary", "stop", canary_id, *p).exit_code == 1
    assert "stopped by cli: enough" in _ok("canary", "show", canary_id, *p)
    other = f"other-{uuid.uuid4().hex[:8]}"
    _ok("models", "register", "x", "--backend", "mock", "--project", other)
    missing = _run("canary", "show", canary_id, "--project", other)
    assert missing.exit_code == 1
    assert "no canary" in missing.stderr
