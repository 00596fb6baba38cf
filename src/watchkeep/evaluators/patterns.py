"""Regular expressions a tenant supplies, run with RE2 so matching is linear in the text.

Python's ``re`` backtracks: ``(a+)+$`` on forty ``a`` and a ``!`` takes 2^40 steps and
would stall the worker that evaluates it. RE2 has no backtracking; what it cannot run in
linear time (backreferences, lookaround) it refuses, and so do we, with a clear message.
JSON-schema validation goes through the same engine: ``pattern``, ``patternProperties``
and ``additionalProperties`` (which consults ``patternProperties``) are replaced by RE2
versions, and the one keyword that would still reach Python's ``re`` is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema
import re2
from jsonschema.exceptions import ValidationError

MAX_SCHEMA_NODES = 10_000


class UnsafePattern(ValueError):
    """A pattern RE2 cannot compile (so it could not run in linear time)."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, ignore_case: bool = False) -> Any:
    """``pattern`` compiled by RE2 (cached); ``UnsafePattern`` when RE2 refuses it."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = (
            exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        )
        raise UnsafePattern(
            f"pattern {pattern[:100]!r} is not supported: {reason}; patterns run on RE2 (linear time), "
            "which has no backreferences or lookaround"
        ) from None


def _walk(schema: Any) -> tuple[list[str], set[str]]:
    """Every pattern in a schema and the pattern-related keywords it uses (no recursion)."""
    patterns: list[str] = []
    used: set[str] = set()
    stack, seen = [schema], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_SCHEMA_NODES:
            raise ValueError(f"the schema has more than {MAX_SCHEMA_NODES} nodes")
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                patterns.extend(node["patternProperties"])
            used.update(k for k in ("patternProperties", "unevaluatedProperties") if k in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return patterns, used


def check_schema_patterns(schema: dict[str, Any]) -> None:
    """Refuse a schema with a pattern RE2 cannot run, or one Python's ``re`` would match.

    ``unevaluatedProperties`` consults ``patternProperties`` through jsonschema's own
    helper (Python's ``re``), so the two are not accepted together.
    """
    patterns, used = _walk(schema)
    for pattern in patterns:
        compile_pattern(pattern)
    if used == {"patternProperties", "unevaluatedProperties"}:
        raise UnsafePattern("unevaluatedProperties with patternProperties is not supported (RE2 only)")


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and compile_pattern(pattern).search(instance) is None:
        yield ValidationError(f"the string does not match {pattern[:100]!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = compile_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in properties and not any(p.search(k) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(e[:50]) for e in sorted(extras)[:5])
        yield ValidationError(f"additional properties are not allowed ({names})")


_RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


def re2_validator(schema: dict[str, Any]) -> Any:
    """A jsonschema validator for ``schema`` whose pattern keywords run on RE2.

    Raises ``UnsafePattern`` for patterns RE2 refuses and ``ValueError`` for an invalid schema.
    """
    check_schema_patterns(schema)
    base = jsonschema.validators.validator_for(schema)
    try:
        base.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}"[:500]) from exc
    return _on_re2(base)(schema)


@lru_cache(maxsize=16)
def _on_re2(base: Any) -> Any:
    """``base`` (a draft's validator class) with its pattern keywords on RE2."""
    return jsonschema.validators.extend(base, _RE2_KEYWORDS)  # type: ignore[no-untyped-call]
