"""The registry as files, so it can live in git: one YAML file per name, and its replay.

Contract (``watchkeep registry export`` / ``import`` call these):

- ``export_registry(repo, project_id, directory)`` writes ``models/NAME.yaml`` and
  ``prompts/NAME.yaml``: the name's versions (oldest first, every defining field plus
  metadata, lineage, message, author and time) and its alias event log (oldest first, with
  actor, reason, kind and time). Output is deterministic (sorted keys), so a re-export of an
  unchanged registry gives an identical diff-free tree.
- ``import_registry(repo, project_id, directory, actor)`` replays those files into a
  project through ``RegistryRepository`` (so every rule it enforces holds), and is
  idempotent:

  * versions are registered oldest first; a content-identical version already there is
    reused, not duplicated (the repository's digest check). Version numbers are the
    target's own (numbered per name there), so a source version maps to the number it got
    and ``parent`` and alias events are rewritten through that map;
  * an alias's events are replayed only when the alias has no events in the target (it is
    "not already there"); an alias the target already has is left alone and reported, so
    an import never rewrites a history the target recorded itself. Replayed events keep
    their actor, reason and kind; their time is the import's (the log is append-only and
    ordered by the target's clock), the original time stays in the file;
  * model ``eval_runs`` are not replayed: run ids belong to the source project.
- Malformed files raise ``RegistryFileError`` naming the file; nothing is written for a file
  that fails to parse (files are all parsed before the first write).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

import yaml

from watchkeep.monitor.spec import safe_yaml
from watchkeep.registry.aliases import EVENT_KINDS, AliasEvent, EventKind
from watchkeep.registry.repository import Kind, NotRegistered, RegistryRepository
from watchkeep.registry.versions import ModelVersion, PromptVersion, template_json, validate_name

KINDS: tuple[Kind, ...] = get_args(Kind)
FORMAT_VERSION = 1
MAX_FILE_BYTES = 16 << 20
IMPORT_ACTOR = "import"


class RegistryFileError(ValueError):
    """An export file that cannot be read back (the message names it)."""


@dataclass
class ImportReport:
    """What an import did, per ``kind/name``."""

    versions_created: int = 0
    versions_reused: int = 0
    events_appended: int = 0
    aliases_kept: list[str] = field(default_factory=list)  # "kind/name@alias" already there


def _model_record(v: ModelVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "backend": v.backend,
        "params": dict(v.params),
        "artifact_uri": v.artifact_uri,
        "artifact_digest": v.artifact_digest,
        "metadata": dict(v.metadata),
        "parent": v.parent,
        "training_dataset": v.training_dataset,
        "eval_runs": list(v.eval_runs),
        "created_by": v.created_by,
        "created_at_ns": v.created_at_ns,
    }


def _prompt_record(v: PromptVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "template": template_json(v.template),
        "variables": list(v.variables),
        "model_settings": dict(v.model_settings),
        "message": v.message,
        "parent": v.parent,
        "created_by": v.created_by,
        "created_at_ns": v.created_at_ns,
    }


def event_record(e: AliasEvent) -> dict[str, Any]:
    """One alias event as plain data (also what ``registry history --json`` prints)."""
    return {
        "alias": e.alias,
        "seq": e.seq,
        "from": e.from_version,
        "to": e.to_version,
        "kind": e.kind,
        "actor": e.actor,
        "reason": e.reason,
        "at_ns": e.at_ns,
    }


def export_registry(repo: RegistryRepository, project_id: int, directory: Path) -> list[Path]:
    """Write one YAML file per registered name under ``directory``; returns the files written."""
    written: list[Path] = []
    for kind in KINDS:
        for summary in repo.names(project_id, kind):
            versions: list[dict[str, Any]]
            if kind == "model":
                versions = [_model_record(v) for v in reversed(repo.model_versions(project_id, summary.name))]
            else:
                versions = [
                    _prompt_record(v) for v in reversed(repo.prompt_versions(project_id, summary.name))
                ]
            events = [event_record(e) for e in repo.events(project_id, kind, summary.name)]
            doc = {
                "format": FORMAT_VERSION,
                "kind": kind,
                "name": summary.name,
                "versions": versions,
                "events": events,
            }
            path = directory / f"{kind}s" / f"{summary.name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(doc, sort_keys=True, allow_unicode=True), encoding="utf-8")
            written.append(path)
    return written


def _load(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RegistryFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = safe_yaml(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryFileError(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise RegistryFileError(f"{path}: not a watchkeep registry file (format {FORMAT_VERSION})")
    if doc.get("kind") not in KINDS or not isinstance(doc.get("name"), str):
        raise RegistryFileError(f"{path}: needs kind (model or prompt) and name")
    try:
        validate_name(doc["name"])
    except ValueError as exc:
        raise RegistryFileError(f"{path}: {exc}") from None
    for key in ("versions", "events"):
        rows = doc.get(key) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise RegistryFileError(f"{path}: {key} must be a list of mappings")
        doc[key] = rows
    for row in doc["versions"]:
        if not isinstance(row.get("version"), int):
            raise RegistryFileError(f"{path}: every version needs its number")
    for row in doc["events"]:
        if row.get("kind") not in EVENT_KINDS or not isinstance(row.get("alias"), str):
            raise RegistryFileError(
                f"{path}: every event needs an alias and a kind ({', '.join(EVENT_KINDS)})"
            )
    return cast("dict[str, Any]", doc)


def _register(
    repo: RegistryRepository,
    project_id: int,
    doc: Mapping[str, Any],
    row: Mapping[str, Any],
    mapped: dict[int, int],
) -> tuple[int, bool]:
    parent = mapped.get(row["parent"]) if isinstance(row.get("parent"), int) else None
    created_by = row.get("created_by") or None
    if doc["kind"] == "model":
        model, created = repo.register_model(
            project_id,
            doc["name"],
            backend=str(row.get("backend", "")),
            params=row.get("params") or {},
            artifact_uri=row.get("artifact_uri"),
            artifact_digest=row.get("artifact_digest"),
            metadata=row.get("metadata") or {},
            parent=parent,
            training_dataset=row.get("training_dataset"),
            created_by=created_by,
        )
        return model.version, created
    prompt, created = repo.register_prompt(
        project_id,
        doc["name"],
        template=row.get("template", ""),
        model_settings=row.get("model_settings") or {},
        message=row.get("message") or None,
        parent=parent,
        created_by=created_by,
    )
    return prompt.version, created


def _existing_aliases(repo: RegistryRepository, project_id: int, kind: Kind, name: str) -> set[str]:
    try:
        return {e.alias for e in repo.events(project_id, kind, name)}
    except NotRegistered:
        return set()


def _replay(
    repo: RegistryRepository, project_id: int, doc: Mapping[str, Any], mapped: dict[int, int]
) -> ImportReport:
    report = ImportReport()
    kind: Kind = doc["kind"]
    name: str = doc["name"]
    existing = _existing_aliases(repo, project_id, kind, name)
    for alias in sorted({e["alias"] for e in doc["events"]} & existing):
        report.aliases_kept.append(f"{kind}/{name}@{alias}")
    events = sorted(doc["events"], key=lambda e: (e.get("at_ns") or 0, e["alias"], e.get("seq") or 0))
    for event in events:
        if event["alias"] in existing:
            continue
        to = event.get("to")
        target = mapped.get(to) if isinstance(to, int) else None
        if isinstance(to, int) and target is None:
            raise RegistryFileError(f"{kind}/{name}: an event moves to version {to}, which the file lacks")
        repo.move_alias(
            project_id,
            kind,
            name,
            event["alias"],
            target,
            actor=str(event.get("actor") or IMPORT_ACTOR),
            reason=event.get("reason"),
            event_kind=cast("EventKind", event["kind"]),
        )
        report.events_appended += 1
    return report


def import_registry(
    repo: RegistryRepository, project_id: int, directory: Path, actor: str = IMPORT_ACTOR
) -> ImportReport:
    """Replay every ``*.yaml`` export file under ``directory`` into ``project_id`` (module docstring)."""
    paths = sorted(p for kind in KINDS for p in (directory / f"{kind}s").glob("*.yaml"))
    if not paths:
        raise RegistryFileError(f"{directory}: no models/*.yaml or prompts/*.yaml files")
    docs = [_load(p) for p in paths]
    total = ImportReport()
    for doc in docs:
        mapped: dict[int, int] = {}
        for row in sorted(doc["versions"], key=lambda r: r["version"]):
            mapped[row["version"]], created = _register(
                repo, project_id, doc, {**row, "created_by": row.get("created_by") or actor}, mapped
            )
            if created:
                total.versions_created += 1
            else:
                total.versions_reused += 1
        part = _replay(repo, project_id, doc, mapped)
        total.events_appended += part.events_appended
        total.aliases_kept.extend(part.aliases_kept)
    return total
