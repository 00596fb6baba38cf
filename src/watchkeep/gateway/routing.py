"""The route table: public model names, the deployments behind them, and their state.

Routes from the YAML file serve every project; a project can add or replace routes
through the API, for itself only. Backends and breakers are kept by deployment
identity across edits, so changing a weight does not drop connection pools, reload a
model or forget that a deployment is failing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from watchkeep.gateway.backends import Backend, build_backend
from watchkeep.gateway.config import DeploymentSpec, GatewayConfig, RouteSpec
from watchkeep.gateway.resilience import BreakerState, CircuitBreaker

GLOBAL = 0  # the scope of routes from the file (project ids start at 1)


@dataclass(slots=True)
class Deployment:
    """A deployment with its live backend and breaker."""

    spec: DeploymentSpec
    backend: Backend
    breaker: CircuitBreaker

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

    @property
    def name(self) -> str:
        return self.spec.name

    def pick(self, rng: random.Random) -> Deployment:
        """The primary for this request, by weight (the canary split)."""
        if len(self.primaries) == 1:
            return self.primaries[0]
        weights = [d.spec.weight for d in self.primaries]
        return rng.choices(self.primaries, weights)[0]

    def order(self, first: Deployment) -> list[Deployment]:
        """Who to try: the pick, the other primaries by weight, then the fallbacks in order."""
        others = sorted((d for d in self.primaries if d is not first), key=lambda d: -d.spec.weight)
        return [first, *others, *self.fallbacks]


BreakerListener = Callable[[str, BreakerState], None]


class RouteTable:
    """Resolves ``(project, model)`` to a route; owns backends and breakers."""

    def __init__(self, config: GatewayConfig, on_breaker: BreakerListener | None = None) -> None:
        self.config = config
        self._on_breaker = on_breaker
        self._backends: dict[str, Backend] = {}
        self._breakers: dict[tuple[int, str, str, str], CircuitBreaker] = {}
        self._routes: dict[int, dict[str, Route]] = {GLOBAL: {}}
        for spec in config.routes:
            self._routes[GLOBAL][spec.name] = self._build(spec, GLOBAL)

    def _backend(self, spec: DeploymentSpec) -> Backend:
        identity = spec.model_dump_json(exclude={"name", "version", "weight"})
        backend = self._backends.get(identity)
        if backend is None:
            backend = self._backends[identity] = build_backend(spec)
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
        return Deployment(spec, self._backend(spec), breaker)

    def _build(self, spec: RouteSpec, scope: int) -> Route:
        return Route(
            spec=spec,
            scope=scope,
            primaries=[self._deployment(spec, d, scope) for d in spec.deployments],
            fallbacks=[self._deployment(spec, d, scope) for d in spec.fallbacks],
            shadow=self._deployment(spec, spec.shadow, scope) if spec.shadow else None,
        )

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

    def replace_project_routes(self, specs: dict[int, list[RouteSpec]]) -> None:
        """Make ``specs`` every project's own routes (the stored set), in one swap.

        Breakers of unchanged deployments carry over (``_deployment`` finds them by key).
        """
        routes: dict[int, dict[str, Route]] = {GLOBAL: self._routes[GLOBAL]}
        for project_id, project_specs in specs.items():
            routes[project_id] = {spec.name: self._build(spec, project_id) for spec in project_specs}
        self._routes = routes

    def breakers(self) -> dict[str, BreakerState]:
        """Every breaker's state by ``route/deployment`` (shared routes)."""
        return {f"{k[1]}/{k[2]}": b.state for k, b in self._breakers.items() if k[0] == GLOBAL}

    async def aclose(self) -> None:
        """Close every backend."""
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
