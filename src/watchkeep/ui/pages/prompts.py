"""Prompts in the registry: the pages models have (models.name_pages), a version's template
as text or chat messages, and a diff of two versions (``registry.prompts.diff_prompts``:
the template's unified diff, variables added and removed, model settings changed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from watchkeep.registry.prompts import PromptContent, diff_prompts
from watchkeep.registry.versions import PromptVersion
from watchkeep.security.authz import Permission
from watchkeep.ui import release_view
from watchkeep.ui.frame import NavItem, render
from watchkeep.ui.pages.models import MAX_VERSION, Reader, VersionNumber, name_pages, one_version, versions_of

router = APIRouter(include_in_schema=False)
NAV = NavItem("Prompts", "prompts", Permission.REGISTRY_READ)

name_pages(router, "prompt")


def _content(version: PromptVersion) -> PromptContent:
    return PromptContent(version.template, version.model_settings)


@router.get("/p/{project}/prompts/{name}/versions/{version}", response_class=HTMLResponse)
def prompt_version(console: Reader, name: str, version: VersionNumber) -> HTMLResponse:
    """A prompt version: its template (text or messages), variables, settings and lineage."""
    found: PromptVersion = one_version(console, "prompt", name, version)
    aliases = console.services.registry_store.aliases(console.project.project_id, "prompt", name)
    return render(
        console,
        "registry/prompt_version.html",
        v=found,
        messages=_content(found).sources() if not isinstance(found.template, str) else (),
        aliases=sorted(a for a, n in aliases.items() if n == version),
        view=release_view,
    )


@router.get("/p/{project}/prompts/{name}/diff", response_class=HTMLResponse)
def prompt_diff(
    console: Reader,
    name: str,
    old: Annotated[int | None, Query(alias="from", ge=1, le=MAX_VERSION)] = None,
    new: Annotated[int | None, Query(alias="to", ge=1, le=MAX_VERSION)] = None,
) -> HTMLResponse:
    """What changed between two versions; by default the newest and the one before it."""
    versions: list[PromptVersion] = versions_of(console, "prompt", name)  # type: ignore[assignment]
    latest = versions[0].version
    previous = versions[1].version if len(versions) > 1 else latest
    a = one_version(console, "prompt", name, old or previous)
    b = one_version(console, "prompt", name, new or latest)
    diff = diff_prompts(_content(a), _content(b), f"v{a.version}", f"v{b.version}")
    return render(
        console,
        "registry/prompt_diff.html",
        name=name,
        old=a,
        new=b,
        versions=versions,
        diff=diff,
        lines=release_view.diff_lines(diff.text),
        view=release_view,
    )
