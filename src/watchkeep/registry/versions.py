"""Model and prompt versions as immutable values, their content digests, names and references.

Contract (a later session stores these in tables; nothing here touches a database):

- ``ModelVersion`` and ``PromptVersion`` are frozen; their mappings are copied into read-only
  views on construction and must be JSON (checked then, so a bad value fails at registration,
  not when it is hashed or stored). Versions are numbered per name from 1 (``next_version``);
  ``parent`` must be an earlier version of the same name.
- ``content_digest(v)`` is the SHA-256 of the canonical JSON (``evals.datasets.canonical_json``)
  of what *defines* the version, never who registered it, when, or what was said about it:
  a model is its backend, params, artifact URI and digest and training dataset (metadata,
  parent, evaluation runs, author and time are excluded); a prompt is its template, variables
  (as a set) and model settings (message, parent, author and time excluded). The name is not
  hashed: compare digests within one name (``find_identical``) to refuse or reuse a
  content-identical registration.
- A prompt's ``template`` is text or chat messages: ``{role, content}`` mappings (or pairs)
  are kept as a tuple of ``(role, content)`` pairs (``prompts.PromptContent``'s form);
  ``template_json`` gives the stored/wire form (text, or ``[{"role", "content"}]``).
- Names: ``validate_name`` (models, prompts, datasets) and ``validate_alias`` raise
  ``InvalidName`` (a ``ValueError``) that says what is allowed. An alias starts with a letter,
  so ``name@3`` is always a version and ``name@production`` always an alias.
- ``parse_ref("name@alias" | "name@3" | "name")`` gives a ``Ref``; a bare name means the
  latest version. ``str(ref)`` writes it back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from watchkeep.evals.datasets import canonical_json

MAX_NAME_CHARS = 128
MAX_ALIAS_CHARS = 64
MAX_VERSION = 2**31 - 1  # an INTEGER column
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_ALIAS = re.compile(r"[a-z][a-z0-9_\-]*")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_DIGEST = re.compile(r"(sha256:)?[0-9a-f]{64}")


class InvalidName(ValueError):
    """A name, alias or reference that breaks the naming rules (the message says which)."""


def validate_name(name: str, what: str = "name") -> str:
    """``name`` when it is 1-128 of letters, digits, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{what} must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(f"{what} {name[:40]!r}... is longer than {MAX_NAME_CHARS} characters")
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"{what} {name!r} may hold only letters, digits, '_', '.' and '-', must start with "
            "a letter or digit and may not contain '..'"
        )
    return name


def validate_alias(alias: str) -> str:
    """``alias`` when it is 1-64 of lower-case letters, digits, ``_ -``, starting with a letter."""
    if not isinstance(alias, str) or not alias:
        raise InvalidName("alias must be a non-empty string")
    if len(alias) > MAX_ALIAS_CHARS or not _ALIAS.fullmatch(alias):
        raise InvalidName(
            f"alias {alias[:80]!r} must be 1 to {MAX_ALIAS_CHARS} lower-case letters, digits, '_' "
            "or '-', starting with a letter (so it never reads as a version number)"
        )
    return alias


def _check_version(version: int, what: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ValueError(f"{what} must be an integer from 1 to {MAX_VERSION}, not {version!r}")
    return version


def _frozen_json(value: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """A read-only copy of ``value`` after checking it is JSON with text keys."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping, not {type(value).__name__}")
    copy = dict(value)
    try:
        canonical_json(copy)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON (no NaN, infinity or objects): {exc}") from None
    return MappingProxyType(copy)


def _check_lineage(version: int, parent: int | None) -> None:
    _check_version(version)
    if parent is not None and _check_version(parent, "parent") >= version:
        raise ValueError(f"parent {parent} must be an earlier version than {version}")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered model version: what to serve, from where, and where it came from."""

    name: str
    version: int
    backend: str  # a gateway provider kind, e.g. "openai", "embedded"
    params: Mapping[str, Any] = field(default_factory=dict)
    artifact_uri: str | None = None
    artifact_digest: str | None = None  # "sha256:<hex>" or bare hex
    metadata: Mapping[str, Any] = field(default_factory=dict)
    parent: int | None = None
    training_dataset: str | None = None  # a dataset reference, e.g. "qa@3"
    eval_runs: tuple[int, ...] = ()
    created_by: str = ""
    created_at_ns: int = 0

    def __post_init__(self) -> None:
        validate_name(self.name, "model name")
        _check_lineage(self.version, self.parent)
        if not isinstance(self.backend, str) or not self.backend.strip():
            raise ValueError("backend must be a non-empty string")
        if self.artifact_digest is not None and not _DIGEST.fullmatch(self.artifact_digest):
            raise ValueError("artifact_digest must be a SHA-256 hex digest, optionally 'sha256:'-prefixed")
        if self.training_dataset is not None:
            parse_ref(self.training_dataset)
        object.__setattr__(self, "params", _frozen_json(self.params, "params"))
        object.__setattr__(self, "metadata", _frozen_json(self.metadata, "metadata"))
        object.__setattr__(self, "eval_runs", tuple(self.eval_runs))


@dataclass(frozen=True, slots=True)
class PromptVersion:
    """One registered prompt version: a template, the variables it takes, and model settings."""

    name: str
    version: int
    template: str | tuple[tuple[str, str], ...]  # text, or chat messages as (role, content)
    variables: tuple[str, ...] = ()
    model_settings: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""  # the commit message
    parent: int | None = None
    created_by: str = ""
    created_at_ns: int = 0

    def __post_init__(self) -> None:
        validate_name(self.name, "prompt name")
        _check_lineage(self.version, self.parent)
        object.__setattr__(self, "template", _template(self.template))
        variables = tuple(self.variables)
        if len(set(variables)) != len(variables):
            raise ValueError(f"variables repeat a name: {variables}")
        for var in variables:
            if not isinstance(var, str) or not var.isidentifier():
                raise ValueError(f"variable {var!r} is not an identifier")
        object.__setattr__(self, "variables", variables)
        object.__setattr__(self, "model_settings", _frozen_json(self.model_settings, "model_settings"))


def _template(template: Any) -> str | tuple[tuple[str, str], ...]:
    """A text template as is; chat messages (``{role, content}`` mappings or pairs) as pairs."""
    if isinstance(template, str):
        return template
    if isinstance(template, (list, tuple)) and template:
        pairs = [(m.get("role"), m.get("content")) if isinstance(m, Mapping) else m for m in template]
        if all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
        ):
            return tuple((str(role), str(content)) for role, content in pairs)
    raise ValueError("template must be a string or a non-empty list of {role, content} string messages")


def template_json(template: str | tuple[tuple[str, str], ...]) -> str | list[dict[str, str]]:
    """A ``PromptVersion.template`` as JSON data: the text, or ``[{"role", "content"}]``."""
    if isinstance(template, str):
        return template
    return [{"role": role, "content": content} for role, content in template]


def _content(version: ModelVersion | PromptVersion) -> dict[str, Any]:
    if isinstance(version, ModelVersion):
        digest = version.artifact_digest
        return {
            "kind": "model",
            "backend": version.backend,
            "params": dict(version.params),
            "artifact_uri": version.artifact_uri,
            "artifact_digest": digest.removeprefix("sha256:") if digest else None,
            "training_dataset": version.training_dataset,
        }
    return {
        "kind": "prompt",
        "template": version.template,
        "variables": sorted(version.variables),
        "model_settings": dict(version.model_settings),
    }


def content_digest(version: ModelVersion | PromptVersion) -> str:
    """SHA-256 (hex) of what defines ``version`` (module docstring); equal content, equal digest."""
    return hashlib.sha256(canonical_json(_content(version)).encode("utf-8")).hexdigest()


V = TypeVar("V", ModelVersion, PromptVersion)


def find_identical(existing: Iterable[V], candidate: V) -> V | None:
    """The earliest version of ``candidate``'s name whose content equals it, if any."""
    digest = content_digest(candidate)
    same = [v for v in existing if v.name == candidate.name and content_digest(v) == digest]
    return min(same, key=lambda v: v.version, default=None)


def next_version(existing: Iterable[int]) -> int:
    """The number the next registration of a name gets: one past the highest, 1 for the first."""
    highest = max((_check_version(v) for v in existing), default=0)
    if highest >= MAX_VERSION:
        raise ValueError(f"no version number is left after {highest}")
    return highest + 1


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a version: by number, by alias, or (neither) the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.version is not None and self.alias is not None:
            raise ValueError("a reference names a version or an alias, not both")
        if self.version is not None:
            _check_version(self.version)
        if self.alias is not None:
            validate_alias(self.alias)

    @property
    def is_latest(self) -> bool:
        """True for a bare name (the highest version)."""
        return self.version is None and self.alias is None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias}" if self.alias is not None else self.name


def parse_ref(text: str) -> Ref:
    """``"name@production"`` (alias), ``"name@3"`` (version) or ``"name"`` (latest)."""
    if not isinstance(text, str):
        raise InvalidName(f"a reference must be a string, not {type(text).__name__}")
    name, sep, target = text.strip().partition("@")
    validate_name(name)
    if not sep:
        return Ref(name)
    if _VERSION.fullmatch(target) and int(target) <= MAX_VERSION:
        return Ref(name, version=int(target))
    if target[:1].isdigit():
        raise InvalidName(f"{text!r}: a version is a whole number from 1 to {MAX_VERSION}")
    return Ref(name, alias=validate_alias(target))
