"""Where requests go: an in-process llama.cpp model, any OpenAI-compatible upstream, or a mock.

Every backend speaks OpenAI's JSON shapes (dicts in, dicts out) and reports failures
as ``UpstreamError`` so routing, retries and breakers treat them all alike.
"""

from __future__ import annotations

import os

from watchkeep.gateway.backends.base import Backend
from watchkeep.gateway.backends.mock import MockBackend
from watchkeep.gateway.backends.openai_compatible import OpenAICompatibleBackend
from watchkeep.gateway.config import DeploymentSpec
from watchkeep.security.egress import AddressPolicy

__all__ = ["Backend", "build_backend"]


def build_backend(spec: DeploymentSpec, egress: AddressPolicy | None = None) -> Backend:
    """A backend for ``spec``; secrets are read from the environment here, and only here.

    ``egress``: check every address an upstream connection resolves to (routes from the
    API; the operator's file is trusted)."""
    if spec.backend == "mock":
        return MockBackend(spec)
    if spec.backend == "openai_compatible":
        secret = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        return OpenAICompatibleBackend(spec, secret, egress)
    from watchkeep.gateway.backends.llama_cpp import LlamaCppBackend  # optional dependency

    return LlamaCppBackend(spec)
