"""``instrument("openai")``, ``instrument("llama_cpp")``, ``instrument("xllamacpp")`` or
``instrument(client_object)``.

Instrumentations are loaded only when asked for, so importing the SDK never imports
openai or llama.cpp. Failures (library absent, unexpected version) are warnings.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from watchkeep.sdk.config import logger

INSTRUMENTATIONS = {
    "openai": "watchkeep.sdk.instrument.openai",
    "llama_cpp": "watchkeep.sdk.instrument.llama_cpp",
    "xllamacpp": "watchkeep.sdk.instrument.xllamacpp",
}
_ALIASES = {"llama-cpp": "llama_cpp", "llama.cpp": "llama_cpp", "llama_cpp_python": "llama_cpp"}


def _module(target: str) -> ModuleType:
    name = _ALIASES.get(target, target)
    if name not in INSTRUMENTATIONS:
        raise ValueError(f"unknown instrumentation {target!r}; known: {sorted(INSTRUMENTATIONS)}")
    return importlib.import_module(INSTRUMENTATIONS[name])


def _for_object(obj: object) -> ModuleType | None:
    for path in INSTRUMENTATIONS.values():
        module = importlib.import_module(path)
        if module.is_client(obj):
            return module
    return None


def instrument(target: str | object = "openai") -> bool:
    """Trace a library (by name) or one client object; True if something was patched."""
    try:
        if isinstance(target, str):
            return bool(_module(target).instrument_module())
        module = _for_object(target)
        if module is None:
            logger.warning("watchkeep: don't know how to instrument %r", type(target))
            return False
        return bool(module.instrument_client(target))
    except Exception as exc:
        logger.warning("watchkeep: could not instrument %r: %r", target, exc)
        return False


def uninstrument(target: str | object = "openai") -> bool:
    """Undo ``instrument`` for the same target."""
    try:
        if isinstance(target, str):
            return bool(_module(target).uninstrument_module())
        module = _for_object(target)
        return bool(module is not None and module.uninstrument_client(target))
    except Exception as exc:
        logger.warning("watchkeep: could not uninstrument %r: %r", target, exc)
        return False
