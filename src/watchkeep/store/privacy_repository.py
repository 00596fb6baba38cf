"""A project's privacy settings as stored: PII actions per entity, retention days per kind.

The store keeps JSON and knows nothing of its meaning; ``security.pii`` and
``security.retention`` validate what goes in and read what comes out. A project without a
row has the defaults (every structured entity masked, nothing expired).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.privacy_tables import privacy_settings


@dataclass(frozen=True, slots=True)
class StoredPrivacy:
    """One project's stored settings (empty mappings: the defaults)."""

    project_id: int
    pii: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)


class PrivacySettingsRepository:
    """Reads and writes ``privacy_settings``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, project_id: int) -> StoredPrivacy:
        """The project's settings; empty (the defaults) when it has none stored."""
        c = privacy_settings.c
        with self._engine.connect() as conn:
            row = conn.execute(select(privacy_settings).where(c.project_id == project_id)).mappings().first()
        if row is None:
            return StoredPrivacy(project_id)
        return StoredPrivacy(project_id, dict(row["pii"]), dict(row["retention"]))

    def all(self) -> list[StoredPrivacy]:
        """Every project's stored settings (what the retention worker walks)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(privacy_settings)).mappings().all()
        return [StoredPrivacy(r["project_id"], dict(r["pii"]), dict(r["retention"])) for r in rows]

    def put(
        self,
        project_id: int,
        *,
        actor: str,
        pii: dict[str, Any] | None = None,
        retention: dict[str, Any] | None = None,
    ) -> StoredPrivacy:
        """Replace the given parts (None keeps that part as stored); returns the new settings."""
        current = self.get(project_id)
        values = {
            "pii": current.pii if pii is None else pii,
            "retention": current.retention if retention is None else retention,
            "updated_by": actor,
            "updated_at_unix_nano": now_ns(),
        }
        c = privacy_settings.c
        for _ in range(2):
            with self._engine.begin() as conn:
                changed = conn.execute(
                    update(privacy_settings).where(c.project_id == project_id).values(**values)
                ).rowcount
                if changed:
                    break
                try:
                    conn.execute(privacy_settings.insert().values(project_id=project_id, **values))
                    break
                except IntegrityError:  # created meanwhile by another writer: update it
                    continue
        return self.get(project_id)
