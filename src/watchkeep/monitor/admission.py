"""What a project's monitors and alert channels may ask for, checked before they are stored.

The rules of the monitoring API live here, not in its routers: a project may not declare
a resource monitor (those watch the whole server and are the operator's), a schedule
under ``monitor_min_interval_seconds``, a pinned reference over ``quota_reference_rows``,
or more than ``quota_alert_channels`` channels. Refusals are typed; the routers map
``OperatorOnly`` to 403 and ``LimitExceeded`` to 422 ``quota_exceeded``.
"""

from __future__ import annotations

from collections.abc import Collection

from watchkeep.config import Settings
from watchkeep.monitor.quota import QuotaExceeded
from watchkeep.monitor.repository import ChannelRepository
from watchkeep.monitor.spec import MonitorSpec


class OperatorOnly(Exception):
    """Something only the operator may declare (``message`` says what and how)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LimitExceeded(Exception):
    """A spec or a set of channels over one of the project's limits (``message`` names it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_monitor(settings: Settings, spec: MonitorSpec) -> None:
    """Refuse what a project's ``spec`` may not ask for (``OperatorOnly``, ``LimitExceeded``)."""
    if spec.kind == "resource":
        raise OperatorOnly(
            f"monitor {spec.name!r}: resource monitors watch the whole server and are for the "
            "operator (declare them with `watchkeep monitors apply`)"
        )
    if spec.schedule < settings.monitor_min_interval_seconds:
        raise LimitExceeded(
            f"monitor {spec.name!r}: schedule {spec.schedule:g}s is shorter than the minimum "
            f"{settings.monitor_min_interval_seconds:g}s (setting monitor_min_interval_seconds)"
        )
    rows = len(spec.reference.values or ())
    if rows > settings.quota_reference_rows:
        exc = QuotaExceeded("pinned reference values", settings.quota_reference_rows, "quota_reference_rows")
        raise LimitExceeded(f"monitor {spec.name!r} pins {rows} values; {exc.message}")


def check_channel_quota(
    channels: ChannelRepository, project_id: int, names: Collection[str], limit: int
) -> None:
    """``LimitExceeded`` when storing channels ``names`` would give the project more than
    ``limit`` (replacing a channel of the same name adds none)."""
    existing = {row["name"] for row in channels.all(project_id)}
    added = set(names) - existing
    if added and len(existing) + len(added) > limit:
        raise LimitExceeded(
            f"a project may have at most {limit} alert channels and this one has {len(existing)}: "
            "delete one or replace one by name (the operator sets WATCHKEEP_QUOTA_ALERT_CHANNELS)"
        )
