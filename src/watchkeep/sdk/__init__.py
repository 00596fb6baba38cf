"""watchkeep's tracing SDK: OpenTelemetry-native, fail-open, no loss when the server is away.

See docs/sdk.md. Import what you need from ``watchkeep`` directly (``import watchkeep as
wk; wk.init(...)``); this package is loaded on first use. ``instrument`` lives in
``watchkeep.sdk.instrument`` (a package, so it is not re-exported here under its name).
"""

from __future__ import annotations

from watchkeep.sdk.api import (
    current_span_id,
    current_trace_id,
    feedback,
    flush,
    get_client,
    get_tracer,
    init,
    score,
    shutdown,
    span,
    stats,
    update_current,
)
from watchkeep.sdk.client import Client
from watchkeep.sdk.config import Config
from watchkeep.sdk.decorators import observe
from watchkeep.sdk.pipeline import Stats
from watchkeep.sdk.prompts import Prompt, PromptUnavailable, get_prompt
from watchkeep.sdk.trace_context import context, current_trace_attributes

__all__ = [
    "Client",
    "Config",
    "Prompt",
    "PromptUnavailable",
    "Stats",
    "context",
    "current_span_id",
    "current_trace_attributes",
    "current_trace_id",
    "feedback",
    "flush",
    "get_client",
    "get_prompt",
    "get_tracer",
    "init",
    "observe",
    "score",
    "shutdown",
    "span",
    "stats",
    "update_current",
]
