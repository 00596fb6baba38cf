"""Reversible method patching shared by the instrumentations.

A patched method keeps its original on the wrapper so ``uninstrument`` can restore
it and a second ``instrument`` is a no-op. An object patched on its own (one client)
is marked, and the class-level wrapper steps aside for it, so a call is never traced
twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ORIGINAL = "__watchkeep_original__"
INSTANCE_MARK = "_watchkeep_instrumented"


def is_patched(owner: Any, name: str) -> bool:
    return hasattr(owner.__dict__.get(name), ORIGINAL)


def patch(owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Replace ``owner.name`` by ``make(original)``; False if already patched."""
    if is_patched(owner, name):
        return False
    original = getattr(owner, name)
    wrapper = make(original)
    setattr(wrapper, ORIGINAL, original)
    setattr(owner, name, wrapper)
    return True


def unpatch(owner: Any, name: str) -> bool:
    current = owner.__dict__.get(name)
    original = getattr(current, ORIGINAL, None)
    if original is None:
        return False
    if isinstance(owner, type):
        setattr(owner, name, original)
    else:
        delattr(owner, name)
    return True


def instance_marked(obj: Any) -> bool:
    """True when ``obj`` was instrumented by itself (the class wrapper must step aside)."""
    return bool(getattr(obj, "__dict__", {}).get(INSTANCE_MARK))
