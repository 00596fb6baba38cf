"""Erasure and export of a data subject on both databases: after erasure no row of the
project holds the user id (every table's every column scanned, the search index and the
audit log included), the same user in another project keeps everything, another
project's admin key erases and exports nothing, and the CLI does the same."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, text
from typer.testing import CliRunner

import watchkeep.store.eval_tables
import watchkeep.store.privacy_tables
import watchkeep.store.registry_tables  # noqa: F401  (their tables join the metadata)
from tests.integration.test_retention import NOW, count, seed_eval, seed_trace
from tests.support.apps import Api
from watchkeep.cli.main import app as cli
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.eval_tables import dataset_items, eval_results
from watchkeep.store.privacy_tables import audit_events
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.tables import (
    activity,
    annotation_items,
    annotation_labels,
    annotation_queues,
    comments,
    metadata,
    scores,
    span_payloads,
    spans,
    traces,
    users,
)


def seed_subject(conn: Connection, project_id: int, user_id: str) -> list[str]:
    """Two traces of ``user_id`` (their words name the user too) with everything tied to
    them: scores, eval result, dataset item, comment, activity, annotation; returns their ids."""
    found = []
    for _ in range(2):
        trace_id, _ = seed_trace(conn, project_id, at_ns=NOW, user_id=user_id, words=f"I am {user_id}")
        found.append(trace_id)
    seed_eval(conn, project_id, at_ns=NOW, trace_id=found[0], words=user_id)
    conn.execute(
        comments.insert().values(
            project_id=project_id,
            target_kind="trace",
            target_id=found[0],
            author_name="ann",
            body=f"about {user_id}",
            created_at_unix_nano=NOW,
        )
    )
    conn.execute(
        activity.insert().values(
            project_id=project_id,
            actor="ann",
            verb="commented",
            target_kind="trace",
            target_id=found[0],
            summary=f"about {user_id}",
            created_at_unix_nano=NOW,
        )
    )
    annotator = conn.execute(
        users.insert()
        .values(email=f"{uuid.uuid4().hex[:8]}@example.org", display_name="ann", created_at_unix_nano=NOW)
        .returning(users.c.id)
    ).scalar_one()
    queue = conn.execute(
        annotation_queues.insert()
        .values(
            project_id=project_id,
            name=f"q-{uuid.uuid4().hex[:6]}",
            score_name="ok",
            labels=["yes", "no"],
            annotators_per_item=1,
            created_at_unix_nano=NOW,
        )
        .returning(annotation_queues.c.id)
    ).scalar_one()
    item = conn.execute(
        annotation_items.insert()
        .values(
            queue_id=queue, project_id=project_id, trace_id=found[1], position=0, created_at_unix_nano=NOW
        )
        .returning(annotation_items.c.id)
    ).scalar_one()
    conn.execute(
        annotation_labels.insert().values(
            item_id=item,
            queue_id=queue,
            project_id=project_id,
            user_id=annotator,
            label="yes",
            comment=f"said {user_id}",
            created_at_unix_nano=NOW,
            updated_at_unix_nano=NOW,
        )
    )
    return found


def rows_naming(engine: Engine, needle: str, *, spare_project: int) -> list[str]:
    """Every table (and column) that holds ``needle`` outside ``spare_project``."""
    hits = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                if row.get("project_id") == spare_project:
                    continue
                hits += [f"{table.name}.{k}" for k, v in row.items() if needle in str(v)]
        search = (
            "SELECT body FROM search_fts WHERE project_id != :p"
            if is_sqlite(engine.url.drivername)
            else "SELECT document::text FROM search_documents WHERE project_id != :p"
        )
        hits += [
            "search" for (body,) in conn.execute(text(search), {"p": spare_project}) if needle in str(body)
        ]
    return hits


def kinds(lines: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        out[line.get("type", "_end")] = out.get(line.get("type", "_end"), 0) + 1
    return out


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_erasure_leaves_no_row_naming_the_user_and_spares_other_projects(api: Api, engine: Engine) -> None:
    name = f"er-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {api.key_for('admin', name)}"}
    mine = ProjectRepository(engine).get_or_create(name).id
    other_name = f"er-{uuid.uuid4().hex[:8]}"
    other_admin = {"Authorization": f"Bearer {api.key_for('admin', other_name)}"}
    other = ProjectRepository(engine).get_or_create(other_name).id
    user_id = f"subj{uuid.uuid4().hex}"
    with engine.begin() as conn:
        seed_subject(conn, mine, user_id)
        seed_subject(conn, other, user_id)
        seed_trace(conn, mine, at_ns=NOW, user_id="someone-else")
    kept_before = {t.name: count(engine, t, other) for t in (spans, span_payloads, traces, scores, comments)}

    # The attack first: the other project's admin erases "the same user" in its project only.
    member = {"Authorization": f"Bearer {api.key_for('member', name)}"}
    url = f"/api/v1/privacy/subjects/{user_id}"
    assert api.client.post(f"{url}/erase", headers=member).status_code == 403
    assert api.client.get(f"{url}/export", headers=member).status_code == 403

    exported = api.client.get(f"{url}/export", headers=admin)
    assert exported.status_code == 200
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert kinds(lines) == {
        "trace": 2,
        "span": 4,
        "score": 2,
        "annotation": 1,
        "comment": 1,
        "dataset_item": 1,
        "eval_result": 1,
        "_end": 1,
    }
    assert lines[-1] == {"_end": True, "count": 12}
    (result,) = [line["row"] for line in lines if line.get("type") == "eval_result"]
    assert user_id in str(result["input"])  # opened, as the spans' payloads are
    assert all(
        user_id in line["row"]["input"] for line in lines if line.get("type") == "span"
    )  # payloads included

    erased = api.client.post(f"{url}/erase", headers=admin)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["rows"]["spans"] == 4
    assert body["rows"]["traces"] == 2
    assert body["rows"]["dataset_items"] == 1
    assert body["rows"]["eval_results"] == 1
    assert rows_naming(engine, user_id, spare_project=other) == []
    assert count(engine, spans, mine) == 2  # someone else's trace stays
    assert {
        t.name: count(engine, t, other) for t in (spans, span_payloads, traces, scores, comments)
    } == kept_before
    assert (count(engine, dataset_items, other), count(engine, eval_results, other)) == (1, 1)
    assert count(engine, annotation_labels, other) == 1

    with engine.connect() as conn:
        audited = conn.execute(
            select(audit_events.c.target, audit_events.c.after).where(
                audit_events.c.project_id == mine, audit_events.c.action == "subject.erase"
            )
        ).all()
    assert [a.target for a in audited] == [f"user:{body['subject']}"]
    assert user_id not in body["subject"]
    # Erased: the export is empty now; the other project's admin still sees its own copy.
    assert api.client.get(f"{url}/export", headers=admin).text.strip() == '{"_end":true,"count":0}'
    assert '"count":12' in api.client.get(f"{url}/export", headers=other_admin).text
    assert api.client.post(f"/api/v1/privacy/subjects/{'x' * 300}/erase", headers=admin).status_code == 422
    assert api.client.get("/api/v1/privacy/subjects/a%01b/export", headers=admin).status_code == 422


def test_the_cli_erases_and_exports_a_subject(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("WATCHKEEP_HOME", str(tmp_path))  # the PII hash key file goes there
    name = f"er-{uuid.uuid4().hex[:8]}"
    mine = ProjectRepository(engine).get_or_create(name).id
    user_id = f"subj{uuid.uuid4().hex}"
    with engine.begin() as conn:
        seed_subject(conn, mine, user_id)
    runner = CliRunner()
    out = tmp_path / "subject.jsonl"
    exported = runner.invoke(cli, ["privacy", "export", user_id, "--project", name, "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text().splitlines()) == 12  # the API export, without its trailer
    assert runner.invoke(cli, ["privacy", "erase", user_id, "--project", name], input="n\n").exit_code == 1
    assert count(engine, spans, mine) == 4  # not confirmed: nothing erased
    erased = runner.invoke(cli, ["privacy", "erase", user_id, "--project", name, "--yes"])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout)["rows"]["spans"] == 4
    assert count(engine, spans, mine) == 0
    assert (
        runner.invoke(cli, ["privacy", "erase", user_id, "--project", "no-such-project", "--yes"]).exit_code
        == 1
    )

    shown = runner.invoke(cli, ["privacy", "retention", "set", "--project", name, "--spans", "30"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["spans"] == 30
    bad = runner.invoke(cli, ["privacy", "retention", "set", "--project", name, "--scores", "0"])
    assert bad.exit_code == 2
    show = runner.invoke(cli, ["privacy", "retention", "show", "--project", name])
    assert json.loads(show.stdout) == {
        "spans": 30,
        "payloads": None,
        "scores": None,
        "eval_items": None,
        "alerts": None,
    }
