"""``watchkeep datasets``: import, list, versions, show, export, diff and from-traces."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.support.apps import Api
from tests.support.otlp_json import SEC
from tests.support.otlp_post import post_spans
from tests.support.people import project_of_key
from tests.support.query_data import llm_trace
from tests.support.tenant import unique
from typer.testing import CliRunner

from watchkeep.cli.main import app
from watchkeep.evals.datasets import parse_items
from watchkeep.store.engine import make_engine
from watchkeep.store.tables import projects


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("WATCHKEEP_PROJECT", unique("cli-ds"))
    return CliRunner()


def _write(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [{"id": f"q{i}", "input": f"question {i}", "expected": f"answer {i}"} for i in range(10)]


def test_import_export_round_trip_and_diff(runner: CliRunner, tmp_path: Path) -> None:
    first = _write(tmp_path / "qa.jsonl", ROWS)
    result = runner.invoke(
        app, ["datasets", "import", "qa", str(first), "--split-by", "train=0.7,test=0.3", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "qa v1 (new)  10 items" in result.output
    # The same file again is the same version.
    again = runner.invoke(
        app, ["datasets", "import", "qa", str(first), "--split-by", "train=0.7,test=0.3", "--seed", "1"]
    )
    assert "qa v1 (unchanged" in again.output

    changed = [*ROWS[1:], {"id": "q10", "input": "new"}]
    changed[0] = {**changed[0], "expected": "a better answer"}
    second = runner.invoke(
        app, ["datasets", "import", "qa", str(_write(tmp_path / "v2.jsonl", changed)), "-m", "fix q1"]
    )
    assert second.exit_code == 0, second.output
    assert "qa v2 (new)" in second.output

    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"out.{fmt}"
        exported = runner.invoke(app, ["datasets", "export", "qa", "--version", "1", "--output", str(out)])
        assert exported.exit_code == 0, exported.output
        items = parse_items(out.read_bytes(), fmt).items
        assert [i.key for i in items] == [r["id"] for r in ROWS]
        assert {i.split for i in items} == {"train", "test"}
        # Re-importing the export is the same content: no new version.
        back = runner.invoke(app, ["datasets", "import", "qa", str(out)])
        assert "qa v1 (unchanged" in back.output, back.output

    diff = runner.invoke(app, ["datasets", "diff", "qa", "1", "2"])
    assert diff.exit_code == 0, diff.output
    assert "1 added, 1 removed, 9 changed, 0 unchanged" in diff.output  # v2 has no splits
    assert "+ q10" in diff.output
    assert "- q0" in diff.output

    versions = runner.invoke(app, ["datasets", "versions", "qa"])
    assert versions.output.index("qa v2") < versions.output.index("qa v1")
    assert "fix q1" in versions.output
    listed = runner.invoke(app, ["datasets", "list"])
    assert "qa v2" in listed.output
    assert "versions=2" in listed.output
    shown = runner.invoke(app, ["datasets", "show", "qa", "--limit", "2"])
    lines = shown.output.splitlines()
    assert lines[0].startswith("qa v2")
    assert json.loads(lines[1])["key"] == "q1"
    assert len(lines) == 3


def test_bad_files_and_lookups_fail_clearly(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ok"}\n{"expected": "no input"}\nnot json\n')
    result = runner.invoke(app, ["datasets", "import", "bad", str(bad)])
    assert result.exit_code == 1
    assert "row 2: input is required" in result.output
    assert "row 3: not JSON" in result.output
    skipped = runner.invoke(app, ["datasets", "import", "bad", str(bad), "--skip-invalid"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 2 invalid rows" in skipped.output
    assert "bad v1 (new)  1 items" in skipped.output
    unknown = runner.invoke(app, ["datasets", "import", "x", str(tmp_path / "bad.jsonl"), "--format", "xml"])
    assert unknown.exit_code == 1
    assert "unknown format" in unknown.output
    assert runner.invoke(app, ["datasets", "show", "missing"]).exit_code == 1
    missing = runner.invoke(app, ["datasets", "show", "bad", "--version", "7"])
    assert missing.exit_code == 1
    assert "no version 7" in missing.output
    other = runner.invoke(app, ["datasets", "list", "--project", unique("nobody")])
    assert other.exit_code == 1
    assert "no project" in other.output


def test_from_traces(runner: CliRunner, api: Api) -> None:
    t0 = (time.time_ns() // SEC - 600) * SEC
    spans: list[dict[str, object]] = []
    for n in range(1, 5):
        spans += llm_trace(n, t0 + n * SEC)
    post_spans(api.client, api.key, spans)
    engine = make_engine(api.database_url)
    try:
        project_id = project_of_key(engine, api.key)[0]
        with engine.connect() as conn:
            name = conn.execute(select(projects.c.name).where(projects.c.id == project_id)).scalar_one()
    finally:
        engine.dispose()
    result = runner.invoke(app, ["datasets", "from-traces", "prod", "--model", "gpt-4o", "--project", name])
    assert result.exit_code == 0, result.output
    assert "prod v1 (new)  2 items" in result.output
    none = runner.invoke(app, ["datasets", "from-traces", "prod", "--user", "nobody", "--project", name])
    assert none.exit_code == 1
    assert "no trace matched" in none.output
