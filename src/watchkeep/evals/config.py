"""The evaluation run's configuration: one YAML file, validated before anything runs.

``watchkeep eval run CONFIG.yaml`` reads it; the API may later accept the same model.
Every list and number is bounded, so a config cannot ask for unbounded work, and every
unknown key is an error that names it (a typo must not silently change a release gate).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchkeep.monitor.spec import safe_yaml

MAX_CONFIG_BYTES = 256 * 1024
MAX_REPEATS = 50
MAX_CONCURRENCY = 512
PERTURBATIONS = ("typos", "case", "whitespace", "irrelevant", "paraphrase")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteTarget(_Strict):
    """A gateway route: any model the gateway serves, the embedded one included."""

    kind: Literal["route"] = "route"
    route: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, description="The gateway's base URL; default: this server's.")
    api_key_env: str = "WATCHKEEP_API_KEY"
    version: str | None = Field(default=None, max_length=200, description="Overrides the version label.")


class OpenAITarget(_Strict):
    """Any OpenAI-compatible chat completions endpoint."""

    kind: Literal["openai"] = "openai"
    base_url: str = Field(min_length=1, max_length=2000)
    model: str = Field(min_length=1, max_length=200)
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    version: str | None = Field(default=None, max_length=200)


class PythonTarget(_Strict):
    """A Python callable ``module:function`` taking (messages, params), sync or async."""

    kind: Literal["python"] = "python"
    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", max_length=300)
    version: str | None = Field(default=None, max_length=200)


TargetSpec = Annotated[RouteTarget | OpenAITarget | PythonTarget, Field(discriminator="kind")]


class DatasetRef(_Strict):
    """Which dataset version to run: by name and version (``latest``, a number or a hash prefix)."""

    name: str = Field(min_length=1, max_length=200)
    version: int | str = "latest"
    split: str | None = None
    file: str | None = Field(default=None, description="Import this file first (a no-op if unchanged).")
    limit: int | None = Field(default=None, ge=1, le=1_000_000)


class PromptSpec(_Strict):
    """How an item's input becomes messages: a system prompt and a Jinja2 (sandboxed) template."""

    system: str | None = Field(default=None, max_length=100_000)
    template: str | None = Field(default=None, max_length=100_000)


class EvaluatorSpec(_Strict):
    name: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class AdversarialSpec(_Strict):
    """The built-in adversarial suite: which families, how many probes of each."""

    families: list[str] = Field(default_factory=lambda: ["all"], max_length=50)
    limit_per_family: int | None = Field(default=None, ge=1, le=10_000)
    system_prompt: str | None = Field(default=None, max_length=100_000)


class GateSpec(_Strict):
    """When a candidate counts as a regression against its baseline (see ``evals.gate``)."""

    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    max_drop: float = Field(default=0.0, ge=0, le=1, description="Non-inferiority margin on pass rate.")
    metrics: list[str] = Field(default_factory=lambda: ["pass_rate"], max_length=50)
    thresholds: dict[str, float] = Field(default_factory=dict, max_length=50)
    max_error_rate: float = Field(default=0.1, ge=0, le=1)
    bootstrap_resamples: int = Field(default=2000, ge=100, le=100_000)


class RunConfig(_Strict):
    """One evaluation run: what to ask, whom, how to judge it, and when it fails the gate."""

    name: str = Field(min_length=1, max_length=200)
    project: str | None = Field(default=None, max_length=200)
    dataset: DatasetRef | None = None
    target: TargetSpec
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    params: dict[str, Any] = Field(default_factory=dict, max_length=50)
    evaluators: list[EvaluatorSpec] = Field(default_factory=list, max_length=50)
    judge: TargetSpec | None = None
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    perturbations: list[Literal["typos", "case", "whitespace", "irrelevant", "paraphrase"]] = Field(
        default_factory=list, max_length=len(PERTURBATIONS)
    )
    adversarial: AdversarialSpec | None = None
    concurrency: int = Field(default=16, ge=1, le=MAX_CONCURRENCY)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    retries: int = Field(default=2, ge=0, le=10)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    cache: bool = True
    gate: GateSpec = Field(default_factory=GateSpec)

    def config_hash(self) -> str:
        """SHA-256 of the canonical config: what an automatic resume matches on."""
        return hashlib.sha256(
            orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()


class ConfigError(ValueError):
    """A config that cannot be read or does not validate; the message names the field."""


def load_config(path: Path) -> RunConfig:
    """Read and validate a YAML config (at most ``MAX_CONFIG_BYTES``; anchors, aliases and deep
    nesting refused, as for monitor files)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = safe_yaml(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_config(data)


def parse_config(data: Any) -> RunConfig:
    """Validate a config already parsed into Python objects."""
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"{where}: {first['msg']}") from exc
