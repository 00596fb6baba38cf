"""Encryption at rest end to end: payloads, dataset items, channel secrets and evaluation
outputs are stored sealed, read back in plain form, bound to their project, rotated to a new
key, and (the proof of issue 16) absent in plain form from the SQLite file, its WAL and every
PostgreSQL row."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, select, text, update
from typer.testing import CliRunner

from tests.support.databases import fresh_database_url
from tests.support.keys import new_key as new_api_key
from tests.support.otlp_json import SEC, attr
from tests.support.otlp_post import post_spans
from tests.support.people import project_of_key
from watchkeep.app import create_app
from watchkeep.cli.main import app as cli
from watchkeep.config import Settings
from watchkeep.evals.dataset_repository import DatasetRepository
from watchkeep.evals.model import DatasetItem, ItemResult, TargetReply
from watchkeep.evals.run_repository import RunRepository
from watchkeep.monitor.features import FeatureLoader, FeatureRequest
from watchkeep.monitor.metric_queries import MetricFilter
from watchkeep.monitor.repository import ChannelRepository
from watchkeep.security.audit import AuditLog
from watchkeep.security.crypto import DecryptionError, Keyring, new_key
from watchkeep.security.rotation import Rotation
from watchkeep.security.secure_mode import InsecureConfiguration
from watchkeep.store.engine import make_engine
from watchkeep.store.eval_tables import eval_results
from watchkeep.store.migrate import upgrade
from watchkeep.store.tables import alert_channels, span_payloads
from watchkeep.store.trace_queries import TraceQueries


def _trace(trace_id: str, prompt: str, answer: str) -> list[dict[str, object]]:
    start = time.time_ns() - 60 * SEC
    return [
        {
            "traceId": trace_id,
            "spanId": trace_id[:16],
            "name": "chat",
            "kind": 3,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + SEC // 4),
            "attributes": [
                attr("gen_ai.operation.name", "chat"),
                attr("gen_ai.request.model", "gpt-4o"),
                attr("watchkeep.input", prompt),
                attr("watchkeep.output", answer),
            ],
        }
    ]


def _card() -> str:
    """A card number unique to this test (valid Luhn), so a scan of a shared database finds only ours."""
    body = "4" + "".join(random.choice("0123456789") for _ in range(14))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


class Seeded:
    """What one encrypted server stored: unique texts to look for, and where they went."""

    def __init__(self, database_url: str, key: str) -> None:
        self.database_url = database_url
        self.key = key
        tag = uuid.uuid4().hex[:12]
        self.card = _card()
        self.prompt = f"confidential-prompt-{tag} ask alice.{tag}@example.com about card {self.card}"
        self.answer = f"confidential-answer-{tag}"
        self.item_text = f"dataset-item-{tag}"
        self.secret = f"channel-secret-{tag}-xyz"
        self.eval_input = f"eval-input-{tag}"
        self.completion = f"eval-completion-{tag}"
        self.trace_id = uuid.uuid4().hex
        self.api_key = new_api_key(database_url)
        self.other_key = new_api_key(database_url)

    @property
    def plain(self) -> list[str]:
        return [
            self.prompt.split()[0],
            f"alice.{self.prompt.split()[0][-12:]}",
            self.card,
            self.answer,
            self.item_text,
            self.secret,
            self.eval_input,
            self.completion,
        ]


def _settings(database_url: str, home: Path, key: str, pii: bool = False, **extra: object) -> Settings:
    return Settings(
        home=home,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=0,
        pii_redaction=pii,  # off by default here: the proof is about encryption alone
        encryption_key=SecretStr(key),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> Seeded:
    """A server with an encryption key took a trace, a dataset item and a channel secret."""
    return _seed(database_url, tmp_path)


@pytest.fixture
def seeded_alone(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Seeded:
    """``seeded`` in a database of its own: a rotation re-seals every row of a database, and
    the session's shared one holds rows other test files sealed with keys this file never
    sees (``test_search``'s, when the two share an xdist worker)."""
    url = fresh_database_url(request, database_url, tmp_path)
    for engine in _engine(url):
        upgrade(engine)
    return _seed(url, tmp_path)


def _seed(database_url: str, tmp_path: Path) -> Seeded:
    s = Seeded(database_url, new_key())
    app = create_app(_settings(database_url, tmp_path, s.key))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        post_spans(client, s.api_key, _trace(s.trace_id, s.prompt, s.answer))
        detail = client.get(f"/api/v1/traces/{s.trace_id}", headers={"Authorization": f"Bearer {s.api_key}"})
        assert detail.status_code == 200, detail.text
        assert s.prompt in detail.text  # read back in plain form
        assert s.answer in detail.text
        services = app.state.services
        project = project_of_key(services.engine, s.api_key)[0]
        services.datasets.create_version(
            project, f"ds-{s.trace_id[:8]}", [DatasetItem("k1", s.item_text, "x")]
        )
        services.monitoring.channels.upsert(
            project, "hook", "webhook", {"url": "https://e.test", "secret": s.secret}
        )
        assert services.monitoring.channels.all(project)[0]["config"]["secret"] == s.secret
        runs = services.eval_runs  # an evaluation result and a cached reply hold the completion
        run = runs.create_run(
            project, name="r", dataset_version_id=None, target={}, target_version="v",
            config={}, config_hash="h", seed=1, cases_total=1,
        )  # fmt: skip
        sent = ({"role": "user", "content": s.eval_input},)
        runs.add_results(project, run.id, [ItemResult("k1", 0, "", None, sent, s.completion)])
        runs.cache_put(project, {f"c-{s.trace_id}": TargetReply(s.completion)})
        assert [(r.messages, r.output) for r in runs.all_results(project, run.id)] == [(sent, s.completion)]
        assert runs.cache_get(project, [f"c-{s.trace_id}"])[f"c-{s.trace_id}"].output == s.completion
    return s


def _engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _stored_text(engine: Engine) -> str:
    """Every row of every table as text (PostgreSQL), or the SQLite file and its WAL as bytes."""
    if engine.url.get_backend_name() == "sqlite":
        db = Path(str(engine.url.database))
        parts = [p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        return b"".join(parts).decode("latin-1")
    out: list[str] = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [
                str(v) for v in conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).scalars()
            ]
    return "\n".join(out)


def test_no_seeded_text_is_stored_in_plain_form(seeded: Seeded) -> None:
    for engine in _engine(seeded.database_url):
        with engine.connect() as conn:
            stored = conn.execute(
                select(span_payloads.c.input).where(span_payloads.c.trace_id == seeded.trace_id)
            ).scalar_one()
        assert stored.startswith("wkenc:v2:")
        dump = _stored_text(engine)
        assert "wkenc:v2:" in dump  # the scan sees the sealed values themselves
        for plain in seeded.plain:
            assert plain not in dump, plain


def test_a_ciphertext_copied_into_another_projects_row_does_not_open(seeded: Seeded, tmp_path: Path) -> None:
    # The attack: a tenant with database write access (or a bug) moves project A's sealed
    # prompt into project B's payload row; B's reader must fail, never show A's text.
    app = create_app(_settings(seeded.database_url, tmp_path, seeded.key))
    other_trace = uuid.uuid4().hex
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        post_spans(client, seeded.other_key, _trace(other_trace, "b's own prompt", "b's answer"))
    for engine in _engine(seeded.database_url):
        p = span_payloads.c
        with engine.begin() as conn:
            stolen = conn.execute(select(p.input).where(p.trace_id == seeded.trace_id)).scalar_one()
            conn.execute(update(span_payloads).where(p.trace_id == other_trace).values(input=stolen))
        other_project = project_of_key(engine, seeded.other_key)[0]
        try:
            with pytest.raises(DecryptionError, match="failed authentication"):
                TraceQueries(engine, sealer=Keyring.from_keys(seeded.key)).get_trace(
                    other_project, other_trace
                )
        finally:  # no row that can never open is left for the other tests' rotations
            with engine.begin() as conn:
                conn.execute(update(span_payloads).where(p.trace_id == other_trace).values(input=None))


def test_rotation_then_dropping_the_old_key_still_reads_everything(
    seeded_alone: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seeded_alone
    fresh = new_key()
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", seeded.database_url)
    monkeypatch.setenv("WATCHKEEP_ENCRYPTION_KEY", fresh)
    monkeypatch.setenv("WATCHKEEP_ENCRYPTION_PREVIOUS_KEYS", seeded.key)
    done = CliRunner().invoke(cli, ["keys", "rotate-encryption", "--batch", "1"])
    assert done.exit_code == 0, done.output
    assert "span_payloads.input:" in done.output
    assert "alert_channels.config:" in done.output
    assert "eval_results.output:" in done.output
    assert "eval_output_cache.reply:" in done.output
    only_new = Keyring.from_keys(fresh)
    for engine in _engine(seeded.database_url):
        rotations = [e for e in AuditLog(engine).entries(action="keys.rotate_encryption", limit=1000)]
        assert any(e.target == f"key:{Keyring.from_keys(fresh).current_id}" for e in rotations)
    for engine in _engine(seeded.database_url):
        project = project_of_key(engine, seeded.api_key)[0]
        trace = TraceQueries(engine, sealer=only_new).get_trace(project, seeded.trace_id)
        assert trace is not None
        assert [s["input"] for s in trace["spans"]] == [seeded.prompt]
        datasets = DatasetRepository(engine, sealer=only_new)
        version = datasets.resolve(project, f"ds-{seeded.trace_id[:8]}")
        assert datasets.items(project, version.id)[0].input == seeded.item_text
        (channel,) = ChannelRepository(engine, sealer=only_new).all(project)
        assert channel["config"]["secret"] == seeded.secret
        with engine.connect() as conn:
            raw = conn.execute(select(alert_channels.c.config).where(alert_channels.c.project_id == project))
            assert f":{only_new.current_id}:" in raw.scalar_one()["secret"]
        runs = RunRepository(engine, sealer=only_new)  # evaluation results and cached replies
        assert (
            runs.cache_get(project, [f"c-{seeded.trace_id}"])[f"c-{seeded.trace_id}"].output
            == seeded.completion
        )
        with engine.connect() as conn:
            run_id = conn.execute(
                select(eval_results.c.run_id).where(eval_results.c.project_id == project)
            ).scalar_one()
        assert [r.output for r in runs.all_results(project, run_id)] == [seeded.completion]
        # Nothing is left on the old key: a second run re-seals nothing.
        again = Rotation(engine, Keyring.from_keys(fresh, [seeded.key])).run()
        assert not any(n for n in again.values()), again


def test_secure_mode_refuses_to_start_without_a_key(database_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, database_url=database_url, secure=True, ingest_decode_workers=0))
    with pytest.raises(InsecureConfiguration, match="WATCHKEEP_ENCRYPTION_KEY"), TestClient(app):
        pass


def test_drift_features_measure_and_read_the_opened_payloads(seeded: Seeded) -> None:
    for engine in _engine(seeded.database_url):
        project = project_of_key(engine, seeded.api_key)[0]
        window = (0, time.time_ns() + SEC)
        loader = FeatureLoader(engine, sealer=Keyring.from_keys(seeded.key))
        lengths = loader.load_many(project, MetricFilter(), ("prompt_length", "response_length"), *window)
        # The stored payload's length, as without a key: a JSON string, so two quotes more.
        assert list(lengths["prompt_length"]) == [len(seeded.prompt) + 2]
        assert list(lengths["response_length"]) == [len(seeded.answer) + 2]
        assert loader.load(project, FeatureRequest("prompt_text"), *window) == [seeded.prompt]


def test_with_pii_masking_on_too_neither_the_store_nor_the_api_holds_the_seeded_pii(
    database_url: str, tmp_path: Path
) -> None:
    """The issue's proof with both on: the stored bytes are sealed, and what the API reads
    back after opening them is already masked."""
    s = Seeded(database_url, new_key())
    app = create_app(_settings(database_url, tmp_path, s.key, pii=True))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        post_spans(client, s.api_key, _trace(s.trace_id, s.prompt, s.answer))
        detail = client.get(f"/api/v1/traces/{s.trace_id}", headers={"Authorization": f"Bearer {s.api_key}"})
    assert detail.status_code == 200, detail.text
    assert "[EMAIL" in detail.text
    assert "[CARD" in detail.text
    for seeded_pii in (s.card, f"alice.{s.prompt.split()[0][-12:]}@example.com"):
        assert seeded_pii not in detail.text
    for engine in _engine(database_url):
        dump = _stored_text(engine)
        for plain in (s.card, s.prompt.split()[0], f"alice.{s.prompt.split()[0][-12:]}"):
            assert plain not in dump, plain
