"""Erasure and export of a data subject (an end user, by the ``user_id`` on their traces).

Erasure deletes, within one project, the subject's traces and spans with their payloads
and search documents, the scores, annotations, comments and activity on those traces,
the dataset items taken from them and the eval results of those items, a few traces per
transaction (``store.retention_queries``). It is then recorded in the audit log as
``subject.erase`` with the rows deleted per table. The log must not keep the erased
identity in clear, so the target is ``user:`` and an HMAC-SHA256 of the id under a key
derived from the server's PII hash key (``security.pii.hash_key``: the configured key,
else one derived from the encryption key, else a key file under home): equal ids give
equal hashes, so "was this person erased?" stays answerable by whoever holds the key, and
nobody can read the id back (an unkeyed hash of an e-mail address is reversed by guessing).

Export reads the same rows as JSON-ready dicts (a subject's access request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from watchkeep.config import Settings
from watchkeep.security.audit import AuditLog
from watchkeep.security.crypto import keyring_from_settings
from watchkeep.security.pii import hash_key
from watchkeep.store.retention_queries import RetentionQueries

MAX_USER_ID = 256  # spans.user_id's width


class InvalidSubject(ValueError):
    """A user id that cannot name a subject (empty or too long)."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure deleted: rows per table, and the subject's hash as audited."""

    project_id: int
    subject: str
    rows: dict[str, int]

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(self.rows.values())


def check_user_id(user_id: str) -> str:
    """``user_id`` as stored on spans, or InvalidSubject."""
    if not user_id or len(user_id) > MAX_USER_ID:
        raise InvalidSubject(f"a user id has 1 to {MAX_USER_ID} characters")
    if any(ord(ch) < 0x20 for ch in user_id):  # no stored id has one; PostgreSQL refuses NUL
        raise InvalidSubject("a user id has no control characters")
    return user_id


def subject_hash(user_id: str, key: bytes) -> str:
    """How the audit log names a subject: a keyed hash, never the id itself."""
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:32]


def subject_key(pii_key: bytes) -> bytes:
    """The key of ``subject_hash``, derived from the PII hash key (``security.pii.hash_key``)
    so that it differs from the key of the PII ``hash`` action."""
    return hmac.new(pii_key, b"watchkeep subject hash", hashlib.sha256).digest()


def export_line(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """One export line: ``{"type": kind, "row": {...}}`` (apart, since rows have a ``kind``
    column of their own), bytes in the row as base64."""
    return {"type": kind, "row": {k: _plain(v) for k, v in row.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


class SubjectService:
    """Erases and exports a data subject's data within one project."""

    def __init__(self, queries: RetentionQueries, audit: AuditLog, key: bytes) -> None:
        self._queries = queries
        self._audit = audit
        self._key = key

    def erase(self, project_id: int, user_id: str, *, actor: str) -> Erasure:
        """Delete every row of the project tied to ``user_id`` and audit it (hashed)."""
        check_user_id(user_id)
        rows = self._queries.erase_subject(project_id, user_id)
        subject = subject_hash(user_id, self._key)
        self._audit.record(
            actor=actor,
            action="subject.erase",
            project_id=project_id,
            target=f"user:{subject}",
            after={"rows": rows},
        )
        return Erasure(project_id, subject, rows)

    def export(self, project_id: int, user_id: str) -> Iterator[dict[str, Any]]:
        """Every row of the project tied to ``user_id``, one JSON-ready dict each."""
        check_user_id(user_id)
        for kind, row in self._queries.subject_rows(project_id, user_id):
            yield export_line(kind, row)

    def audit_export(self, project_id: int, user_id: str, *, actor: str) -> None:
        """Record that a subject's data is leaving the server (hashed, like erasure)."""
        check_user_id(user_id)
        self._audit.record(
            actor=actor,
            action="subject.export",
            project_id=project_id,
            target=f"user:{subject_hash(user_id, self._key)}",
        )


def subject_service(settings: Settings, engine: Engine, audit: AuditLog) -> SubjectService:
    """The subject service of the settings: their hash key, and their encryption keys to
    open payloads for an export."""
    key = subject_key(hash_key(settings))
    return SubjectService(RetentionQueries(engine, sealer=keyring_from_settings(settings)), audit, key)
