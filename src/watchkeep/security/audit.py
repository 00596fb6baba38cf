"""The audit log: append-only and hash-chained, so any edit, insertion or removal shows.

SKELETON (lead): signatures are the contract; the audit helper fills the bodies.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical
JSON (seq, time, project, actor, action, target, before, after, detail); ``verify`` walks
the chain and names the first entry that does not fit and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine


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


class AuditLog:
    """Appends to and reads ``audit_events``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
        raise NotImplementedError

    def entries(
        self,
        *,
        project_id: int | None = None,
        action: str | None = None,
        after_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries oldest first after ``after_seq``, filtered by project and action."""
        raise NotImplementedError

    def verify(self) -> AuditVerdict:
        """Walk the whole chain and report every edited, inserted or removed entry."""
        raise NotImplementedError
