"""Project routes edited through the API, kept the same in every gateway process.

Edits go to the store first and then the local table is reloaded from it, so the
process that took the edit serves it at once; every other process polls the store's
revision counter (one small read every ``interval`` seconds) and reloads when it moved.
Stored routes are validated again on load: a route the gateway file or settings no
longer allow (``admission``: an origin, a secret binding, an address, a llama.cpp
deployment, a ttl) is skipped with a warning, not served.

Registry references are resolved on every load (``refs``): a deployment ``{backend:
registry, model: bot@production}`` becomes that model version's deployment and ``prompt:``
a prompt binding, then the resolved route meets the same policy as any API route. One
load resolves each reference once (so every route naming ``bot@production`` agrees on its
version) and the project tables are swapped whole: an alias move is never half-served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from watchkeep.gateway.admission import ApiRoutePolicy
from watchkeep.gateway.config import REGISTRY_REF, DeploymentSpec, RouteSpec
from watchkeep.gateway.refs import PromptBinding, RefError, RefResolver, ResolvedModel
from watchkeep.gateway.routing import LoadedRoute, Route, RouteTable
from watchkeep.logs import RepeatedErrorLog
from watchkeep.store.route_repository import RouteRepository, StoredRoute

log = logging.getLogger(__name__)


class RouteRefused(Exception):
    """A route edit the gateway will not take; ``code`` is ``invalid_request`` (the
    operator's policy) or ``quota_exceeded`` (``WATCHKEEP_QUOTA_ROUTES``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Resolution:
    """The registry lookups of one load: each ``(project, ref)`` is looked up once."""

    def __init__(self, resolver: RefResolver | None) -> None:
        self._resolver = resolver
        self._models: dict[tuple[int, str], ResolvedModel] = {}
        self._prompts: dict[tuple[int, str], PromptBinding] = {}

    def _model(self, project_id: int, d: DeploymentSpec) -> DeploymentSpec:
        if d.backend != "registry":
            return d
        if self._resolver is None:
            raise RefError(f"{d.name}: the registry is not available to this gateway")
        key = (project_id, d.model or "")
        resolved = self._models.get(key)
        if resolved is None:
            resolved = self._models[key] = self._resolver.model(project_id, key[1], d)
        return resolved.spec.model_copy(update={"name": d.name, "weight": d.weight, "timeout_s": d.timeout_s})

    def _prompt(self, project_id: int, ref: str | None) -> PromptBinding | None:
        if ref is None:
            return None
        if self._resolver is None:
            raise RefError("prompt: the registry is not available to this gateway")
        key = (project_id, ref)
        binding = self._prompts.get(key)
        if binding is None:
            binding = self._prompts[key] = self._resolver.prompt(project_id, ref)
        return binding

    def route(self, project_id: int, spec: RouteSpec) -> LoadedRoute:
        """``spec`` with its references resolved; ``RefError`` says which does not resolve."""
        if spec.prompt is None and all(d.backend != "registry" for d in spec.all_deployments()):
            return LoadedRoute(spec, spec)
        try:
            served = spec.model_copy(
                update={
                    "deployments": [self._model(project_id, d) for d in spec.deployments],
                    "fallbacks": [self._model(project_id, d) for d in spec.fallbacks],
                    "shadow": self._model(project_id, spec.shadow) if spec.shadow else None,
                    "prompt": None,
                }
            )
            return LoadedRoute(spec, served, self._prompt(project_id, spec.prompt))
        except RefError as exc:
            raise RefError(f"route {spec.name!r}: {exc}") from None


class RouteSync:
    """Applies API route edits through the store and follows other processes' edits."""

    def __init__(
        self,
        table: RouteTable,
        policy: ApiRoutePolicy,
        store: RouteRepository,
        *,
        quota: int | None = None,
        resolver: RefResolver | None = None,
    ) -> None:
        self._table = table
        self._resolver = resolver
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
            loaded = await run_in_threadpool(self._load, stored)
            self._table.replace_project_routes(loaded)
            self._revision = revision
            return True

    def _load(self, stored: list[StoredRoute]) -> dict[int, list[LoadedRoute]]:
        """The stored routes that may be served, resolved (blocking: reads the registry)."""
        resolution = Resolution(self._resolver)
        loaded: dict[int, list[LoadedRoute]] = {}
        for row in stored:
            try:
                spec = RouteSpec.model_validate({**row.spec, "name": row.name})
                route = resolution.route(row.project_id, spec)
            except (ValidationError, RefError) as exc:
                log.warning("stored route %r of project %d is invalid: %s", row.name, row.project_id, exc)
                continue
            refusal = self._policy.refusal(route.served)
            if refusal is not None:
                log.warning(
                    "stored route %r of project %d is not served: %s", row.name, row.project_id, refusal
                )
                continue
            loaded.setdefault(row.project_id, []).append(route)
        return loaded

    async def put(self, project_id: int, spec: RouteSpec) -> Route:
        """Store and serve the project's route ``spec.name``; ``RouteRefused`` when the
        operator's policy does not allow it or a new route would pass the project's quota."""
        try:
            loaded = await run_in_threadpool(Resolution(self._resolver).route, project_id, spec)
        except RefError as exc:
            raise RouteRefused("invalid_request", str(exc)) from None
        self._admit(project_id, loaded.served)
        body = spec.model_dump(mode="json", exclude={"name"})
        await run_in_threadpool(self._store.put, project_id, spec.name, body)
        await self.refresh(force=True)
        route = self._table.resolve(project_id, spec.name)
        if route is None or route.scope != project_id:  # a reference moved away meanwhile
            raise RouteRefused("invalid_request", f"route {spec.name!r} was stored but no longer resolves")
        return route

    async def by_reference(self, project_id: int, ref: str) -> Route | None:
        """A single-deployment route serving the model version ``ref`` (``bot@3``,
        ``bot@production``) to the project's calls, or None when it does not resolve;
        ``RouteRefused`` when the operator's policy does not allow that version."""
        route = self._table.adhoc(project_id, ref)
        if route is not None or not REGISTRY_REF.match(ref):
            return route
        try:
            spec = RouteSpec(
                name=ref,
                deployments=[DeploymentSpec(name=ref.partition("@")[0], backend="registry", model=ref)],
            )
        except ValidationError:
            return None
        revision = self._revision
        try:
            loaded = await run_in_threadpool(Resolution(self._resolver).route, project_id, spec)
        except RefError:
            return None
        refusal = self._policy.refusal(loaded.served)
        if refusal is not None:
            raise RouteRefused("invalid_request", f"{ref}: {refusal}")
        if revision != self._revision:  # reloaded meanwhile: serve this call, keep nothing stale
            return self._table.build(loaded, project_id)
        return self._table.add_adhoc(project_id, loaded)

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
        errors = RepeatedErrorLog(log)  # an outage logs one traceback, then a count
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the database may be briefly away: keep serving, try again
                errors.failed(exc, "could not reload the stored gateway routes")
            else:
                errors.recovered()
            await asyncio.sleep(interval)
