"""Resource use of this process, its children (local model servers) and the GPUs.

CPU and resident memory come from psutil; GPU utilisation and memory from NVML
(``nvidia-ml-py``) when a driver and a GPU are there, and are simply absent otherwise.
Each sample updates gauges on the app's Prometheus registry and is returned as rows
that the worker stores, so monitors can watch resources like any other metric.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine, delete, func, insert, select

from watchkeep.store.clock import now_ns
from watchkeep.store.tables import resource_samples

log = logging.getLogger(__name__)
MAX_CHILDREN = 8


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured value."""

    process: str
    metric: str
    value: float


class GpuProbe:
    """NVML, initialised once; reports no GPUs when the library or the driver is missing."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self.status = "none"
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            count = pynvml.nvmlDeviceGetCount()
            self.status = f"{count} GPU(s)" if count else "none"
        except Exception as exc:  # no library, no driver, no device: all mean "no GPU"
            log.debug("no GPU telemetry: %s", exc)
            self._nvml = None

    def sample(self) -> list[Sample]:
        """Utilisation (percent) and memory used (bytes) of every GPU."""
        if self._nvml is None:
            return []
        out: list[Sample] = []
        try:
            for i in range(self._nvml.nvmlDeviceGetCount()):
                handle = self._nvml.nvmlDeviceGetHandleByIndex(i)
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                out.append(Sample(f"gpu{i}", "gpu_utilization_percent", float(util.gpu)))
                out.append(Sample(f"gpu{i}", "gpu_memory_used_bytes", float(mem.used)))
                out.append(Sample(f"gpu{i}", "gpu_memory_total_bytes", float(mem.total)))
        except Exception as exc:
            log.warning("GPU sampling failed: %s", exc)
        return out


class ResourceSampler:
    """Samples the watched processes and GPUs, and exports the latest values."""

    def __init__(self, role: str, registry: CollectorRegistry | None = None) -> None:
        self.role = role
        self.host = socket.gethostname()
        self._self = psutil.Process(os.getpid())
        self._self.cpu_percent(None)  # prime: the first call has no interval to measure
        self._children: dict[int, psutil.Process] = {}
        self.gpu = GpuProbe()
        self._gauges: dict[str, Gauge] = {}
        if registry is not None:
            for metric, doc in (
                ("cpu_percent", "CPU use of a watched process, percent of one core."),
                ("memory_rss_bytes", "Resident memory of a watched process."),
                ("gpu_utilization_percent", "GPU utilisation over the last sample period."),
                ("gpu_memory_used_bytes", "GPU memory in use."),
                ("gpu_memory_total_bytes", "GPU memory in total."),
            ):
                self._gauges[metric] = Gauge(
                    f"watchkeep_resource_{metric}", doc, ["process"], registry=registry
                )

    def _processes(self) -> Iterable[tuple[str, psutil.Process]]:
        yield self.role, self._self
        try:
            children = self._self.children(recursive=True)[:MAX_CHILDREN]
        except psutil.Error:
            children = []
        alive = {c.pid for c in children}
        for pid in list(self._children):
            if pid not in alive:
                del self._children[pid]
        for child in children:
            proc = self._children.get(child.pid)
            if proc is None:
                proc = self._children[child.pid] = child
                proc.cpu_percent(None)
                continue  # measured from the next sample on
            try:
                yield f"{self.role}/{proc.name()}", proc
            except psutil.Error:
                continue

    def sample(self) -> list[Sample]:
        """Measure now; update the gauges; return the samples."""
        out: list[Sample] = []
        for name, proc in self._processes():
            try:
                with proc.oneshot():
                    out.append(Sample(name, "cpu_percent", float(proc.cpu_percent(None))))
                    out.append(Sample(name, "memory_rss_bytes", float(proc.memory_info().rss)))
            except psutil.Error:
                continue
        out.extend(self.gpu.sample())
        for s in out:
            gauge = self._gauges.get(s.metric)
            if gauge is not None:
                gauge.labels(s.process).set(s.value)
        return out


class ResourceStore:
    """Stored resource samples: written by workers, read by monitors and the API."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(self, host: str, samples: list[Sample], at_ns: int | None = None) -> None:
        """Store one round of samples."""
        if not samples:
            return
        at = at_ns if at_ns is not None else now_ns()
        rows = [
            {
                "sampled_at_unix_nano": at,
                "host": host,
                "process": s.process,
                "metric": s.metric,
                "value": s.value,
            }
            for s in samples
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(resource_samples), rows)

    def peak(self, metric: str, process: str | None, start_ns: int, end_ns: int) -> tuple[int, float | None]:
        """How many samples of ``metric`` lie in [start, end) and their maximum."""
        c = resource_samples.c
        cond = [c.metric == metric, c.sampled_at_unix_nano >= start_ns, c.sampled_at_unix_nano < end_ns]
        if process is not None:
            cond.append(c.process == process)
        with self._engine.connect() as conn:
            n, peak = conn.execute(select(func.count(), func.max(c.value)).where(*cond)).one()
        return int(n), None if peak is None else float(peak)

    def recent(
        self, start_ns: int, end_ns: int, metric: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Samples in [start, end), newest first."""
        c = resource_samples.c
        cond = [c.sampled_at_unix_nano >= start_ns, c.sampled_at_unix_nano < end_ns]
        if metric is not None:
            cond.append(c.metric == metric)
        query = (
            select(c.sampled_at_unix_nano, c.host, c.process, c.metric, c.value)
            .where(*cond)
            .order_by(c.sampled_at_unix_nano.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def prune(self, before_ns: int) -> int:
        """Delete samples older than ``before_ns``; how many were deleted."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(resource_samples).where(resource_samples.c.sampled_at_unix_nano < before_ns)
            )
        return int(result.rowcount or 0)
