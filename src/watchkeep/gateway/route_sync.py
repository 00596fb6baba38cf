"""Project routes edited through the API, kept the same in every gateway process.

Edits go to the store first and then the local table is reloaded from it, so the
process that took the edit serves it at once; every other process polls the store's
revision counter (one small read every ``interval`` seconds) and reloads when it moved.
Stored routes are validated again on load: a route the gateway file or settings no
longer allow (``admission``: an origin, a secret binding, an address, a llama.cpp
deployment, a ttl) is skipped with a warning, not served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from watchkeep.gateway.admission import ApiRoutePolicy
from watchkeep.gateway.config import RouteSpec
from watchkeep.gateway.routing import Route, RouteTable
from watchkeep.store.route_repository import RouteRepository

log = logging.getLogger(__name__)


class RouteRefused(Exception):
    """A route edit the gateway will not take; ``code`` is ``invalid_request`` (the
    operator's policy) or ``quota_exceeded`` (``WATCHKEEP_QUOTA_ROUTES``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RouteSync:
    """Applies API route edits through the store and follows other processes' edits."""

    def __init__(
        self, table: RouteTable, policy: ApiRoutePolicy, store: RouteRepository, *, quota: int | None = None
    ) -> None:
        self._table = table
        self._policy = policy
        self._store = store
        self._quota = quota
        self._revision: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload the stored routes if their revision moved (or ``force``); whether it did."""
        store = self._store
        async with self._lock:
            if not force and await run_in_threadpool(store.revision) == self._revision:
                return False
            revision, stored = await run_in_threadpool(store.load)
            specs: dict[int, list[RouteSpec]] = {}
            for row in stored:
                try:
                    spec = RouteSpec.model_validate({**row.spec, "name": row.name})
                except ValidationError as exc:
                    log.warning("stored route %r of project %d is invalid: %s", row.name, row.project_id, exc)
                    continue
                refusal = self._policy.refusal(spec)
                if refusal is not None:
                    log.warning(
                        "stored route %r of project %d is not served: %s", row.name, row.project_id, refusal
                    )
                    continue
                specs.setdefault(row.project_id, []).append(spec)
            self._table.replace_project_routes(specs)
            self._revision = revision
            return True

    async def put(self, project_id: int, spec: RouteSpec) -> Route:
        """Store and serve the project's route ``spec.name``; ``RouteRefused`` when the
        operator's policy does not allow it or a new route would pass the project's quota."""
        self._admit(project_id, spec)
        body = spec.model_dump(mode="json", exclude={"name"})
        await run_in_threadpool(self._store.put, project_id, spec.name, body)
        await self.refresh(force=True)
        route = self._table.resolve(project_id, spec.name)
        assert route is not None  # just stored and validated
        return route

    def _admit(self, project_id: int, spec: RouteSpec) -> None:
        refusal = self._policy.refusal(spec)
        if refusal is not None:
            raise RouteRefused("invalid_request", refusal)
        quota = self._quota
        if quota is None:
            return
        own = [r for r in self._table.visible(project_id) if r.scope == project_id]
        if len(own) >= quota and all(r.name != spec.name for r in own):
            raise RouteRefused(
                "quota_exceeded",
                f"a project can have at most {quota} routes (WATCHKEEP_QUOTA_ROUTES); delete one first",
            )

    async def delete(self, project_id: int, name: str) -> bool:
        """Remove the project's own route ``name``; whether it had one."""
        removed = await run_in_threadpool(self._store.delete, project_id, name)
        if removed:
            await self.refresh(force=True)
        return removed

    def start(self, interval: float) -> None:
        """Poll for other processes' edits every ``interval`` seconds (on the running loop)."""
        if interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow(interval))

    async def aclose(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self, interval: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the database may be briefly away: keep serving, try again
                log.exception("could not reload the stored gateway routes")
            await asyncio.sleep(interval)
