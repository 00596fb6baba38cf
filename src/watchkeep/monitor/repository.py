"""Monitors, alert channels and alert history in the store.

Claiming is one conditional UPDATE (due, not leased by a live worker) followed by a
read of what this worker won, so any number of workers — threads, processes, hosts —
can share one schedule and each monitor is evaluated, and alerts, once per run.
Results are saved only while this worker still holds the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.monitor.quota import QuotaExceeded
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.state import Current, State, Step
from watchkeep.store.clock import now_ns
from watchkeep.store.sealing import SECRET_CHANNEL_FIELDS, Sealer, open_text, row_aad, seal_text
from watchkeep.store.tables import alert_channels, alert_events, monitors


class Conflict(ValueError):
    """A name already used in the project."""


@dataclass(frozen=True, slots=True)
class MonitorRow:
    """A stored monitor and its state."""

    id: int
    project_id: int
    spec: MonitorSpec
    state: State
    state_since_unix_nano: int
    pending_state: State | None
    pending_count: int
    last_value: float | None
    last_message: str | None
    last_evaluated_at_unix_nano: int | None
    last_notified_at_unix_nano: int | None
    next_run_at_unix_nano: int
    silenced_until_unix_nano: int | None = None
    silenced_by: str | None = None
    silence_reason: str | None = None

    @classmethod
    def from_row(cls, r: Any) -> MonitorRow:
        return cls(
            id=int(r.id),
            project_id=int(r.project_id),
            spec=MonitorSpec.model_validate(r.spec),
            state=State(r.state),
            state_since_unix_nano=int(r.state_since_unix_nano),
            pending_state=State(r.pending_state) if r.pending_state else None,
            pending_count=int(r.pending_count),
            last_value=r.last_value,
            last_message=r.last_message,
            last_evaluated_at_unix_nano=r.last_evaluated_at_unix_nano,
            last_notified_at_unix_nano=r.last_notified_at_unix_nano,
            next_run_at_unix_nano=int(r.next_run_at_unix_nano),
            silenced_until_unix_nano=r.silenced_until_unix_nano,
            silenced_by=r.silenced_by,
            silence_reason=r.silence_reason,
        )

    def silenced(self, now: int) -> bool:
        """Whether a silence holds this monitor's notifications back at ``now``."""
        return self.silenced_until_unix_nano is not None and now < self.silenced_until_unix_nano

    def current(self) -> Current:
        return Current(
            self.state,
            self.state_since_unix_nano,
            self.pending_state,
            self.pending_count,
            self.last_notified_at_unix_nano,
        )


class MonitorRepository:
    """CRUD of monitors, and the lease protocol the workers use."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def upsert(
        self, project_id: int, spec: MonitorSpec, *, replace: bool = True, limit: int | None = None
    ) -> MonitorRow:
        """Create the monitor, or (``replace``) update the spec of the one with its name.

        ``limit``: the project's monitor quota (``QuotaExceeded`` when a new one would pass it).
        """
        return self.upsert_many(project_id, [spec], replace=replace, limit=limit)[0]

    def upsert_many(
        self, project_id: int, specs: list[MonitorSpec], *, replace: bool = True, limit: int | None = None
    ) -> list[MonitorRow]:
        """``upsert`` of several monitors in one transaction: all are written or none."""
        now = now_ns()
        c = monitors.c
        with self._engine.begin() as conn:
            names = [s.name for s in specs]
            found = dict(
                conn.execute(select(c.name, c.id).where(c.project_id == project_id, c.name.in_(names))).all()
            )
            if limit is not None:
                new = len({n for n in names if n not in found})
                count = conn.execute(
                    select(func.count()).select_from(monitors).where(c.project_id == project_id)
                ).scalar_one()
                if new and count + new > limit:
                    raise QuotaExceeded("monitors", limit, "quota_monitors")
            for spec in specs:
                found[spec.name] = self._write(conn, project_id, spec, found.get(spec.name), now, replace)
        rows = [self.get_by_name(project_id, name) for name in names]
        return [r for r in rows if r is not None]

    @staticmethod
    def _write(
        conn: Connection, project_id: int, spec: MonitorSpec, found: int | None, now: int, replace: bool
    ) -> int:
        c = monitors.c
        data = spec.model_dump(mode="json")
        if found is not None and not replace:
            raise Conflict(f"a monitor named {spec.name!r} exists")
        if found is None:
            try:
                key = conn.execute(
                    insert(monitors).values(
                        project_id=project_id,
                        name=spec.name,
                        spec=data,
                        enabled=spec.enabled,
                        state=State.OK.value,
                        state_since_unix_nano=now,
                        pending_count=0,
                        next_run_at_unix_nano=now,
                        created_at_unix_nano=now,
                        updated_at_unix_nano=now,
                    )
                ).inserted_primary_key
            except IntegrityError as exc:
                raise Conflict(f"a monitor named {spec.name!r} exists") from exc
            assert key is not None
            return int(key[0])
        conn.execute(
            update(monitors)
            .where(c.id == found)
            .values(spec=data, enabled=spec.enabled, next_run_at_unix_nano=now, updated_at_unix_nano=now)
        )
        return found

    def get(self, project_id: int, monitor_id: int) -> MonitorRow | None:
        """One monitor of the project."""
        c = monitors.c
        with self._engine.connect() as conn:
            r = conn.execute(select(monitors).where(c.project_id == project_id, c.id == monitor_id)).first()
        return MonitorRow.from_row(r) if r is not None else None

    def get_by_name(self, project_id: int, name: str) -> MonitorRow | None:
        """One monitor of the project, by name."""
        c = monitors.c
        with self._engine.connect() as conn:
            r = conn.execute(select(monitors).where(c.project_id == project_id, c.name == name)).first()
        return MonitorRow.from_row(r) if r is not None else None

    def all(self, project_id: int) -> list[MonitorRow]:
        """Every monitor of the project, by name."""
        c = monitors.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(monitors).where(c.project_id == project_id).order_by(c.name)).all()
        return [MonitorRow.from_row(r) for r in rows]

    def delete(self, project_id: int, monitor_id: int) -> bool:
        """Remove a monitor (its alert history stays)."""
        c = monitors.c
        with self._engine.begin() as conn:
            result = conn.execute(delete(monitors).where(c.project_id == project_id, c.id == monitor_id))
        return bool(result.rowcount)

    def silence(
        self, project_id: int, monitor_id: int, until_ns: int | None, by: str | None, reason: str | None
    ) -> MonitorRow | None:
        """Hold the monitor's notifications back until ``until_ns`` (None: end the silence);
        None when the project has no such monitor. Evaluation and history go on regardless."""
        c = monitors.c
        values = {"silenced_until_unix_nano": until_ns, "silenced_by": by, "silence_reason": reason}
        with self._engine.begin() as conn:
            done = conn.execute(
                update(monitors).where(c.project_id == project_id, c.id == monitor_id).values(**values)
            )
        return self.get(project_id, monitor_id) if done.rowcount else None

    def claim_due(self, owner: str, now: int, lease_ns: int, limit: int = 500) -> list[MonitorRow]:
        """Lease up to ``limit`` due monitors to ``owner``; only what was won is returned."""
        c = monitors.c
        free = or_(c.lease_until_unix_nano.is_(None), c.lease_until_unix_nano < now)
        due = and_(c.enabled.is_(True), c.next_run_at_unix_nano <= now, free)
        ids = select(c.id).where(due).order_by(c.next_run_at_unix_nano).limit(limit).scalar_subquery()
        until = now + lease_ns
        with self._engine.begin() as conn:
            conn.execute(
                update(monitors)
                .where(c.id.in_(ids), due)
                .values(lease_owner=owner, lease_until_unix_nano=until)
                .execution_options(synchronize_session=False)
            )
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(monitors).where(c.lease_owner == owner, c.lease_until_unix_nano == until)
            ).all()
        return [MonitorRow.from_row(r) for r in rows]

    def save(
        self,
        row: MonitorRow,
        owner: str,
        result: Step,
        value: float | None,
        message: str,
        now: int,
        *,
        notified: bool,
        run_now: bool = False,
    ) -> bool:
        """Record an evaluation and release the lease; False when the lease was lost."""
        c = monitors.c
        values: dict[str, Any] = {
            "state": result.state.value,
            "state_since_unix_nano": result.since_ns,
            "pending_state": result.pending.value if result.pending else None,
            "pending_count": result.pending_count,
            "last_value": value,
            "last_message": message[:4000],
            "last_evaluated_at_unix_nano": now,
            "next_run_at_unix_nano": row.next_run_at_unix_nano
            if run_now
            else now + int(row.spec.schedule * 1e9),
            "lease_owner": None,
            "lease_until_unix_nano": None,
        }
        if notified:
            values["last_notified_at_unix_nano"] = now
        with self._engine.begin() as conn:
            done = conn.execute(
                update(monitors).where(c.id == row.id, c.lease_owner == owner).values(**values)
            )
        return bool(done.rowcount)

    def release(self, row: MonitorRow, owner: str) -> None:
        """Give a monitor's lease back unevaluated: it stays due for the next pass."""
        c = monitors.c
        with self._engine.begin() as conn:
            conn.execute(
                update(monitors)
                .where(c.id == row.id, c.lease_owner == owner)
                .values(lease_owner=None, lease_until_unix_nano=None)
            )

    def lease_one(
        self, project_id: int, monitor_id: int, owner: str, now: int, lease_ns: int
    ) -> MonitorRow | None:
        """Lease one monitor now, whatever its schedule (for "evaluate now")."""
        c = monitors.c
        free = or_(c.lease_until_unix_nano.is_(None), c.lease_until_unix_nano < now)
        with self._engine.begin() as conn:
            won = conn.execute(
                update(monitors)
                .where(c.project_id == project_id, c.id == monitor_id, free)
                .values(lease_owner=owner, lease_until_unix_nano=now + lease_ns)
            ).rowcount
        return self.get(project_id, monitor_id) if won else None


class ChannelRepository:
    """Named alert channels of a project; their secrets sealed at rest when a sealer is given."""

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer

    def _config(self, project_id: int, config: dict[str, Any], seal: bool) -> dict[str, Any]:
        """``config`` with its secret fields sealed (``seal``) or opened."""
        if self._sealer is None and seal:
            return config
        out = dict(config)
        for name in SECRET_CHANNEL_FIELDS:
            value = out.get(name)
            if isinstance(value, str):
                aad = row_aad("alert_channels", f"config.{name}", project_id)
                out[name] = (
                    seal_text(self._sealer, value, aad) if seal else open_text(self._sealer, value, aad)
                )
        return out

    def _rows(self, rows: Any) -> list[dict[str, Any]]:
        found = [dict(r._mapping) for r in rows]
        for row in found:
            row["config"] = self._config(row["project_id"], row["config"] or {}, seal=False)
        return found

    def upsert(self, project_id: int, name: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the channel called ``name``."""
        c = alert_channels.c
        with self._engine.begin() as conn:
            conn.execute(delete(alert_channels).where(c.project_id == project_id, c.name == name))
            conn.execute(
                insert(alert_channels).values(
                    project_id=project_id,
                    name=name,
                    kind=kind,
                    config=self._config(project_id, config, seal=True),
                    created_at_unix_nano=now_ns(),
                )
            )
        found: dict[str, Any] = self.by_names(project_id, [name])[0]
        return found

    def all(self, project_id: int) -> list[dict[str, Any]]:
        """Every channel of the project."""
        c = alert_channels.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(alert_channels).where(c.project_id == project_id).order_by(c.name))
            return self._rows(rows)

    def by_names(self, project_id: int, names: list[str]) -> list[dict[str, Any]]:
        """The named channels that exist."""
        if not names:
            return []
        c = alert_channels.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(alert_channels).where(c.project_id == project_id, c.name.in_(names)))
            return self._rows(rows)

    def delete(self, project_id: int, channel_id: int) -> bool:
        """Remove a channel."""
        c = alert_channels.c
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(alert_channels).where(c.project_id == project_id, c.id == channel_id)
            )
        return bool(result.rowcount)


class AlertHistory:
    """Every notification-worthy state change, with what became of its deliveries."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self, row: MonitorRow, kind: str, result: Step, value: float | None, message: str, now: int
    ) -> int:
        """Store an event; returns its id."""
        with self._engine.begin() as conn:
            key = conn.execute(
                insert(alert_events).values(
                    project_id=row.project_id,
                    monitor_id=row.id,
                    monitor_name=row.spec.name,
                    severity=row.spec.severity.value,
                    kind=kind,
                    from_state=result.previous.value,
                    to_state=result.state.value,
                    value=value,
                    message=message[:4000],
                    created_at_unix_nano=now,
                )
            ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def set_deliveries(self, event_id: int, deliveries: list[dict[str, Any]]) -> None:
        """Attach the outcome of each channel's delivery to an event."""
        with self._engine.begin() as conn:
            conn.execute(
                update(alert_events).where(alert_events.c.id == event_id).values(deliveries=deliveries)
            )

    def values(
        self, project_id: int, monitor_id: int, start_ns: int, end_ns: int, limit: int = 10_000
    ) -> list[tuple[int, float]]:
        """(time, value) of the monitor's events in [start, end) that carry a value, oldest first."""
        c = alert_events.c
        query = (
            select(c.created_at_unix_nano, c.value)
            .where(
                c.project_id == project_id,
                c.monitor_id == monitor_id,
                c.created_at_unix_nano >= start_ns,
                c.created_at_unix_nano < end_ns,
                c.value.is_not(None),
            )
            .order_by(c.created_at_unix_nano, c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(int(t), float(v)) for t, v in conn.execute(query)]

    def recent(
        self,
        project_id: int,
        *,
        monitor_id: int | None = None,
        limit: int = 100,
        before: tuple[int, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Newest events first; ``before`` (time, id) of the last event of a page gives the
        next page (a keyset cursor: the console pages the history with it)."""
        c = alert_events.c
        cond = [c.project_id == project_id]
        if monitor_id is not None:
            cond.append(c.monitor_id == monitor_id)
        if before is not None:
            at, key = before
            cond.append(or_(c.created_at_unix_nano < at, and_(c.created_at_unix_nano == at, c.id < key)))
        query = (
            select(alert_events)
            .where(*cond)
            .order_by(c.created_at_unix_nano.desc(), c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
