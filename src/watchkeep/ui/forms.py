"""Form posts: read once, CSRF-checked, validated with a pydantic model into field messages.

A page handler declares ``form: Annotated[Form, Depends(posted)]`` and calls
``form.validate(Model)``; on errors it re-renders its template with ``form.errors``
(field name → message) and ``form.data`` (what was typed, so nothing is lost) and a 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from watchkeep.monitor.spec import safe_yaml
from watchkeep.ui.frame import ConsoleRefusal
from watchkeep.ui.session import CSRF_FIELD, csrf_ok, current_session

M = TypeVar("M", bound=BaseModel)
MAX_FIELDS = 200


@dataclass
class Form:
    """A posted form: its raw values and, after ``validate``, its errors."""

    data: dict[str, str]
    lists: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def validate(self, model: type[M]) -> M | None:
        """``model`` from the form's values, or None with ``errors`` filled (one message a field)."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else "form"
                message = str(error["msg"]).removeprefix("Value error, ")
                self.errors.setdefault(name, message)
            return None

    def fail(self, name: str, message: str) -> None:
        """Add a message for field ``name`` (a check the model cannot make, such as a name taken)."""
        self.errors.setdefault(name, message)


async def posted(request: Request) -> Form:
    """The posted form of a logged-in user, after the CSRF check (403 without it)."""
    raw = await request.form(max_fields=MAX_FIELDS, max_files=0)
    data: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for key, value in raw.multi_items():
        if isinstance(value, str):
            data.setdefault(key, value)
            lists.setdefault(key, []).append(value)
    session = await run_in_threadpool(current_session, request)
    expected = session.csrf_token if session is not None else ""
    if not csrf_ok(request, expected, data.get(CSRF_FIELD)):
        raise ConsoleRefusal(
            403, "The form had expired or came from another site; reload the page and retry."
        )
    data.pop(CSRF_FIELD, None)
    return Form(data, lists)


def typed_mapping(
    form: Form, *, noun: str, shape: str, max_chars: int, field: str = "spec"
) -> dict[str, Any] | None:
    """The mapping typed in a JSON-or-YAML box (bounded, parsed by the safe loader that
    refuses anchors, aliases and deep nesting), or None with an error on ``field``:
    "the {noun} may hold at most ...", "the {noun} must be {shape}"."""
    text = form.data.get(field, "")
    if len(text) > max_chars:
        form.fail(field, f"the {noun} may hold at most {max_chars:,} characters")
        return None
    try:
        data = safe_yaml(text)
    except ValueError as exc:
        form.fail(field, str(exc))
        return None
    if not isinstance(data, dict):
        form.fail(field, f"the {noun} must be {shape}")
        return None
    return data
