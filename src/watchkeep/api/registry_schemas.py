"""Request and response bodies of the release registry's REST API (``api/routes/registry.py``).

Inputs are bounded here, so an oversized or malformed registration is a clear 422 before
anything reaches the store: a template is at most ``MAX_TEMPLATE_CHARS`` characters in all,
each JSON object (params, metadata, model settings) at most ``MAX_JSON_BYTES`` encoded.
``SdkPromptOut`` is exactly the contract ``sdk/prompts.py`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeep.api.schemas import check_storable_json, ns_to_datetime
from watchkeep.registry.aliases import AliasEvent
from watchkeep.registry.prompts import MAX_MESSAGES, MAX_TEMPLATE_CHARS
from watchkeep.registry.repository import NameSummary
from watchkeep.registry.versions import (
    MAX_ALIAS_CHARS,
    MAX_NAME_CHARS,
    ModelVersion,
    PromptVersion,
    template_json,
)

NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{MAX_NAME_CHARS - 1}}}$"
ALIAS_PATTERN = rf"^[a-z][a-z0-9_\-]{{0,{MAX_ALIAS_CHARS - 1}}}$"
MAX_JSON_BYTES = 64 * 1024
MAX_REASON_CHARS = 2000
MAX_EVAL_RUNS = 100
Template = str | list[dict[str, Any]]


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(value)
    except TypeError as exc:  # e.g. an integer past 64 bits: no store column or client could carry it
        raise ValueError(f"holds a value JSON cannot carry: {exc}") from exc
    if len(encoded) > MAX_JSON_BYTES:
        raise ValueError(f"is larger than {MAX_JSON_BYTES} bytes as JSON")
    return value


class StorableIn(BaseModel):
    """A request body every string of which a database can store."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> StorableIn:
        """No NUL characters, NaN or infinities anywhere: PostgreSQL cannot store them."""
        check_storable_json(self.model_dump(), "body")
        return self


class MessageIn(StorableIn):
    """One chat message of a template."""

    role: str = Field(min_length=1, max_length=32, description="One of the roles the sandbox accepts.")
    content: str = Field(max_length=MAX_TEMPLATE_CHARS)


class ModelVersionIn(StorableIn):
    """A model version: its backend and parameters, artifact, metadata and lineage."""

    backend: str = Field(min_length=1, max_length=100, description="A gateway provider kind, e.g. `openai`.")
    params: dict[str, Any] = Field(default_factory=dict)
    artifact_uri: str | None = Field(default=None, max_length=2000)
    artifact_digest: str | None = Field(default=None, pattern=r"^(sha256:)?[0-9a-f]{64}$")
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent: int | None = Field(default=None, ge=1, le=2**31 - 1)
    training_dataset: str | None = Field(default=None, max_length=300, description="e.g. `qa@3`")
    eval_runs: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=MAX_EVAL_RUNS, description="Ids of evaluation runs of this version."
    )

    _check_json = field_validator("params", "metadata")(_bounded_json)


class PromptVersionIn(StorableIn):
    """A prompt version: a Jinja2 template (text or chat messages), model settings, a commit message."""

    template: str | list[MessageIn] = Field(description="Text, or a list of `{role, content}` messages.")
    model_settings: dict[str, Any] = Field(default_factory=dict)
    message: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    parent: int | None = Field(default=None, ge=1, le=2**31 - 1)

    _check_json = field_validator("model_settings")(_bounded_json)

    @field_validator("template")
    @classmethod
    def _template_size(cls, value: str | list[MessageIn]) -> str | list[MessageIn]:
        if isinstance(value, list) and not 1 <= len(value) <= MAX_MESSAGES:
            raise ValueError(f"a chat template has 1 to {MAX_MESSAGES} messages")
        chars = len(value) if isinstance(value, str) else sum(len(m.content) for m in value)
        if chars > MAX_TEMPLATE_CHARS:
            raise ValueError(f"is longer than {MAX_TEMPLATE_CHARS} characters")
        return value

    def template_value(self) -> Template:
        """The template as the repository takes it."""
        if isinstance(self.template, str):
            return self.template
        return [m.model_dump() for m in self.template]


class AliasMoveIn(StorableIn):
    """Point an alias at a version, or remove it (`version` null)."""

    version: int | None = Field(ge=1, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    force: bool = Field(default=False, description="Past the promotion policy (registry:admin, a reason).")


class RollbackIn(StorableIn):
    """Move an alias back to its previous version."""

    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class ModelVersionOut(BaseModel):
    name: str
    version: int
    backend: str
    params: dict[str, Any]
    artifact_uri: str | None
    artifact_digest: str | None
    metadata: dict[str, Any]
    parent: int | None
    training_dataset: str | None
    eval_runs: list[int]
    created_by: str
    created_at: datetime


class CreatedModelVersionOut(ModelVersionOut):
    """A registration's answer: ``created`` is false when an identical version already existed."""

    created: bool


class PromptVersionOut(BaseModel):
    name: str
    version: int
    template: Template
    variables: list[str]
    model_settings: dict[str, Any]
    message: str
    parent: int | None
    created_by: str
    created_at: datetime


class CreatedPromptVersionOut(PromptVersionOut):
    """A registration's answer: ``created`` is false when an identical version already existed."""

    created: bool


class SdkPromptOut(BaseModel):
    """What ``wk.get_prompt`` reads (``sdk/prompts.py``): one version, resolved by label or number."""

    name: str
    version: int
    label: str | None
    template: Template
    variables: list[str]
    model_settings: dict[str, Any]


class NameOut(BaseModel):
    """A registered name: its version count, the latest, and where its aliases point."""

    name: str
    versions: int
    latest: int
    aliases: dict[str, int]
    updated_at: datetime


class NameList(BaseModel):
    items: list[NameOut]


class ModelDetail(BaseModel):
    name: str
    aliases: dict[str, int]
    versions: list[ModelVersionOut]


class PromptDetail(BaseModel):
    name: str
    aliases: dict[str, int]
    versions: list[PromptVersionOut]


class AliasesOut(BaseModel):
    name: str
    aliases: dict[str, int]


class AliasEventOut(BaseModel):
    """One append-only alias event: who moved it from where to where, why, and when."""

    alias: str
    seq: int
    kind: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    at: datetime


class AliasHistory(BaseModel):
    name: str
    alias: str
    items: list[AliasEventOut]


class SettingChangeOut(BaseModel):
    key: str
    change: str
    old: Any = None
    new: Any = None


class PromptDiffOut(BaseModel):
    """Unified diff of two prompt versions' templates, their variables and model settings."""

    name: str
    from_version: int
    to_version: int
    changed: bool
    text: str
    variables_added: list[str]
    variables_removed: list[str]
    settings: list[SettingChangeOut]


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(dict(value), default=dict))  # type: ignore[no-any-return]


def model_out(v: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut(
        name=v.name,
        version=v.version,
        backend=v.backend,
        params=_plain(v.params),
        artifact_uri=v.artifact_uri,
        artifact_digest=v.artifact_digest,
        metadata=_plain(v.metadata),
        parent=v.parent,
        training_dataset=v.training_dataset,
        eval_runs=list(v.eval_runs),
        created_by=v.created_by,
        created_at=ns_to_datetime(v.created_at_ns),
    )


def prompt_out(v: PromptVersion) -> PromptVersionOut:
    return PromptVersionOut(
        name=v.name,
        version=v.version,
        template=template_json(v.template),
        variables=list(v.variables),
        model_settings=_plain(v.model_settings),
        message=v.message,
        parent=v.parent,
        created_by=v.created_by,
        created_at=ns_to_datetime(v.created_at_ns),
    )


def sdk_prompt_out(v: PromptVersion, label: str | None) -> SdkPromptOut:
    return SdkPromptOut(
        name=v.name,
        version=v.version,
        label=label,
        template=template_json(v.template),
        variables=list(v.variables),
        model_settings=_plain(v.model_settings),
    )


def name_out(s: NameSummary) -> NameOut:
    return NameOut(
        name=s.name,
        versions=s.versions,
        latest=s.latest,
        aliases=dict(s.aliases),
        updated_at=ns_to_datetime(s.updated_at_ns),
    )


def event_out(e: AliasEvent) -> AliasEventOut:
    return AliasEventOut(
        alias=e.alias,
        seq=e.seq,
        kind=e.kind,
        from_version=e.from_version,
        to_version=e.to_version,
        actor=e.actor,
        reason=e.reason,
        at=ns_to_datetime(e.at_ns),
    )
