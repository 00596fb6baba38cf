"""``watchkeep datasets import`` redacts PII under the project's policy, as the API does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.tenant import unique
from typer.testing import CliRunner

from watchkeep.cli.main import app


@pytest.fixture
def runner(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("WATCHKEEP_PROJECT", unique("cli-ds-pii"))
    monkeypatch.setenv("WATCHKEEP_HOME", str(tmp_path / "home"))
    return CliRunner()


ROW = {
    "input": "Mail bob@example.com, card 4111 1111 1111 1111",
    "expected": {"reply": "call +49 30 901820"},
    "metadata": {"from": "ann@example.org"},
}


def test_imported_items_are_stored_redacted(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "pii.jsonl"
    source.write_text(json.dumps(ROW) + "\n")
    done = runner.invoke(app, ["datasets", "import", "support", str(source)])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(app, ["datasets", "show", "support"])
    assert shown.exit_code == 0, shown.output
    item = json.loads(shown.stdout.strip().splitlines()[-1])
    assert item["input"] == "Mail [EMAIL], card [CARD]"
    assert item["expected"] == {"reply": "call [PHONE]"}
    assert item["metadata"]["from"] == "[EMAIL]"
    for raw in ("bob@example.com", "4111 1111 1111 1111", "901820", "ann@example.org"):
        assert raw not in shown.stdout


def test_import_keeps_pii_when_redaction_is_off(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEP_PII_REDACTION", "0")
    source = tmp_path / "pii.jsonl"
    source.write_text(json.dumps(ROW) + "\n")
    assert runner.invoke(app, ["datasets", "import", "raw", str(source)]).exit_code == 0
    shown = runner.invoke(app, ["datasets", "show", "raw"])
    assert "bob@example.com" in shown.stdout
