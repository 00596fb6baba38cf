"""Models in the registry: the names, a name's versions, aliases and alias timeline, a
version's detail, and the promote and roll back buttons.

``name_pages`` registers the pages models and prompts share (prompts.py calls it too).
Every read and move goes through ``RegistryRepository`` and ``PromotionService``, the
services the REST API calls, so a move made here is gated, logged and propagated to the
gateway exactly as ``POST /api/v1/models/{name}/aliases/{alias}`` would be.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from watchkeep.registry.aliases import AliasError
from watchkeep.registry.promotion import PromotionRefused
from watchkeep.registry.repository import Kind, NotRegistered, RegistryConflict
from watchkeep.registry.versions import ModelVersion, PromptVersion
from watchkeep.security.authz import Permission
from watchkeep.ui import release_view
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render

router = APIRouter(include_in_schema=False)
NAV = NavItem("Models", "models", Permission.REGISTRY_READ)
Reader = Annotated[Console, Depends(page(Permission.REGISTRY_READ))]
Writer = Annotated[Console, Depends(page(Permission.REGISTRY_WRITE))]
MAX_NAME_CHARS = 128
MAX_VERSION = 2**31 - 1
ALIAS = r"^[A-Za-z][A-Za-z0-9._-]{0,63}$"
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION)]
PLURAL: dict[Kind, str] = {"model": "models", "prompt": "prompts"}


class Promote(BaseModel):
    """The "Promote" form of a name's page."""

    alias: str = Field(pattern=ALIAS, description="a letter, then letters, digits, '.', '_', '-'")
    version: int = Field(ge=1, le=MAX_VERSION)
    reason: str = Field(default="", max_length=500)


def not_found(kind: Kind, what: str = "") -> ConsoleRefusal:
    return ConsoleRefusal(404, f"There is no such {kind}{what} in this project.")


def versions_of(console: Console, kind: Kind, name: str) -> list[ModelVersion] | list[PromptVersion]:
    """Every version of ``name``, newest first, or a 404 page."""
    if len(name) > MAX_NAME_CHARS:
        raise not_found(kind)
    repo, pid = console.services.registry_store, console.project.project_id
    try:
        return repo.model_versions(pid, name) if kind == "model" else repo.prompt_versions(pid, name)
    except (NotRegistered, ValueError):
        raise not_found(kind) from None


def one_version(console: Console, kind: Kind, name: str, version: int) -> Any:
    """A version of ``name`` by number, or a 404 page."""
    found = [v for v in versions_of(console, kind, name) if v.version == version]
    if not found:
        raise not_found(kind, " version")
    return found[0]


def _name_page(
    console: Console,
    kind: Kind,
    name: str,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    form: Form | None = None,
) -> HTMLResponse:
    versions = versions_of(console, kind, name)
    repo, pid = console.services.registry_store, console.project.project_id
    return render(
        console,
        "registry/name.html",
        status=status,
        kind=kind,
        plural=PLURAL[kind],
        name=name,
        versions=versions,
        aliases=repo.aliases(pid, kind, name),
        events=release_view.timeline(repo.events(pid, kind, name)),
        problems=problems or [],
        form=form,
        view=release_view,
    )


def _list(console: Console, kind: Kind) -> HTMLResponse:
    names = console.services.registry_store.names(console.project.project_id, kind)
    return render(console, "registry/list.html", kind=kind, plural=PLURAL[kind], names=names)


def _rollback(console: Console, kind: Kind, name: str, alias: str, form: Form) -> Response:
    versions_of(console, kind, name)
    reason = form.data.get("reason", "").strip()[:500] or None
    try:
        event = console.services.registry_store.rollback(
            console.project.project_id, kind, name, alias, actor=console.actor, reason=reason
        )
    except NotRegistered:
        raise not_found(kind, " alias") from None
    except (AliasError, RegistryConflict, ValueError) as exc:
        return _name_page(console, kind, name, status=409, problems=[str(exc)])
    release_view.record_alias_event(console, kind, event)
    return RedirectResponse(console.url(f"{PLURAL[kind]}/{quote(name, safe='')}#timeline"), status_code=303)


def _promote(console: Console, kind: Kind, name: str, form: Form) -> Response:
    versions_of(console, kind, name)
    spec = form.validate(Promote)
    if spec is None:
        return _name_page(console, kind, name, status=400, form=form)
    force = form.data.get("force") in ("on", "true", "1")
    if force:
        console.demand(Permission.REGISTRY_ADMIN)  # the service refuses too; say so plainly
    try:
        event, _ = console.services.promotions.promote(
            console.project.project_id,
            kind,
            name,
            spec.alias,
            spec.version,
            actor=console.actor,
            can_force=console.can(Permission.REGISTRY_ADMIN),
            force=force,
            reason=spec.reason or None,
        )
    except PromotionRefused as exc:
        return _name_page(console, kind, name, status=409, problems=exc.reasons, form=form)
    except NotRegistered as exc:
        form.fail("version", str(exc))
        return _name_page(console, kind, name, status=400, form=form)
    except (AliasError, RegistryConflict, ValueError) as exc:
        return _name_page(console, kind, name, status=409, problems=[str(exc)], form=form)
    release_view.record_alias_event(console, kind, event)
    return RedirectResponse(console.url(f"{PLURAL[kind]}/{quote(name, safe='')}#timeline"), status_code=303)


def name_pages(router: APIRouter, kind: Kind) -> None:
    """Register the list, a name's page, and its roll back and promote posts for ``kind``."""
    base = f"/p/{{project}}/{PLURAL[kind]}"

    @router.get(base, response_class=HTMLResponse, name=f"{kind}_list")
    def name_list(console: Reader) -> HTMLResponse:
        """The names with their latest version, aliases and number of versions."""
        return _list(console, kind)

    @router.get(base + "/{name}", response_class=HTMLResponse, name=f"{kind}_page")
    def name_page(console: Reader, name: str) -> HTMLResponse:
        """Versions, current aliases and the alias history as a timeline."""
        return _name_page(console, kind, name)

    @router.post(base + "/{name}/aliases/{alias}/rollback", name=f"{kind}_rollback")
    def rollback(console: Writer, name: str, alias: str, form: Annotated[Form, Depends(posted)]) -> Response:
        """Move the alias back to the version it held before (never gated)."""
        return _rollback(console, kind, name, alias, form)

    @router.post(base + "/{name}/promote", response_class=HTMLResponse, name=f"{kind}_promote")
    def promote(console: Writer, name: str, form: Annotated[Form, Depends(posted)]) -> Response:
        """Move an alias to a version under its promotion policy; refusals list the unmet gates."""
        return _promote(console, kind, name, form)


name_pages(router, "model")


@router.get("/p/{project}/models/{name}/versions/{version}", response_class=HTMLResponse)
def model_version(console: Reader, name: str, version: VersionNumber) -> HTMLResponse:
    """A model version: backend, artifact, params and metadata, and its lineage."""
    found: ModelVersion = one_version(console, "model", name, version)
    versions = versions_of(console, "model", name)
    aliases = console.services.registry_store.aliases(console.project.project_id, "model", name)
    return render(
        console,
        "registry/model_version.html",
        v=found,
        children=[v.version for v in versions if v.parent == version],
        aliases=sorted(a for a, n in aliases.items() if n == version),
        view=release_view,
    )
