"""Instrumentation of ``llama_cpp.Llama.create_chat_completion`` (plain and streamed)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from watchkeep.sdk.instrument._chat import traced_call
from watchkeep.sdk.instrument.patching import INSTANCE_MARK, instance_marked, patch, unpatch

PROVIDER = "llama_cpp"
METHOD = "create_chat_completion"


def _model_name(llama: Any, kwargs: dict[str, Any]) -> str | None:
    model = kwargs.get("model")
    if model:
        return str(model)
    path = getattr(llama, "model_path", None)
    return os.path.basename(str(path)) if path else None


def _wrapper(original: Callable[..., Any], bound: Any) -> Callable[..., Any]:
    def create_chat_completion(*args: Any, **kwargs: Any) -> Any:
        llama = bound if bound is not None else (args[0] if args else None)
        if bound is None and instance_marked(llama):
            return original(*args, **kwargs)
        positional = args if bound is not None else args[1:]
        messages = kwargs.get("messages", positional[0] if positional else None)
        return traced_call(
            PROVIDER,
            _model_name(llama, kwargs),
            messages,
            lambda: original(*args, **kwargs),
            kwargs,
        )

    return create_chat_completion


def _llama_class() -> type[Any]:
    from llama_cpp import Llama  # type: ignore[import-not-found,unused-ignore]

    return Llama  # type: ignore[no-any-return]


def instrument_module() -> bool:
    return patch(_llama_class(), METHOD, lambda original: _wrapper(original, None))


def uninstrument_module() -> bool:
    return unpatch(_llama_class(), METHOD)


def is_client(obj: object) -> bool:
    return type(obj).__module__.startswith("llama_cpp") and hasattr(obj, METHOD)


def instrument_client(llama: Any) -> bool:
    patched = patch(llama, METHOD, lambda original: _wrapper(original, llama))
    if patched:
        llama.__dict__[INSTANCE_MARK] = True
    return patched


def uninstrument_client(llama: Any) -> bool:
    llama.__dict__.pop(INSTANCE_MARK, None)
    return unpatch(llama, METHOD)
