"""Bytes a span and sealing CPU for the stored forms of span payloads (ADR 0025).

Writes the same spans (the ingest benchmark's LLM load: about 800 characters of messages
a span) through the real ``SpanWriter`` into fresh SQLite files, once in plaintext, once
sealed as version 1 did (AES-256-GCM, no compression) and once as version 2 does
(zstd inside the seal), and prints the file's bytes a span and the mean stored payload
(input + output) a span. Then the CPU a span of sealing the payload rows (a decode
worker's cost), of opening them (a reader's), and of the writer thread with pre-sealed
rows against rows it seals itself. ``--prose`` uses English prose (the README) as the
messages instead of the generator's small vocabulary, which compresses unusually well.

    .venv/bin/python benchmarks/payload_bytes.py --spans 20000 [--prose]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine

from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.synthetic_otlp import build_llm_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.security.crypto import Keyring, new_key
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import WriteBatch
from watchkeep.store.sealing import Sealer, row_aad, seal_payload_rows
from watchkeep.store.span_writer import SpanWriter

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


class V1Sealer:
    """Version 1's seal (the baseline): the UTF-8 text encrypted as it is."""

    def __init__(self, key: str) -> None:
        self._cipher = AESGCM(base64.b64decode(key))
        self._id = Keyring.from_keys(key).current_id

    def seal(self, text: str, aad: bytes) -> str:
        nonce = os.urandom(12)
        body = base64.urlsafe_b64encode(nonce + self._cipher.encrypt(nonce, text.encode(), aad)).decode()
        return f"wkenc:v1:{self._id}:{body}"

    def open(self, text: str, aad: bytes) -> str:
        raise NotImplementedError


def _prose(text: str | None, rng: random.Random) -> str | None:
    """``text``'s messages with their content replaced by README prose of the same length."""
    if text is None:
        return None
    messages = json.loads(text)
    for m in messages if isinstance(messages, list) else []:
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            start = rng.randrange(0, len(README) - len(m["content"]) - 1)
            m["content"] = README[start : start + len(m["content"])]
    return json.dumps(messages)


def batches(project: int, spans: int, prose: bool) -> list[WriteBatch]:
    rng, out = random.Random(7), []
    for i in range(0, spans, 512):
        body, _ = build_llm_request(min(512, spans - i), rng=rng, start_ns=1_700_000_000_000_000_000 + i)
        batch = prepare(project, body, Encoding.PROTOBUF, 1, None).batch
        if prose:
            batch.payloads = [(*r[:3], _prose(r[3], rng), _prose(r[4], rng), *r[5:]) for r in batch.payloads]
        out.append(batch)
    return out


def _cpu_us(fn: Callable[[], Any], spans: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / spans * 1e6


def store(
    spans: int, prose: bool, sealer: Sealer | None, presealed: bool, postgres: str | None
) -> tuple[float, float, float]:
    """Store bytes a span (SQLite: the file; PostgreSQL: the database), stored payload
    characters a span, writer thread CPU µs a span."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/s.db"
        if postgres is not None:
            with make_engine(postgres).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                name = f"bytes_{os.getpid()}_{time.monotonic_ns()}"
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            url = postgres.rsplit("/", 1)[0] + f"/{name}"
        engine = make_engine(url)
        upgrade(engine)
        project = ProjectRepository(engine).get_or_create("bench").id
        work = batches(project, spans, prose)
        stored = 0
        if presealed and sealer is not None:
            for b in work:
                b.payloads, b.sealed = seal_payload_rows(sealer, b.payloads), True
        for b in work:
            rows = b.payloads if b.sealed or sealer is None else seal_payload_rows(sealer, b.payloads)
            stored += sum(len(r[3] or "") + len(r[4] or "") for r in rows)
        before = _size(engine, url)
        writer = SpanWriter(engine, sealer=sealer)
        cpu = _cpu_us(lambda: [writer.write(work[i : i + 4]) for i in range(0, len(work), 4)], spans)
        writer.close()
        size = _size(engine, url) - before
        engine.dispose()
        return size / spans, stored / spans, cpu


def _size(engine: Engine, url: str) -> int:
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return Path(url.removeprefix("sqlite:///")).stat().st_size
        conn.exec_driver_sql("CHECKPOINT")
        return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--prose", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of SQLite")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(TempPostgres()).url if args.postgres else None
        _report(args.spans, args.prose, pg)


def _report(spans: int, prose: bool, pg: str | None) -> None:
    key = new_key()
    ring = Keyring.from_keys(key)
    print(
        f"{spans} spans on {'PostgreSQL' if pg else 'SQLite'}, messages: {'README prose' if prose else 'vocabulary'}"
    )
    for name, sealer, pre in (
        ("plaintext", None, False),
        ("sealed v1 (before)", V1Sealer(key), False),
        ("sealed v2, writer seals", ring, False),
        ("sealed v2, pre-sealed", ring, True),
    ):
        file_b, payload_b, cpu = store(spans, prose, sealer, pre, pg)
        print(
            f"{name:26s} store {file_b:7.0f} B/span  payloads {payload_b:6.0f} chars/span  writer {cpu:5.1f} µs/span"
        )
    rows = [r for b in batches(1, spans, prose) for r in b.payloads]
    sealers: tuple[tuple[str, Sealer], ...] = (("v1", V1Sealer(key)), ("v2", ring))
    for name, s in sealers:
        print(f"seal {name}: {_cpu_us(partial(seal_payload_rows, s, rows), spans):5.1f} µs/span")
    sealed = seal_payload_rows(ring, rows)
    aad_in, aad_out = row_aad("span_payloads", "input", 1), row_aad("span_payloads", "output", 1)
    opened = _cpu_us(
        lambda: [(ring.open(r[3], aad_in), r[4] and ring.open(r[4], aad_out)) for r in sealed], spans
    )
    print(f"open v2: {opened:5.1f} µs/span")


if __name__ == "__main__":
    main()
