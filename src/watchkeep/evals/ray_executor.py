"""Run a plan's cases on a Ray cluster: one remote task per batch, results streamed back.

Each task runs the very same ``run_cases`` the local executor runs, on plain-data cases and
a plain-data plan, so results are identical on the same seed (every random choice comes
from ``case_seed``). Batches come back as they finish and go straight to the sink, so an
interrupted run keeps every batch already stored and a resume skips them. Ray is an
optional extra (``watchkeep[ray]``): it is imported only when this executor runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from watchkeep.evals.model import Case, ItemResult, ResultSink, RunPlan

MAX_BATCH = 10_000


class ExecutorError(RuntimeError):
    """The cluster could not be reached or a batch failed beyond Ray's own retries."""


def run_batch(plan: RunPlan, cases: list[Case], gateway_url: str | None = None) -> list[ItemResult]:
    """What one Ray task does: run the batch with the local runner, collect its results."""
    from watchkeep.evals.runner import run_cases

    collected: list[ItemResult] = []

    async def collect(results: list[ItemResult]) -> None:
        collected.extend(results)

    asyncio.run(run_cases(plan, cases, collect, gateway_url=gateway_url))
    return collected


def _batches(cases: Sequence[Case], size: int) -> list[list[Case]]:
    return [list(cases[i : i + size]) for i in range(0, len(cases), size)]


class RayExecutor:
    """``Executor`` on Ray: connects to ``address`` (or the running instance, or starts a
    local one, shut down again after the run; ``gateway_url`` is where route targets without
    a URL go) and keeps at most ``max_in_flight`` batches
    submitted at once so a large run does not queue every case in the object store."""

    def __init__(
        self,
        address: str | None = None,
        *,
        batch_size: int = 256,
        num_cpus: int | None = None,
        max_in_flight: int | None = None,
        gateway_url: str | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        self.address = address
        self.batch_size = batch_size
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight
        self.gateway_url = gateway_url

    def _connect(self) -> tuple[Any, bool]:
        """The ``ray`` module and whether this call started it (so it shuts it down)."""
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - the extra is installed in CI
            raise ExecutorError("--executor ray needs the ray extra: pip install 'watchkeep[ray]'") from exc
        if ray.is_initialized():
            return ray, False
        try:
            if self.address is None:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ExecutorError(f"cannot start or reach Ray at {self.address or 'local'}: {exc}") from exc
        return ray, True

    async def execute(self, plan: RunPlan, cases: Sequence[Case], sink: ResultSink) -> None:
        """Run ``cases`` in batches on the cluster, handing each batch's results to ``sink``."""
        if not cases:
            return
        ray, started = await asyncio.to_thread(self._connect)
        try:
            await self._run(ray, plan, cases, sink)
        finally:
            if started:
                await asyncio.to_thread(ray.shutdown)

    async def _run(self, ray: Any, plan: RunPlan, cases: Sequence[Case], sink: ResultSink) -> None:
        remote = ray.remote(max_retries=2)(run_batch)
        plan_ref = ray.put(plan)
        limit = self.max_in_flight or max(2, int(ray.cluster_resources().get("CPU", 1)) * 2)
        queue = _batches(cases, self.batch_size)
        pending: list[Any] = []
        while queue or pending:
            while queue and len(pending) < limit:
                pending.append(remote.remote(plan_ref, queue.pop(0), self.gateway_url))
            ready, pending = await asyncio.to_thread(ray.wait, pending, num_returns=1)
            try:
                results: list[ItemResult] = await asyncio.to_thread(ray.get, ready[0])
            except Exception as exc:  # a RayTaskError wraps the worker's exception
                for ref in pending:
                    ray.cancel(ref)
                raise ExecutorError(f"a Ray batch failed: {exc}") from exc
            await sink(results)
