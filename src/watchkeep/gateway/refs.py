"""What the gateway needs from the release registry, as protocols it owns.

The registry sits above the gateway (it runs evaluations through it), so the gateway
cannot import it; the app wires an implementation in (``registry.gateway_refs``). A route
names a registered model as a deployment ``{backend: registry, model: NAME@ALIAS}`` and a
registered prompt as ``prompt: NAME@LABEL``; route sync resolves both whenever it loads
the stored routes, so an alias move is served by the next reload (alias moves bump the
routes' revision) and the table is swapped whole, never half-updated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from watchkeep.gateway.config import DeploymentSpec

# The chat body field holding a prompt's variables (``registry.prompts.VARIABLES_FIELD``).
PROMPT_VARIABLES = "prompt_variables"


class RefError(LookupError):
    """A reference that does not resolve: an unknown name, alias or version."""


class PromptBinding(Protocol):
    """A resolved prompt version, ready to render into a chat request."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def model_settings(self) -> Mapping[str, Any]:
        """Request defaults (temperature, max_tokens...) the request's own values override."""
        ...

    def render(
        self, variables: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """The prompt's messages then the request's; ``ValueError`` on bad variables (a 400)."""
        ...

    def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The chat body to send: ``prompt_variables`` taken out, the prompt rendered before the
        request's messages, the model settings as defaults; ``ValueError`` names what is wrong."""
        ...


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A registered model version as a deployment: ``spec`` has a real backend and
    ``version`` ``NAME@N`` (what spans carry as ``watchkeep.model.version``)."""

    name: str
    version: int
    spec: DeploymentSpec


class RefResolver(Protocol):
    """Resolves registry references for one project (blocking: called in a thread)."""

    def model(self, project_id: int, ref: str, deployment: DeploymentSpec) -> ResolvedModel:
        """``deployment`` (backend ``registry``, model ``ref``) with the version's backend and
        parameters; its name, weight and timeout are kept. ``RefError`` when it does not resolve."""
        ...

    def prompt(self, project_id: int, ref: str) -> PromptBinding:
        """The prompt version ``ref`` names; ``RefError`` when it does not resolve."""
        ...
