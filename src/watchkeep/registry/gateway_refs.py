"""The gateway's ``RefResolver`` over the registry: model versions as deployments, prompts as bindings.

A model version serves through one of the gateway's backends: ``ModelVersion.backend`` is
``llama_cpp``, ``openai_compatible`` or ``mock`` and ``ModelVersion.params`` hold the
deployment fields of that backend (``model``, ``base_url``, ``api_key_env``, ``model_path``,
``n_ctx``, ``parallel``, ``threads``, ``max_connections``, ``mock``). The route keeps what is
the route's to decide (the deployment's name, weight and timeout) and the version is traced as
``NAME@N``. Anything else in the params is refused by name, so a typo is not silently dropped.
The resolved deployment is then checked by the operator's ``ApiRoutePolicy`` like any API
route (route sync does that), so registering a version cannot reach what a route may not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from watchkeep.gateway.config import DeploymentSpec
from watchkeep.gateway.refs import PromptBinding, RefError, ResolvedModel
from watchkeep.registry.prompts import (
    VARIABLES_FIELD,
    CompiledChat,
    PromptContent,
    PromptError,
    compile_prompt,
    render_messages,
    request_variables,
)
from watchkeep.registry.repository import NotRegistered, RegistryRepository
from watchkeep.registry.versions import InvalidName, parse_ref

BACKENDS = frozenset({"llama_cpp", "openai_compatible", "mock"})
# The DeploymentSpec fields a model version's params may set; the rest belong to the route.
PARAM_KEYS = frozenset(DeploymentSpec.model_fields) - {"name", "backend", "version", "weight", "timeout_s"}
# Body fields a prompt's model settings never set: they decide what and how the gateway sends.
_NOT_SETTINGS = frozenset({"model", "messages", "stream", "stream_options", VARIABLES_FIELD})


def _split(ref: str) -> tuple[str, int | str]:
    try:
        parsed = parse_ref(ref)
    except (InvalidName, ValueError) as exc:
        raise RefError(str(exc)) from None
    if parsed.version is not None:
        return parsed.name, parsed.version
    if parsed.alias is None:
        raise RefError(f"{ref!r} must name a version or an alias (NAME@N or NAME@ALIAS)")
    return parsed.name, parsed.alias


def model_deployment(
    backend: str, params: Mapping[str, Any], deployment: DeploymentSpec, version: str
) -> DeploymentSpec:
    """``deployment``'s name, weight and timeout with the version's backend and params."""
    if backend not in BACKENDS:
        raise RefError(
            f"{version}: backend {backend!r} cannot be served; use one of {', '.join(sorted(BACKENDS))}"
        )
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise RefError(
            f"{version}: params {', '.join(unknown)} are not deployment fields "
            f"(allowed: {', '.join(sorted(PARAM_KEYS))})"
        )
    try:
        return DeploymentSpec.model_validate(
            {
                **params,
                "name": deployment.name,
                "backend": backend,
                "version": version,
                "weight": deployment.weight,
                "timeout_s": deployment.timeout_s,
            }
        )
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        raise RefError(f"{version}: the params are not a valid deployment: {errors}") from None


@dataclass(frozen=True, slots=True)
class RegistryPrompt:
    """A prompt version compiled once, rendered per request."""

    name: str
    version: int
    model_settings: Mapping[str, Any]
    compiled: CompiledChat

    def render(
        self, variables: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """The prompt's messages then the request's; unknown or missing variables are errors."""
        return render_messages(self.compiled, variables, messages, allow_extra=False)

    def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body to send; ``PromptError`` (a ``ValueError``) names a bad variable."""
        variables, forwarded = request_variables(body)
        messages = forwarded.get("messages") or []
        defaults = {k: v for k, v in self.model_settings.items() if k not in _NOT_SETTINGS}
        return {**defaults, **forwarded, "messages": self.render(variables, messages)}


class RegistryRefs:
    """Resolves ``NAME@ALIAS`` / ``NAME@N`` in one project (blocking: the gateway calls it in a thread)."""

    def __init__(self, repository: RegistryRepository) -> None:
        self._repository = repository

    def model(self, project_id: int, ref: str, deployment: DeploymentSpec) -> ResolvedModel:
        """The version ``ref`` names as ``deployment``; ``RefError`` when it does not resolve."""
        name, target = _split(ref)
        try:
            version = self._repository.model(project_id, name, target)
        except (NotRegistered, InvalidName, ValueError) as exc:
            raise RefError(str(exc)) from None
        label = f"{version.name}@{version.version}"
        spec = model_deployment(version.backend, version.params, deployment, label)
        return ResolvedModel(version.name, version.version, spec)

    def prompt(self, project_id: int, ref: str) -> PromptBinding:
        """The prompt version ``ref`` names, compiled; ``RefError`` when it does not resolve."""
        name, target = _split(ref)
        try:
            version = self._repository.prompt(project_id, name, target)
        except (NotRegistered, InvalidName, ValueError) as exc:
            raise RefError(str(exc)) from None
        try:
            compiled = compile_prompt(PromptContent(version.template, version.model_settings))
        except PromptError as exc:
            raise RefError(f"{name}@{version.version}: {exc}") from None
        return RegistryPrompt(version.name, version.version, dict(version.model_settings), compiled)
