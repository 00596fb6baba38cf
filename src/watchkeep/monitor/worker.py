"""The monitoring loop: due monitors, online evaluation and resource samples, on a thread.

``watchkeep server`` runs it in-process (the single-process default); ``watchkeep
worker`` runs only this loop, for scale-out. Workers coordinate through the database
alone (leases on monitors, compare-and-set cursors on online evaluators), so any
number can run at once without double evaluations or double alerts.

A pass spends at most ``reference_budget`` seconds summarising drift references from raw
spans (the first reference of a pass always runs): a drift monitor whose reference is
still missing after that is handed back unevaluated and stays due, so the first pass
after a start is as short as later ones, and the references (persisted once built) fill
in over the next passes (decision 0009).

A silenced monitor is evaluated and its alert history written as usual (so its
re-notification clock runs on), but each channel's delivery is recorded as silenced
instead of being sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from watchkeep.monitor.channels import ChannelSender, Notification
from watchkeep.monitor.drift_service import ReferencePending, reference_budget
from watchkeep.monitor.evaluate import MonitorEvaluator, Observation, PassCache
from watchkeep.monitor.online import OnlineEvaluation
from watchkeep.monitor.repository import AlertHistory, ChannelRepository, MonitorRepository, MonitorRow
from watchkeep.monitor.resources import ResourceSampler, ResourceStore
from watchkeep.monitor.state import FIRING, State, step
from watchkeep.store.clock import now_ns

log = logging.getLogger(__name__)
NS = 1_000_000_000
MIN_LEASE_NS = 120 * NS
RESOURCE_RETENTION_NS = 7 * 86400 * NS


@dataclass(slots=True)
class PassReport:
    """What one pass did."""

    evaluated: int = 0
    notifications: int = 0
    scores_written: int = 0
    cache_hits: int = 0
    deferred: int = 0  # drift monitors left due: their reference did not fit this pass
    references_built: int = 0
    states: dict[str, int] = field(default_factory=dict)


def silenced_outcome(row: MonitorRow) -> dict[str, Any]:
    """A channel's delivery record when a silence held it back (nothing was sent)."""
    until = row.silenced_until_unix_nano or 0
    return {
        "ok": False,
        "category": "silenced",
        "silenced": True,
        "until": (
            datetime.fromtimestamp(until // NS, UTC) + timedelta(microseconds=until % NS // 1000)
        ).isoformat(),
        "by": row.silenced_by,
        "detail": f"silenced by {row.silenced_by or 'unknown'}",
    }


class WorkerMetrics:
    """The loop's own Prometheus instruments."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.evaluations = Counter(
            "watchkeep_monitor_evaluations", "Monitor evaluations by kind.", ["kind"], registry=registry
        )
        self.notifications = Counter(
            "watchkeep_alert_notifications",
            "Alert notifications by event kind and delivery outcome.",
            ["event", "outcome"],
            registry=registry,
        )
        self.value = Gauge(
            "watchkeep_monitor_value",
            "Last value a monitor observed (drift statistic, anomaly score, metric...).",
            ["project", "monitor", "kind"],
            registry=registry,
        )
        self.firing = Gauge(
            "watchkeep_monitor_firing",
            "1 while a monitor is in WARNING or ALERT, else 0.",
            ["project", "monitor", "kind", "severity"],
            registry=registry,
        )


class MonitorWorker:
    """Runs passes every ``tick`` seconds until stopped."""

    def __init__(
        self,
        monitors: MonitorRepository,
        channels: ChannelRepository,
        history: AlertHistory,
        evaluator: MonitorEvaluator,
        online: OnlineEvaluation,
        resources: ResourceStore,
        sampler: ResourceSampler | None,
        *,
        registry: CollectorRegistry | None = None,
        sender: ChannelSender,
        tick: float = 5.0,
        resource_every: float = 15.0,
        reference_budget_s: float = 2.0,
    ) -> None:
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._monitors = monitors
        self._channels = channels
        self._history = history
        self._evaluator = evaluator
        self._online = online
        self._resources = resources
        self._sampler = sampler
        self._sender = sender
        self._metrics = WorkerMetrics(registry)
        self._tick = tick
        self.reference_budget_s = reference_budget_s
        self._resource_every_ns = int(resource_every * NS)
        self._last_sample_ns = 0
        self._last_prune_ns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="watchkeep-monitor-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current pass and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._sender.close()

    def run_forever(self) -> None:
        """Run passes on the calling thread until ``stop`` (for ``watchkeep worker``)."""
        self._run()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("monitor pass failed")
            self._stop.wait(self._tick)

    def run_once(self, now: int | None = None) -> PassReport:
        """One pass: sample resources when due, evaluate due monitors, run online checks."""
        now = now if now is not None else now_ns()
        report = PassReport()
        self._sample_resources(now)
        report.scores_written = self._online.run_once()
        cache = PassCache()
        with reference_budget(self.reference_budget_s) as budget:
            claimed = self._monitors.claim_due(self.owner, now, self._lease_ns(), limit=1000)
            self._evaluator.plan(cache, [(row.project_id, row.spec) for row in claimed])
            for row in claimed:
                self._evaluate(row, now, cache, report)
        report.cache_hits = cache.hits
        report.references_built = budget.computed
        return report

    def evaluate_now(self, project_id: int, monitor_id: int) -> MonitorRow | None:
        """Evaluate one monitor immediately (keeping its schedule); None if busy or absent."""
        now = now_ns()
        row = self._monitors.lease_one(project_id, monitor_id, self.owner, now, self._lease_ns())
        if row is None:
            return None
        self._evaluate(row, now, PassCache(), PassReport(), run_now=True)
        return self._monitors.get(project_id, monitor_id)

    def _lease_ns(self) -> int:
        return max(MIN_LEASE_NS, int(self._tick * 4 * NS))

    def _evaluate(
        self, row: MonitorRow, now: int, cache: PassCache, report: PassReport, run_now: bool = False
    ) -> None:
        spec = row.spec
        try:
            seen = self._evaluator.evaluate(row.project_id, spec, now, cache)
        except ReferencePending:
            self._monitors.release(row, self.owner)
            report.deferred += 1
            return
        except Exception as exc:
            log.exception("monitor %s failed", spec.name)
            seen = Observation(
                State.NO_DATA, None, f"evaluation failed: {type(exc).__name__}: {exc}"[:500], 0
            )
        self._metrics.evaluations.labels(spec.kind).inc()
        result = step(
            row.current(),
            seen.level,
            now,
            consecutive=spec.consecutive,
            renotify_ns=int(spec.renotify * NS) if spec.renotify else None,
            notify_no_data=spec.notify_no_data,
        )
        notify = result.notify
        saved = self._monitors.save(
            row, self.owner, result, seen.value, seen.message, now, notified=bool(notify), run_now=run_now
        )
        report.evaluated += 1
        report.states[result.state.value] = report.states.get(result.state.value, 0) + 1
        labels = (str(row.project_id), spec.name, spec.kind)
        if seen.value is not None:
            self._metrics.value.labels(*labels).set(seen.value)
        self._metrics.firing.labels(*labels, spec.severity.value).set(1 if result.state in FIRING else 0)
        if not saved:
            log.warning("lost the lease of monitor %s; its result was dropped", spec.name)
            return
        if notify is not None:
            event_id = self._history.record(row, notify, result, seen.value, seen.message, now)
            note = Notification(
                project_id=row.project_id,
                monitor_id=row.id,
                monitor=spec.name,
                kind=notify,
                state=result.state.value,
                previous_state=result.previous.value,
                severity=spec.severity.value,
                value=seen.value,
                message=seen.message,
                at_unix_nano=now,
                description=spec.description,
                renotify_ns=int(spec.renotify * NS) if spec.renotify else None,
            )
            deliveries = []
            for channel in self._channels.by_names(row.project_id, spec.channels):
                if row.silenced(now):
                    outcome = silenced_outcome(row)
                    self._metrics.notifications.labels(notify, "silenced").inc()
                else:
                    outcome = self._sender.send(channel["kind"], channel["config"], note)
                    self._metrics.notifications.labels(notify, "ok" if outcome["ok"] else "failed").inc()
                deliveries.append({"channel": channel["name"], "kind": channel["kind"], **outcome})
            self._history.set_deliveries(event_id, deliveries)
            report.notifications += 1

    def _sample_resources(self, now: int) -> None:
        if self._sampler is None or now - self._last_sample_ns < self._resource_every_ns:
            return
        self._last_sample_ns = now
        try:
            self._resources.write(self._sampler.host, self._sampler.sample(), now)
            if now - self._last_prune_ns > 3600 * NS:
                self._last_prune_ns = now
                self._resources.prune(now - RESOURCE_RETENTION_NS)
        except Exception:
            log.exception("resource sampling failed")
