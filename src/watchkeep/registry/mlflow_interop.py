"""Import registered models from an MLflow Model Registry, and export ours to one.

Contract (``watchkeep registry mlflow import|export`` call these; both are idempotent):

- ``import_from_mlflow`` registers every MLflow version (oldest first) through
  ``RegistryRepository.register_model``: ``source`` is the artifact URI (a ``watchkeep://``
  source, which ``export`` writes for a version without one, means none), and what MLflow
  knows that is not ours to define goes to metadata: ``mlflow_version``, ``mlflow_run_id``,
  ``mlflow_description``, ``mlflow_tags``. The backend is the tag ``watchkeep.backend``, else
  ``"mlflow"`` (``DEFAULT_BACKEND``): such a version is a record, not something the gateway
  can serve until it is registered again with a real backend. Tags written by ``export``
  (``watchkeep.params``, ``watchkeep.artifact_digest``, ``watchkeep.training_dataset``,
  ``watchkeep.metadata``) restore the exact content, so a round trip keeps content digests.
  A content-identical version already there is reused (created False). Aliases become alias
  events (actor ``mlflow-import``, reason ``imported from MLflow <uri>``) in version order; an
  alias already at its target is left alone, and one ours has that MLflow lacks is kept.
- ``export_to_mlflow`` creates missing registered models and versions (``source`` is the
  artifact URI or ``watchkeep://NAME/N``; tags: backend, params, digests, metadata, our
  version), keyed by the tag ``watchkeep.content_digest`` (or, for a version imported from
  the same server, its ``mlflow_version``) so a re-export creates nothing, then
  sets MLflow's aliases to our current projection. MLflow keeps no alias history, so ours is
  written to the registered model's tag ``watchkeep.alias_history`` (the newest events that
  fit). An alias our history has removed is deleted there; others MLflow has are left alone.
- Names or aliases MLflow allows and we do not (spaces, capitals) are skipped and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from watchkeep.evals.datasets import canonical_json
from watchkeep.registry import aliases as alias_log
from watchkeep.registry.mlflow_client import MlflowRegistry, tag_dict
from watchkeep.registry.repository import RegistryRepository
from watchkeep.registry.versions import ModelVersion, content_digest, validate_alias, validate_name

DEFAULT_BACKEND = "mlflow"
IMPORT_ACTOR = "mlflow-import"
SOURCE_SCHEME = "watchkeep://"
TAG = "watchkeep."
MAX_TAG_CHARS = 5000  # MLflow's limit on a tag value (older servers)


@dataclass
class MlflowReport:
    """What an import or export did."""

    versions_created: int = 0
    versions_reused: int = 0
    aliases_moved: int = 0
    aliases_unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # "name[@alias]: why"


def _json_tag(tags: dict[str, str], key: str) -> Any:
    raw = tags.get(TAG + key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError(f"tag {TAG}{key} is not JSON: {raw[:80]!r}") from None


def _version_fields(uri: str, mv: dict[str, Any]) -> dict[str, Any]:
    """``register_model`` keyword arguments for one MLflow model version."""
    tags = tag_dict(mv)
    source = str(mv.get("source") or "")
    metadata = _json_tag(tags, "metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"tag {TAG}metadata must be a JSON object")
    own = {k: v for k, v in tags.items() if not k.startswith(TAG)}
    metadata = {**metadata, "mlflow_version": int(mv["version"]), "mlflow_uri": uri}
    for key, value in (("mlflow_run_id", mv.get("run_id")), ("mlflow_description", mv.get("description"))):
        if value:
            metadata[key] = value
    if own:
        metadata["mlflow_tags"] = own
    return {
        "backend": tags.get(TAG + "backend") or DEFAULT_BACKEND,
        "params": _json_tag(tags, "params") or {},
        "artifact_uri": None if not source or source.startswith(SOURCE_SCHEME) else source,
        "artifact_digest": tags.get(TAG + "artifact_digest") or None,
        "training_dataset": tags.get(TAG + "training_dataset") or None,
        "metadata": metadata,
    }


def _import_aliases(
    repo: RegistryRepository,
    project_id: int,
    model: dict[str, Any],
    mapped: dict[int, int],
    report: MlflowReport,
) -> None:
    name, reason = str(model["name"]), f"imported from MLflow {model['uri']}"
    wanted: list[tuple[int, str]] = []
    for entry in model.get("aliases") or []:
        alias, version = str(entry["alias"]), int(entry["version"])
        try:
            validate_alias(alias)
        except ValueError as exc:
            report.skipped.append(f"{name}@{alias}: {exc}")
            continue
        if version not in mapped:
            report.skipped.append(f"{name}@{alias}: version {version} was not imported")
            continue
        wanted.append((mapped[version], alias))
    current = repo.aliases(project_id, "model", name) if wanted else {}
    for target, alias in sorted(wanted):
        if current.get(alias) == target:
            report.aliases_unchanged += 1
            continue
        repo.move_alias(project_id, "model", name, alias, target, actor=IMPORT_ACTOR, reason=reason)
        report.aliases_moved += 1


def import_from_mlflow(
    repo: RegistryRepository, project_id: int, mlflow: MlflowRegistry, *, name: str | None = None
) -> MlflowReport:
    """Register MLflow's models, versions and aliases in ``project_id`` (module docstring)."""
    report = MlflowReport()
    if name is not None:
        one = mlflow.registered_model(name)
        if one is None:
            raise LookupError(f"MLflow at {mlflow.base_url} has no registered model {name!r}")
        models = [one]
    else:
        models = mlflow.registered_models()
    for model in models:
        model_name = str(model["name"])
        try:
            validate_name(model_name, "model name")
        except ValueError as exc:
            report.skipped.append(f"{model_name}: {exc}")
            continue
        mapped: dict[int, int] = {}
        for mv in mlflow.model_versions(model_name):
            try:
                ours, created = repo.register_model(
                    project_id, model_name, **_version_fields(mlflow.base_url, mv), created_by=IMPORT_ACTOR
                )
            except ValueError as exc:
                report.skipped.append(f"{model_name}@{mv['version']}: {exc}")
                continue
            mapped[int(mv["version"])] = ours.version
            report.versions_created += created
            report.versions_reused += not created
        if mapped:
            _import_aliases(repo, project_id, {**model, "uri": mlflow.base_url}, mapped, report)
    return report


def _export_tags(v: ModelVersion) -> dict[str, str]:
    tags = {
        TAG + "backend": v.backend,
        TAG + "version": str(v.version),
        TAG + "content_digest": content_digest(v),
    }
    if v.params:
        tags[TAG + "params"] = canonical_json(dict(v.params))
    if v.metadata:
        tags[TAG + "metadata"] = canonical_json(dict(v.metadata))
    if v.artifact_digest:
        tags[TAG + "artifact_digest"] = v.artifact_digest
    if v.training_dataset:
        tags[TAG + "training_dataset"] = v.training_dataset
    too_long = [k for k, value in tags.items() if len(value) > MAX_TAG_CHARS]
    if too_long:
        raise ValueError(
            f"{v.name}@{v.version}: {', '.join(too_long)} longer than {MAX_TAG_CHARS} characters"
        )
    return tags


def _history_tag(events: list[alias_log.AliasEvent]) -> str:
    """Our alias log, newest events that fit in one tag: ``[alias, from, to, kind, actor, at_ns]``."""
    rows = [[e.alias, e.from_version, e.to_version, e.kind, e.actor, e.at_ns] for e in events]
    while rows and len(canonical_json(rows)) > MAX_TAG_CHARS:
        rows = rows[1:]
    return canonical_json(rows)


def _imported_from(v: ModelVersion, uri: str, numbers: set[str]) -> str | None:
    """The MLflow version ``v`` was imported from, when it came from this server and is there."""
    number = str(v.metadata.get("mlflow_version"))
    return number if v.metadata.get("mlflow_uri") == uri and number in numbers else None


def _export_model(
    repo: RegistryRepository, project_id: int, mlflow: MlflowRegistry, name: str, report: MlflowReport
) -> None:
    model = mlflow.registered_model(name)
    if model is None:
        mlflow.create_registered_model(name, description="Exported from watchkeep.", tags={})
        model = {"name": name}
    listed = mlflow.model_versions(name)
    by_digest = {tag_dict(mv).get(TAG + "content_digest"): str(mv["version"]) for mv in listed}
    numbers = {str(mv["version"]) for mv in listed}
    theirs: dict[int, str] = {}
    for v in reversed(repo.model_versions(project_id, name)):
        tags = _export_tags(v)
        existing = by_digest.get(tags[TAG + "content_digest"]) or _imported_from(v, mlflow.base_url, numbers)
        if existing is not None:
            theirs[v.version] = existing
            report.versions_reused += 1
            continue
        source = v.artifact_uri or f"{SOURCE_SCHEME}{name}/{v.version}"
        created = mlflow.create_model_version(name, source=source, description="", tags=tags)
        by_digest[tags[TAG + "content_digest"]] = theirs[v.version] = str(created["version"])
        report.versions_created += 1
    events = repo.events(project_id, "model", name)
    history = _history_tag(events)
    if tag_dict(model).get(TAG + "alias_history") != history:
        mlflow.set_model_tag(name, TAG + "alias_history", history)
    now = {str(a["alias"]): str(a["version"]) for a in model.get("aliases") or []}
    projection = alias_log.project(events)
    for alias, version in sorted(projection.items()):
        if now.get(alias) == theirs[version]:
            report.aliases_unchanged += 1
            continue
        mlflow.set_alias(name, alias, theirs[version])
        report.aliases_moved += 1
    for alias in sorted({e.alias for e in events} - set(projection)):
        if alias in now:
            mlflow.delete_alias(name, alias)
            report.aliases_moved += 1


def export_to_mlflow(
    repo: RegistryRepository, project_id: int, mlflow: MlflowRegistry, *, name: str | None = None
) -> MlflowReport:
    """Create our models, versions and current aliases in MLflow (module docstring)."""
    report = MlflowReport()
    names = [name] if name is not None else [s.name for s in repo.names(project_id, "model")]
    for model_name in names:
        _export_model(repo, project_id, mlflow, model_name, report)
    return report
