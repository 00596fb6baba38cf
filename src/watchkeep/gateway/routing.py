"""The route table: public model names, the deployments behind them, and their state.

Routes from the YAML file serve every project; a project can add or replace routes
through the API, for itself only. Backends and breakers are kept by deployment
identity across edits, so changing a weight does not drop connection pools, reload a
model or forget that a deployment is failing; once no route uses a backend any more it
is closed (after the calls it is serving), so deleted routes leave no pools or models.

Backends of project routes connect through the egress policy (a name resolving to an
internal address is refused when connecting); the operator's file is trusted. Every
llama.cpp deployment with the same model file, context, slots and threads shares one
backend, so routes cannot multiply loaded models.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from watchkeep.gateway.backends import Backend, build_backend
from watchkeep.gateway.cache import deployment_identity
from watchkeep.gateway.config import DeploymentSpec, GatewayConfig, RouteSpec
from watchkeep.gateway.refs import PromptBinding
from watchkeep.gateway.resilience import BreakerState, CircuitBreaker
from watchkeep.security.egress import AddressPolicy

log = logging.getLogger(__name__)
GLOBAL = 0  # the scope of routes from the file (project ids start at 1)
# How long a retired backend waits for its calls before it is closed anyway (the longest
# deployment timeout; only a stream that keeps producing can last longer).
RETIRE_GRACE_S = 3600.0
# Routes built on demand for calls naming a model version (``bot@3``) per project, LRU.
ADHOC_PER_PROJECT = 64


@dataclass(frozen=True, slots=True)
class LoadedRoute:
    """A stored route with its registry references resolved: ``spec`` as stored (what the
    API shows), ``served`` with every registry deployment replaced by its model version."""

    spec: RouteSpec
    served: RouteSpec
    prompt: PromptBinding | None = None


@dataclass(slots=True)
class Deployment:
    """A deployment with its live backend and breaker."""

    spec: DeploymentSpec
    backend: Backend
    breaker: CircuitBreaker
    identity: bytes  # ``cache.deployment_identity``: computed once, part of every cache key

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def upstream_model(self) -> str:
        return self.spec.model or self.spec.name


@dataclass(slots=True)
class Route:
    """A public model name, ready to dispatch."""

    spec: RouteSpec
    scope: int
    primaries: list[Deployment]
    fallbacks: list[Deployment]
    shadow: Deployment | None
    prompt: PromptBinding | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def deployments(self) -> list[Deployment]:
        """Primaries, fallbacks and the shadow."""
        return [*self.primaries, *self.fallbacks, *([self.shadow] if self.shadow else [])]

    def pick(self, rng: random.Random) -> Deployment:
        """The primary for this request, by weight (the canary split)."""
        if len(self.primaries) == 1:
            return self.primaries[0]
        weights = [d.spec.weight for d in self.primaries]
        return rng.choices(self.primaries, weights)[0]

    def order(self, first: Deployment) -> list[Deployment]:
        """Who to try: the pick, the other primaries by weight (unless ``failover`` is off),
        then the fallbacks in order."""
        if not self.spec.failover:
            return [first, *self.fallbacks]
        others = sorted((d for d in self.primaries if d is not first), key=lambda d: -d.spec.weight)
        return [first, *others, *self.fallbacks]


BreakerListener = Callable[[str, BreakerState], None]


class RouteTable:
    """Resolves ``(project, model)`` to a route; owns backends and breakers."""

    def __init__(
        self,
        config: GatewayConfig,
        egress: AddressPolicy | None = None,
        on_breaker: BreakerListener | None = None,
    ) -> None:
        self.config = config
        self._egress = egress or AddressPolicy()
        self._on_breaker = on_breaker
        self._backends: dict[str, Backend] = {}
        self._breakers: dict[tuple[int, str, str, str], CircuitBreaker] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._routes: dict[int, dict[str, Route]] = {GLOBAL: {}}
        self._adhoc: dict[int, OrderedDict[str, Route]] = {}
        for spec in config.routes:
            self._routes[GLOBAL][spec.name] = self._build(spec, GLOBAL)

    @staticmethod
    def _identity(spec: DeploymentSpec, guarded: bool) -> str:
        if spec.backend == "llama_cpp":
            return f"llama_cpp {spec.llama_profile!r}"
        return f"{guarded} {spec.model_dump_json(exclude={'name', 'version', 'weight'})}"

    def _backend(self, spec: DeploymentSpec, scope: int) -> Backend:
        guarded = scope != GLOBAL and spec.backend == "openai_compatible"
        identity = self._identity(spec, guarded)
        backend = self._backends.get(identity)
        if backend is None:
            backend = self._backends[identity] = build_backend(spec, self._egress if guarded else None)
        return backend

    def _deployment(self, route: RouteSpec, spec: DeploymentSpec, scope: int) -> Deployment:
        key = (scope, route.name, spec.name, spec.model_dump_json(include={"backend", "base_url", "model"}))
        breaker = self._breakers.get(key)
        if breaker is None or (
            breaker.failure_threshold,
            breaker.reset_timeout,
        ) != (route.breaker.failure_threshold, route.breaker.reset_timeout_s):
            listener = self._on_breaker
            label = f"{route.name}/{spec.name}"
            breaker = CircuitBreaker(
                route.breaker.failure_threshold,
                route.breaker.reset_timeout_s,
                on_change=(lambda state: listener(label, state)) if listener else None,
            )
            self._breakers[key] = breaker
        return Deployment(spec, self._backend(spec, scope), breaker, deployment_identity(route.name, spec))

    def _build(self, source: RouteSpec | LoadedRoute, scope: int) -> Route:
        loaded = source if isinstance(source, LoadedRoute) else LoadedRoute(source, source)
        served = loaded.served
        return Route(
            spec=loaded.spec,
            scope=scope,
            primaries=[self._deployment(served, d, scope) for d in served.deployments],
            fallbacks=[self._deployment(served, d, scope) for d in served.fallbacks],
            shadow=self._deployment(served, served.shadow, scope) if served.shadow else None,
            prompt=loaded.prompt,
        )

    def build(self, loaded: LoadedRoute, scope: int) -> Route:
        """A route for one call, not kept in the table (its backends are, until released)."""
        return self._build(loaded, scope)

    def resolve(self, project_id: int, model: str) -> Route | None:
        """The project's own route of that name, else the shared one."""
        own = self._routes.get(project_id)
        if own is not None:
            route = own.get(model)
            if route is not None:
                return route
        return self._routes[GLOBAL].get(model)

    def visible(self, project_id: int) -> list[Route]:
        """Every route the project can call, its own shadowing shared ones of the same name."""
        merged = {**self._routes[GLOBAL], **self._routes.get(project_id, {})}
        return [merged[name] for name in sorted(merged)]

    def replace_project_routes(self, specs: Mapping[int, Sequence[RouteSpec | LoadedRoute]]) -> None:
        """Make ``specs`` every project's own routes (the stored set), in one swap.

        Breakers of unchanged deployments carry over (``_deployment`` finds them by key);
        backends and breakers no route uses any more are released. Routes built for calls
        by reference are dropped: an alias may have moved.
        """
        routes: dict[int, dict[str, Route]] = {GLOBAL: self._routes[GLOBAL]}
        for project_id, project_specs in specs.items():
            routes[project_id] = {
                s.spec.name if isinstance(s, LoadedRoute) else s.name: self._build(s, project_id)
                for s in project_specs
            }
        self._routes = routes
        self._adhoc = {}
        self._release_unused()

    def adhoc(self, project_id: int, ref: str) -> Route | None:
        """The route built for calls naming ``ref`` (a model version) since the last reload."""
        cached = self._adhoc.get(project_id)
        route = cached.get(ref) if cached is not None else None
        if route is not None and cached is not None:
            cached.move_to_end(ref)
        return route

    def add_adhoc(self, project_id: int, loaded: LoadedRoute) -> Route:
        """Serve ``loaded`` (one model version) to the project's calls by reference until the
        next reload; the least recently used beyond ``ADHOC_PER_PROJECT`` is dropped."""
        route = self._build(loaded, project_id)
        cached = self._adhoc.setdefault(project_id, OrderedDict())
        cached[loaded.spec.name] = route
        if len(cached) > ADHOC_PER_PROJECT:
            cached.popitem(last=False)
            self._release_unused()
        return route

    def _release_unused(self) -> None:
        deployments = [
            d
            for scoped in (*self._routes.values(), *self._adhoc.values())
            for r in scoped.values()
            for d in r.deployments()
        ]
        used = {id(d.backend) for d in deployments}
        for identity, backend in list(self._backends.items()):
            if id(backend) not in used:
                del self._backends[identity]
                task = asyncio.get_running_loop().create_task(_close_when_idle(backend))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
        breakers = {id(d.breaker) for d in deployments}
        self._breakers = {k: b for k, b in self._breakers.items() if id(b) in breakers}

    def breakers(self) -> dict[str, BreakerState]:
        """Every breaker's state by ``route/deployment`` (shared routes)."""
        return {f"{k[1]}/{k[2]}": b.state for k, b in self._breakers.items() if k[0] == GLOBAL}

    async def aclose(self) -> None:
        """Close every backend, retired ones included, without waiting for their calls."""
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()


async def _close_when_idle(backend: Backend) -> None:
    """Close a backend no route uses, once the calls it is serving are done."""
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RETIRE_GRACE_S):
                await backend.in_flight.idle()
    finally:
        try:
            await backend.aclose()
        except Exception:  # closing is best effort: the backend is unreachable either way
            log.exception("could not close a gateway backend")
