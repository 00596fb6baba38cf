"""watchkeep: keep watch over large language models in production.

``import watchkeep`` stays cheap: the tracing SDK (and OpenTelemetry with it) is loaded
on first access to one of its names, and the server is never imported from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SDK = "watchkeep.sdk"
_INSTRUMENT = "watchkeep.sdk.instrument"
_LAZY: dict[str, str] = {
    "Client": _SDK,
    "Config": _SDK,
    "Prompt": _SDK,
    "PromptUnavailable": _SDK,
    "Stats": _SDK,
    "context": _SDK,
    "current_span_id": _SDK,
    "current_trace_attributes": _SDK,
    "current_trace_id": _SDK,
    "feedback": _SDK,
    "flush": _SDK,
    "get_client": _SDK,
    "get_prompt": _SDK,
    "get_tracer": _SDK,
    "init": _SDK,
    "instrument": _INSTRUMENT,
    "observe": _SDK,
    "score": _SDK,
    "shutdown": _SDK,
    "span": _SDK,
    "stats": _SDK,
    "uninstrument": _INSTRUMENT,
    "update_current": _SDK,
}

if TYPE_CHECKING:
    from watchkeep.sdk import (
        Client as Client,
    )
    from watchkeep.sdk import (
        Config as Config,
    )
    from watchkeep.sdk import (
        Prompt as Prompt,
    )
    from watchkeep.sdk import (
        PromptUnavailable as PromptUnavailable,
    )
    from watchkeep.sdk import (
        Stats as Stats,
    )
    from watchkeep.sdk import (
        context as context,
    )
    from watchkeep.sdk import (
        current_span_id as current_span_id,
    )
    from watchkeep.sdk import (
        current_trace_attributes as current_trace_attributes,
    )
    from watchkeep.sdk import (
        current_trace_id as current_trace_id,
    )
    from watchkeep.sdk import (
        feedback as feedback,
    )
    from watchkeep.sdk import (
        flush as flush,
    )
    from watchkeep.sdk import (
        get_client as get_client,
    )
    from watchkeep.sdk import (
        get_prompt as get_prompt,
    )
    from watchkeep.sdk import (
        get_tracer as get_tracer,
    )
    from watchkeep.sdk import (
        init as init,
    )
    from watchkeep.sdk import (
        observe as observe,
    )
    from watchkeep.sdk import (
        score as score,
    )
    from watchkeep.sdk import (
        shutdown as shutdown,
    )
    from watchkeep.sdk import (
        span as span,
    )
    from watchkeep.sdk import (
        stats as stats,
    )
    from watchkeep.sdk import (
        update_current as update_current,
    )
    from watchkeep.sdk.instrument import instrument as instrument
    from watchkeep.sdk.instrument import uninstrument as uninstrument


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'watchkeep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = sorted(_LAZY)
