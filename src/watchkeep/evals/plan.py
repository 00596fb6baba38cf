"""Turn a run's config and a dataset version's items into the cases to call.

An item becomes messages (a string is the user's message, a list of messages is used as
is, a mapping fills the config's sandboxed Jinja2 template), then one case per repeat and
per variant (the item as written plus each perturbation of its last user message). The
expansion is a pure function of the config and the items, so every executor and every
resume sees the same cases with the same keys. An item that cannot be rendered does not
stop the run: each of its cases becomes an ``input`` error result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from watchkeep.evals.config import RunConfig
from watchkeep.evals.model import Case, DatasetItem, ItemResult, Message
from watchkeep.evals.perturb import perturb

MAX_RENDERED_CHARS = 200_000
MAX_MESSAGES = 200
ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


class InputError(ValueError):
    """An item whose input cannot become messages (bad shape, template error, too large)."""


class PlannedCases(NamedTuple):
    """The cases to call and the results already known (items whose input was unusable)."""

    cases: list[Case]
    input_errors: list[ItemResult]


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render_template(
    source: str, variables: Mapping[str, Any], env: SandboxedEnvironment | None = None
) -> str:
    """Render ``source`` in the sandbox, refusing undefined variables and output past the bound.

    The output is generated in chunks so a runaway loop stops at the bound instead of
    building the whole string first."""
    env = env or _environment()
    try:
        template = env.from_string(source)
        parts: list[str] = []
        size = 0
        for chunk in template.generate(**dict(variables)):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise InputError(f"the rendered prompt is longer than {MAX_RENDERED_CHARS} characters")
            parts.append(chunk)
    except TemplateError as exc:
        raise InputError(f"template: {exc.message or type(exc).__name__}") from exc
    return "".join(parts)


def _message_list(raw: Sequence[Any]) -> list[Message]:
    if not raw or len(raw) > MAX_MESSAGES:
        raise InputError(f"a message list needs 1 to {MAX_MESSAGES} messages")
    messages: list[Message] = []
    for i, message in enumerate(raw):
        if not isinstance(message, Mapping):
            raise InputError(f"message {i} is not a mapping with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise InputError(f"message {i} needs a role ({', '.join(sorted(ROLES))}) and a string content")
        messages.append({"role": role, "content": content})
    return messages


def item_messages(
    config: RunConfig, item: DatasetItem, env: SandboxedEnvironment | None = None
) -> list[Message]:
    """The messages an item asks, with the config's system prompt first; raises ``InputError``."""
    template = config.prompt.template
    raw = item.input
    if isinstance(raw, str):
        text = render_template(template, {"input": raw}, env) if template else raw
        messages: list[Message] = [{"role": "user", "content": text}]
    elif isinstance(raw, list):
        messages = _message_list(raw)
    elif isinstance(raw, Mapping):
        if not template:
            raise InputError("an input with variables needs prompt.template in the config")
        variables = {**raw, "metadata": item.metadata, "item_key": item.key}
        messages = [{"role": "user", "content": render_template(template, variables, env)}]
    else:
        raise InputError(f"input must be a string, a list of messages or a mapping, not {type(raw).__name__}")
    system = config.prompt.system
    if system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def perturbation_seed(run_seed: int, item_key: str, kind: str) -> int:
    """The seed of one item's perturbation: fixed per item and kind, shared by its repeats
    (so repeats of a perturbed case ask the very same text)."""
    digest = hashlib.sha256(f"{run_seed}\x1fperturb\x1f{item_key}\x1f{kind}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _perturbed(messages: Sequence[Message], kind: str, seed: int) -> tuple[Message, ...]:
    out = [dict(m) for m in messages]
    for message in reversed(out):
        if message["role"] == "user":
            message["content"] = perturb(message["content"], kind, seed)
            break
    return tuple(out)


def _variants(
    config: RunConfig, item: DatasetItem, messages: list[Message]
) -> list[tuple[str, tuple[Message, ...]]]:
    variants: list[tuple[str, tuple[Message, ...]]] = [("", tuple(messages))]
    for kind in config.perturbations:
        seed = perturbation_seed(config.seed, item.key, kind)
        variants.append((kind, _perturbed(messages, kind, seed)))
    return variants


def _input_errors(config: RunConfig, item: DatasetItem, error: str) -> list[ItemResult]:
    variants = ["", *config.perturbations]
    return [
        ItemResult(
            item_key=item.key,
            repeat=repeat,
            variant=variant,
            family=variant or None,
            messages=None,
            output=None,
            error=error,
            error_kind="input",
        )
        for repeat in range(config.repeats)
        for variant in variants
    ]


def build_cases(config: RunConfig, items: Sequence[DatasetItem]) -> PlannedCases:
    """Every case of the run, in a stable order, and an ``input`` error per case of a bad item."""
    env = _environment()
    cases: list[Case] = []
    errors: list[ItemResult] = []
    seen: set[str] = set()
    for item in items:
        if item.key in seen:  # a result's key must be unique; versions already refuse duplicates
            continue
        seen.add(item.key)
        try:
            messages = item_messages(config, item, env)
        except InputError as exc:
            errors.extend(_input_errors(config, item, str(exc)))
            continue
        metadata = dict(item.metadata)
        if item.trace_id:
            metadata.setdefault("source_trace_id", item.trace_id)
        for variant, variant_messages in _variants(config, item, messages):
            for repeat in range(config.repeats):
                cases.append(
                    Case(
                        item_key=item.key,
                        messages=variant_messages,
                        expected=item.expected,
                        metadata=metadata,
                        repeat=repeat,
                        variant=variant,
                        family=variant or None,
                    )
                )
    if config.adversarial is not None:
        from watchkeep.evals.adversarial.suite import suite_cases  # loads every probe: only when asked

        cases.extend(suite_cases(config.adversarial, config.seed))
    return PlannedCases(cases, errors)
