"""The bulk fill stores what ingest would, spread over time, on both databases."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from watchkeep.devtools import bulk_fill
from watchkeep.devtools.bulk_fill import DAY_NS, fill_store, project_id_of
from watchkeep.devtools.synthetic_otlp import MODELS
from watchkeep.store.engine import make_engine
from watchkeep.store.text_search import STATE_NAME

END_NS = 1_790_000_000 * 10**9


def test_fill_stores_ingest_rows_over_the_window_and_replays_add_nothing(database_url: str) -> None:
    project = project_id_of(database_url, f"fill-{uuid.uuid4().hex[:10]}")
    seen: list[int] = []
    assert (
        fill_store(database_url, project, 3000, end_ns=END_NS, days=2.0, seed=7, progress=seen.append) == 3000
    )
    assert seen == sorted(seen)
    assert seen[-1] == 3000
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            spans = conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT trace_id), count(DISTINCT request_model), "
                    "count(DISTINCT environment), count(DISTINCT user_id), "
                    "sum(CASE WHEN status_code = 2 THEN 1 ELSE 0 END), "
                    "min(start_time_unix_nano), max(start_time_unix_nano) FROM spans WHERE project_id = :p"
                ),
                {"p": project},
            ).one()
            payload_chars = conn.execute(
                text(
                    "SELECT count(*), avg(length(input) + length(output)) FROM span_payloads WHERE project_id = :p"
                ),
                {"p": project},
            ).one()
            traces = conn.execute(
                text("SELECT count(*) FROM traces WHERE project_id = :p"), {"p": project}
            ).one()
            indexed_to, newest = conn.execute(
                text(
                    "SELECT (SELECT position FROM search_index_state WHERE name = :n), (SELECT max(id) FROM spans)"
                ),
                {"n": STATE_NAME},
            ).one()
        count, trace_ids, models, envs, users, errors, first, last = spans
        assert count == 3000
        assert 3000 / 7 < trace_ids < 3000 / 2  # several spans a trace
        assert traces[0] == trace_ids
        assert models == len(MODELS)
        assert envs == 2
        assert 100 < users <= 500
        assert 0 < errors < 0.06 * count
        assert END_NS - 2 * DAY_NS <= first < END_NS - DAY_NS
        assert END_NS - DAY_NS < last < END_NS
        assert payload_chars[0] == 3000
        assert payload_chars[1] > 800
        assert indexed_to == newest  # searchable, as the server's indexer would leave it
        # The same seed writes the same ids: nothing new.
        assert fill_store(database_url, project, 3000, end_ns=END_NS, days=2.0, seed=7) == 0
    finally:
        engine.dispose()


def test_bad_sizes_are_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="spans"):
        fill_store(database_url, 1, -1, end_ns=END_NS)
    with pytest.raises(ValueError, match="days"):
        fill_store(database_url, 1, 10, end_ns=END_NS, days=0)


def test_command_line_fills_a_named_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'fill.db'}"
    bulk_fill.main(["--database-url", url, "--project", "bench", "--spans", "700", "--days", "1"])
    assert capsys.readouterr().out.strip() == "700"
    assert project_id_of(url, "bench") >= 1
