"""The audit log: append-only and hash-chained, so any edit, insertion or removal shows.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical
JSON (seq, time, project, actor, action, target, before, after, detail, sorted keys, via
orjson); the first entry chains on 64 zeros. ``verify`` walks the chain in batches and names
every entry that does not fit and why. Appends are serialised so two writers never fork
the chain: PostgreSQL takes a transaction-level advisory lock before reading the head,
SQLite opens the write transaction with ``BEGIN IMMEDIATE`` (the database's write lock).

What a plain hash chain cannot see (docs/decisions/0020-audit-hash-chain.md): the tail cut
off (anchor the head hash elsewhere: ``watchkeep audit verify`` prints it and checks an
anchor), and a rewrite of an entry together with every entry after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, RowMapping, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from watchkeep.store.clock import now_ns
from watchkeep.store.engine import is_sqlite
from watchkeep.store.privacy_tables import audit_events

GENESIS = "0" * 64
# Any constant works, so long as nothing else takes the same advisory lock ("wkaudit").
_ADVISORY_LOCK = 0x776B6175646974
_BATCH = 1000
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action."""

    seq: int
    at_ns: int
    project_id: int | None
    actor: str
    action: str
    target: str | None
    before: Any
    after: Any
    detail: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """What ``verify`` found: ``ok``, the entries checked, and each problem with its seq."""

    ok: bool
    checked: int
    problems: tuple[str, ...]


def _plain(value: Any) -> Any:
    """``value`` as it reads back from a JSON column (non-string keys become strings), so
    the hash taken at write time is the hash recomputed at verify time."""
    if value is None:
        return None
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def entry_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """SHA-256 over ``prev_hash`` and the entry's canonical JSON (keys sorted)."""
    body = orjson.dumps(dict(content), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def _content(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at_ns": e.at_ns,
        "project_id": e.project_id,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "before": e.before,
        "after": e.after,
        "detail": e.detail,
    }


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        at_ns=int(row["at_unix_nano"]),
        project_id=None if row["project_id"] is None else int(row["project_id"]),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        before=row["before"],
        after=row["after"],
        detail=row["detail"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _check(prev: AuditEntry | None, e: AuditEntry) -> str | None:
    """What is wrong with ``e`` following ``prev`` (None: the genesis), if anything."""
    prev_seq, prev_hash = (0, GENESIS) if prev is None else (prev.seq, prev.hash)
    if entry_hash(e.prev_hash, _content(e)) != e.hash:
        return f"entry {e.seq} was edited: its hash does not match its content"
    linked, follows = e.prev_hash == prev_hash, e.seq == prev_seq + 1
    if linked and follows:
        return None
    if linked:
        return f"entry {e.seq} was inserted: it chains on entry {prev_seq} but its seq does not follow it"
    if follows:
        return (
            f"entry {e.seq} was inserted: it does not chain on entry {prev_seq}"
            f" (or entry {prev_seq} was rewritten together with its hash)"
        )
    if prev is None:
        return f"the entries before {e.seq} were removed"
    return f"an entry between {prev_seq} and {e.seq} was removed"


class AuditLog:
    """Appends to and reads ``audit_events``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(str(engine.url))

    @property
    def engine(self) -> Engine:
        """The database the log lives in."""
        return self._engine

    def record(
        self,
        *,
        actor: str,
        action: str,
        project_id: int | None = None,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        detail: str | None = None,
    ) -> AuditEntry:
        """Append one entry (never raises on a lost race: it re-reads the head and retries).
        ``before``/``after`` must never hold secrets or payloads: pass redacted views."""
        fields = {
            "project_id": project_id,
            "actor": actor[:200],
            "action": action[:64],
            "target": None if target is None else target[:300],
            "before": _plain(before),
            "after": _plain(after),
            "detail": detail,
        }
        for attempt in range(_ATTEMPTS):
            try:
                with self._engine.connect() as conn:
                    entry = self._append(conn, fields)
                    conn.commit()
                return entry
            except (IntegrityError, OperationalError):
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _append(self, conn: Connection, fields: dict[str, Any]) -> AuditEntry:
        """Lock the chain, read its head, insert the next entry (caller commits)."""
        if self._sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        c = audit_events.c
        head = conn.execute(select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)).first()
        seq, prev_hash = (1, GENESIS) if head is None else (int(head.seq) + 1, str(head.hash))
        content = {"seq": seq, "at_ns": now_ns(), **fields}
        digest = entry_hash(prev_hash, content)
        row = {k: v for k, v in content.items() if k != "at_ns"}
        conn.execute(
            audit_events.insert().values(
                **row, at_unix_nano=content["at_ns"], prev_hash=prev_hash, hash=digest
            )
        )
        return AuditEntry(**content, prev_hash=prev_hash, hash=digest)

    def entries(
        self,
        *,
        project_id: int | None = None,
        action: str | None = None,
        after_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries oldest first after ``after_seq``, filtered by project and action."""
        c = audit_events.c
        query = select(audit_events).order_by(c.seq).limit(limit)
        if project_id is not None:
            query = query.where(c.project_id == project_id)
        if action is not None:
            query = query.where(c.action == action)
        if after_seq is not None:
            query = query.where(c.seq > after_seq)
        with self._engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query).mappings()]

    def head(self) -> AuditEntry | None:
        """The newest entry (what to anchor outside the database), or None when empty."""
        c = audit_events.c
        with self._engine.connect() as conn:
            row = conn.execute(select(audit_events).order_by(c.seq.desc()).limit(1)).mappings().first()
        return None if row is None else _entry(row)

    def _walk(self) -> Iterator[AuditEntry]:
        """Every entry in seq order, read in batches so memory stays bounded."""
        after = None
        while batch := self.entries(after_seq=after, limit=_BATCH):
            yield from batch
            after = batch[-1].seq

    def verify(self) -> AuditVerdict:
        """Walk the whole chain and report every edited, inserted or removed entry."""
        problems: list[str] = []
        prev: AuditEntry | None = None
        checked = 0
        for entry in self._walk():
            checked += 1
            problem = _check(prev, entry)
            if problem is not None:
                problems.append(problem)
            prev = entry
        return AuditVerdict(ok=not problems, checked=checked, problems=tuple(problems))
