"""The release registry over HTTP: ``/api/v1/models`` and ``/api/v1/prompts``.

Versions are immutable: registering content identical to an existing version answers
200 with that version and ``created`` false (201 for a new one). Aliases change only by
appending an event (``PUT .../aliases/{alias}`` is a ``move``, ``POST .../rollback`` a
``rollback``), so ``.../history`` is the complete record; registrations, moves and
rollbacks also land in the activity feed. Every lookup is in the key's project, so
another project's name is a 404.

``GET /prompts/{name}`` serves two callers: with ``?label=`` or ``?version=`` it answers
the SDK's contract (``sdk/prompts.py``; ``PROMPTS_READ``, which ingest keys hold), without
either it is the name's summary (its versions and aliases; ``REGISTRY_READ``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.registry_schemas import (
    ALIAS_PATTERN,
    NAME_PATTERN,
    AliasesOut,
    AliasEventOut,
    AliasHistory,
    AliasMoveIn,
    CreatedModelVersionOut,
    CreatedPromptVersionOut,
    ModelDetail,
    ModelVersionIn,
    ModelVersionOut,
    NameList,
    PromptDetail,
    PromptDiffOut,
    PromptVersionIn,
    PromptVersionOut,
    RollbackIn,
    SdkPromptOut,
    SettingChangeOut,
    event_out,
    model_out,
    name_out,
    prompt_out,
    sdk_prompt_out,
)
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.routes.promotion_schemas import check_force, refused
from watchkeep.registry.aliases import AliasError, AliasLogError
from watchkeep.registry.promotion import PromotionRefused
from watchkeep.registry.prompts import PromptContent, diff_prompts
from watchkeep.registry.repository import Kind, NotRegistered, RegistryRepository
from watchkeep.registry.versions import template_json
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["registry"])
AUTH = errors(400, 401, 403)
NOT_FOUND = errors((404, "No such name, version or alias in this project"))
INVALID = errors(413, (422, "Invalid or oversized input (the message says which field)"))
REFUSED = errors(
    (409, "The alias move may not be made (no change, nothing to roll back to, or a gate unmet)")
)
Reader = Annotated[Principal, Depends(require(Permission.REGISTRY_READ))]
Writer = Annotated[Principal, Depends(require(Permission.REGISTRY_WRITE))]
PromptReader = Annotated[Principal, Depends(require(Permission.PROMPTS_READ))]
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="The model's or prompt's name.")]
Alias = Annotated[str, Path(pattern=ALIAS_PATTERN, description="An alias, e.g. `production`.")]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="A version number.")]
REF_PATTERN = rf"^([1-9][0-9]{{0,9}}|{ALIAS_PATTERN[1:-1]})$"
PLURAL: dict[Kind, str] = {"model": "models", "prompt": "prompts"}


def _repo(request: Request) -> RegistryRepository:
    return services(request).registry_store


@contextmanager
def _answers() -> Iterator[None]:
    """The registry's refusals as HTTP answers: 404 unknown, 409 refused move, 422 bad input."""
    try:
        yield
    except NotRegistered as exc:
        raise ApiError(404, "not_found", str(exc) or "no such name, version or alias") from exc
    except AliasLogError:
        raise  # a broken event log is the server's fault (500), never the caller's
    except AliasError as exc:
        raise ApiError(409, "alias_refused", str(exc)) from exc
    except ValueError as exc:  # InvalidName, PromptError, a version's own checks (lineage, JSON)
        raise ApiError(422, "invalid_version", str(exc)) from exc


def _record(request: Request, principal: Principal, verb: str, kind: Kind, target: str, summary: str) -> None:
    services(request).activity.record(
        principal.project_id,
        actor=actor_of(principal),
        actor_user_id=None,
        verb=verb,
        target_kind=kind,
        target_id=target,
        summary=summary,
    )


def _created(out: Any, created: bool) -> Response:
    return Response(
        orjson.dumps(out.model_dump(mode="json")), 201 if created else 200, media_type="application/json"
    )


def _ref(text: str) -> int | str:
    return int(text) if text.isdigit() else text


# ---------------------------------------------------------------- models


@router.get("/models", response_model=NameList, responses=AUTH)
def list_models(request: Request, principal: Reader) -> NameList:
    """The project's registered models by name, with their latest version and aliases."""
    return NameList(items=[name_out(s) for s in _repo(request).names(principal.project_id, "model")])


@router.get("/models/{name}", response_model=ModelDetail, responses={**AUTH, **NOT_FOUND})
def get_model(request: Request, principal: Reader, name: Name) -> ModelDetail:
    """A model's versions (newest first) and where its aliases point."""
    repo = _repo(request)
    with _answers():
        versions = repo.model_versions(principal.project_id, name)
        aliases = repo.aliases(principal.project_id, "model", name)
    return ModelDetail(name=name, aliases=aliases, versions=[model_out(v) for v in versions])


@router.post(
    "/models/{name}/versions",
    status_code=201,
    response_model=CreatedModelVersionOut,
    responses={
        **AUTH,
        200: {
            "description": "Identical content exists: that version, `created` false",
            "model": CreatedModelVersionOut,
        },
        **INVALID,
    },
)
def register_model(request: Request, principal: Writer, name: Name, body: ModelVersionIn) -> Response:
    """Register the next version of a model (or find its content-identical twin)."""
    actor = actor_of(principal)
    with _answers():
        version, created = _repo(request).register_model(
            principal.project_id,
            name,
            backend=body.backend,
            params=body.params,
            artifact_uri=body.artifact_uri,
            artifact_digest=body.artifact_digest,
            metadata=body.metadata,
            parent=body.parent,
            training_dataset=body.training_dataset,
            eval_runs=tuple(body.eval_runs),
            created_by=actor,
        )
    if created:
        target = f"{name}@{version.version}"
        _record(
            request, principal, "registered", "model", target, f"registered model {target} ({body.backend})"
        )
    return _created(CreatedModelVersionOut(**model_out(version).model_dump(), created=created), created)


@router.get(
    "/models/{name}/versions/{version}", response_model=ModelVersionOut, responses={**AUTH, **NOT_FOUND}
)
def get_model_version(request: Request, principal: Reader, name: Name, version: Version) -> ModelVersionOut:
    """One model version."""
    with _answers():
        return model_out(_repo(request).model(principal.project_id, name, version))


# ---------------------------------------------------------------- prompts


@router.get("/prompts", response_model=NameList, responses=AUTH)
def list_prompts(request: Request, principal: Reader) -> NameList:
    """The project's registered prompts by name, with their latest version and aliases."""
    return NameList(items=[name_out(s) for s in _repo(request).names(principal.project_id, "prompt")])


@router.get(
    "/prompts/{name}",
    response_model=PromptDetail | SdkPromptOut,
    responses={**AUTH, **NOT_FOUND, **errors((422, "Both `label` and `version` given"))},
)
def get_prompt(
    request: Request,
    principal: PromptReader,
    name: Name,
    label: Annotated[str | None, Query(pattern=ALIAS_PATTERN, description="Resolve this alias.")] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Pin this version.")] = None,
) -> PromptDetail | SdkPromptOut:
    """With ``label`` or ``version``: that one version in the SDK's shape (``PROMPTS_READ``).
    Without: the prompt's versions and aliases (``REGISTRY_READ``)."""
    repo = _repo(request)
    if label is not None and version is not None:
        raise ApiError(422, "invalid_selector", "give label or version, not both")
    if label is not None or version is not None:
        with _answers():
            found = repo.prompt(principal.project_id, name, label if label is not None else version)
        return sdk_prompt_out(found, label)
    if not principal.can(Permission.REGISTRY_READ):
        raise ApiError(403, "forbidden", f"this key's role lacks the '{Permission.REGISTRY_READ}' permission")
    with _answers():
        versions = repo.prompt_versions(principal.project_id, name)
        aliases = repo.aliases(principal.project_id, "prompt", name)
    return PromptDetail(name=name, aliases=aliases, versions=[prompt_out(v) for v in versions])


@router.post(
    "/prompts/{name}/versions",
    status_code=201,
    response_model=CreatedPromptVersionOut,
    responses={
        **AUTH,
        200: {
            "description": "Identical content exists: that version, `created` false",
            "model": CreatedPromptVersionOut,
        },
        **INVALID,
    },
)
def register_prompt(request: Request, principal: Writer, name: Name, body: PromptVersionIn) -> Response:
    """Register the next version of a prompt; the template is compiled in the sandbox first."""
    with _answers():
        version, created = _repo(request).register_prompt(
            principal.project_id,
            name,
            template=body.template_value(),
            model_settings=body.model_settings,
            message=body.message,
            parent=body.parent,
            created_by=actor_of(principal),
        )
    if created:
        target = f"{name}@{version.version}"
        note = f": {body.message}" if body.message else ""
        _record(request, principal, "registered", "prompt", target, f"registered prompt {target}{note}")
    return _created(CreatedPromptVersionOut(**prompt_out(version).model_dump(), created=created), created)


@router.get(
    "/prompts/{name}/versions/{version}", response_model=PromptVersionOut, responses={**AUTH, **NOT_FOUND}
)
def get_prompt_version(request: Request, principal: Reader, name: Name, version: Version) -> PromptVersionOut:
    """One prompt version."""
    with _answers():
        return prompt_out(_repo(request).prompt(principal.project_id, name, version))


@router.get("/prompts/{name}/diff", response_model=PromptDiffOut, responses={**AUTH, **NOT_FOUND})
def diff_prompt(
    request: Request,
    principal: Reader,
    name: Name,
    from_: Annotated[str, Query(alias="from", pattern=REF_PATTERN, description="A version or an alias.")],
    to: Annotated[str, Query(pattern=REF_PATTERN, description="A version or an alias.")],
) -> PromptDiffOut:
    """What changed from one version to another: template lines, variables, model settings."""
    repo = _repo(request)
    with _answers():
        old = repo.prompt(principal.project_id, name, _ref(from_))
        new = repo.prompt(principal.project_id, name, _ref(to))
        diff = diff_prompts(
            PromptContent.of(template_json(old.template), old.model_settings),
            PromptContent.of(template_json(new.template), new.model_settings),
            f"{name}@{old.version}",
            f"{name}@{new.version}",
        )
    return PromptDiffOut(
        name=name,
        from_version=old.version,
        to_version=new.version,
        changed=diff.changed,
        text=diff.text,
        variables_added=list(diff.variables_added),
        variables_removed=list(diff.variables_removed),
        settings=[SettingChangeOut(key=c.key, change=c.change, old=c.old, new=c.new) for c in diff.settings],
    )


# ---------------------------------------------------------------- aliases (both kinds)


def _alias_routes(kind: Kind) -> None:
    """The four alias endpoints under ``/{models|prompts}/{name}/aliases``."""
    base = f"/{PLURAL[kind]}/{{name}}/aliases"

    @router.get(base, response_model=AliasesOut, responses={**AUTH, **NOT_FOUND}, name=f"{kind}_aliases")
    def current(request: Request, principal: Reader, name: Name) -> AliasesOut:
        """Where each alias points now (the projection of the event log)."""
        with _answers():
            _exists(request, principal, kind, name)
            return AliasesOut(name=name, aliases=_repo(request).aliases(principal.project_id, kind, name))

    @router.get(
        f"{base}/{{alias}}/history",
        response_model=AliasHistory,
        responses={**AUTH, **NOT_FOUND},
        name=f"{kind}_alias_history",
    )
    def history(request: Request, principal: Reader, name: Name, alias: Alias) -> AliasHistory:
        """Every event of one alias, oldest first: who moved it, from where to where, and why."""
        with _answers():
            _exists(request, principal, kind, name)
            events = _repo(request).events(principal.project_id, kind, name, alias)
        return AliasHistory(name=name, alias=alias, items=[event_out(e) for e in events])

    @router.put(
        f"{base}/{{alias}}",
        response_model=AliasEventOut,
        responses={**AUTH, **NOT_FOUND, **REFUSED, **INVALID},
        name=f"{kind}_move_alias",
    )
    def move(
        request: Request, principal: Writer, name: Name, alias: Alias, body: AliasMoveIn
    ) -> AliasEventOut | Response:
        """Point the alias at a version (``version`` null removes it): one appended event, through
        the alias's promotion policy (``registry.promotion``: 409 with the reasons when refused)."""
        can_force = check_force(principal, body.force, body.reason)
        promotions, actor = services(request).promotions, actor_of(principal)
        args = (principal.project_id, kind, name, alias)
        try:
            with _answers():
                if body.version is None:
                    event = promotions.remove(
                        *args, actor=actor, can_force=can_force, force=body.force, reason=body.reason
                    )
                else:
                    event, _ = promotions.promote(
                        *args,
                        body.version,
                        actor=actor,
                        can_force=can_force,
                        force=body.force,
                        reason=body.reason,
                    )
        except PromotionRefused as exc:
            return refused(exc)
        _record_event(
            request, principal, kind, "moved", event.from_version, event.to_version, name, alias, body.reason
        )
        return event_out(event)

    @router.post(
        f"{base}/{{alias}}/rollback",
        response_model=AliasEventOut,
        responses={**AUTH, **NOT_FOUND, **REFUSED, **INVALID},
        name=f"{kind}_rollback_alias",
    )
    def rollback(
        request: Request, principal: Writer, name: Name, alias: Alias, body: RollbackIn
    ) -> AliasEventOut:
        """Move the alias back to the version it held before: one appended ``rollback`` event."""
        with _answers():
            event = _repo(request).rollback(
                principal.project_id, kind, name, alias, actor=actor_of(principal), reason=body.reason
            )
        _record_event(
            request,
            principal,
            kind,
            "rolled back",
            event.from_version,
            event.to_version,
            name,
            alias,
            body.reason,
        )
        return event_out(event)


def _exists(request: Request, principal: Principal, kind: Kind, name: str) -> None:
    """Raise ``NotRegistered`` for a name with no versions in this project (so no alias is a 404)."""
    repo = _repo(request)
    if kind == "model":
        repo.model(principal.project_id, name)
    else:
        repo.prompt(principal.project_id, name)


# Alias events as audit actions (security.audit).
_AUDIT_ACTIONS = {
    "moved": "alias.move",
    "rolled back": "alias.rollback",
    "promoted": "alias.promote",
    "force-promoted": "alias.force_promote",
}


def _record_event(
    request: Request,
    principal: Principal,
    kind: Kind,
    verb: str,
    from_version: int | None,
    to_version: int | None,
    name: str,
    alias: str,
    reason: str | None,
) -> None:
    def at(v: int | None) -> str:
        return "(none)" if v is None else str(v)

    why = f": {reason}" if reason else ""
    summary = f"{verb} {kind} {name}@{alias} from {at(from_version)} to {at(to_version)}{why}"
    _record(request, principal, verb, kind, f"{name}@{alias}", summary)
    services(request).audit.record(
        actor=actor_of(principal),
        action=_AUDIT_ACTIONS.get(verb, "alias.move"),
        project_id=principal.project_id,
        target=f"{kind}:{name}@{alias}",
        before={"version": from_version},
        after={"version": to_version},
        detail=reason,
    )


for _kind in PLURAL:
    _alias_routes(_kind)
