"""What a route created through the API may use: the operator's file and settings decide.

A project admin can add routes, but every resource such a route reaches belongs to the
operator: the secrets in the gateway's environment, the network it sits on, the CPU and
memory of the llama.cpp models and the cache. So an API route may

- name an upstream origin only from the file's routes or ``allowed_upstream_origins``;
- send a secret (``api_key_env``) only to an origin the file binds it to (its routes'
  use of it, plus ``secret_origins``), so a secret cannot be pointed at a caller's host
  (LiteLLM CVE-2024-6587, Langfuse CVE-2026-41487);
- reach loopback, private, link-local or metadata addresses only where
  ``WATCHKEEP_EGRESS_ALLOW_NETWORKS`` allows them (checked here on the URL, and again on
  the resolved address when connecting: see ``routing``);
- use llama.cpp only as the file defines it (model file, context, slots, threads);
- cache for no longer than ``WATCHKEEP_GATEWAY_CACHE_MAX_TTL_S``.

The same check runs on every edit and whenever stored routes are loaded, so narrowing
the file or the settings withdraws what they no longer allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from watchkeep.config import Settings
from watchkeep.gateway.config import DeploymentSpec, GatewayConfig, LlamaProfile, RouteBody
from watchkeep.security.egress import AddressPolicy, EgressRefused


@dataclass(frozen=True, slots=True)
class ApiRoutePolicy:
    """The operator's bounds on routes created through the API."""

    secret_bindings: dict[str, frozenset[str]]
    upstream_origins: frozenset[str]
    llama_profiles: frozenset[LlamaProfile]
    egress: AddressPolicy
    max_ttl_s: float

    @classmethod
    def build(cls, config: GatewayConfig, settings: Settings, egress: AddressPolicy) -> ApiRoutePolicy:
        """The bounds the gateway file and the settings set."""
        return cls(
            secret_bindings=config.secret_bindings(),
            upstream_origins=config.upstream_origins(),
            llama_profiles=config.llama_profiles(),
            egress=egress,
            max_ttl_s=settings.gateway_cache_max_ttl_s,
        )

    def refusal(self, route: RouteBody) -> str | None:
        """Why an API route may not be served, or None."""
        if route.cache.ttl_s > self.max_ttl_s:
            return (
                f"cache.ttl_s {route.cache.ttl_s:g} is above the operator's ceiling of "
                f"{self.max_ttl_s:g} s (WATCHKEEP_GATEWAY_CACHE_MAX_TTL_S)"
            )
        for d in route.all_deployments():
            why = self._deployment_refusal(d)
            if why is not None:
                return f"{d.name}: {why}"
        return None

    def _deployment_refusal(self, d: DeploymentSpec) -> str | None:
        if d.backend == "llama_cpp":
            if d.llama_profile not in self.llama_profiles:
                return (
                    "a llama_cpp deployment must match one the gateway file defines "
                    "(model_path, n_ctx, parallel and threads)"
                )
            return None
        if d.base_url is None:
            return None
        try:
            origin = self.egress.check_url(d.base_url)
        except EgressRefused as exc:
            return f"the upstream is refused by the egress policy: {exc}"
        if origin not in self.upstream_origins:
            return (
                f"the upstream origin {origin} is not one the operator allows "
                "(the gateway file's routes and allowed_upstream_origins)"
            )
        if d.api_key_env is not None and origin not in self.secret_bindings.get(d.api_key_env, ()):
            return (
                f"api_key_env {d.api_key_env!r} may be sent only to the origins the gateway file "
                "binds it to (its routes and secret_origins)"
            )
        return None
