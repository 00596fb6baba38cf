"""Request and response shapes of the comments and activity API (kept apart from the
traces' ``schemas.py``, which is long enough)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from watchkeep.api.schemas import ns_to_datetime
from watchkeep.store.comment_repository import BODY_MAX_CHARS


class CommentIn(BaseModel):
    """A new comment. ``target_kind`` is ``trace`` today (``run`` and ``version`` come with
    the validation and release work); ``body`` is plain text, stored as given."""

    model_config = ConfigDict(extra="forbid")

    target_kind: str = Field(min_length=1, max_length=16, examples=["trace"])
    target_id: str = Field(min_length=1, max_length=128, examples=["5b8efff798038103d269b633813fc60c"])
    body: str = Field(min_length=1, max_length=BODY_MAX_CHARS, description="Mention people with @handle")


class CommentEdit(BaseModel):
    """A comment's new body (its author only)."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=BODY_MAX_CHARS)


class MentionOut(BaseModel):
    """A user the comment mentions."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int
    display_name: str


class CommentOut(BaseModel):
    """A live comment."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    target_kind: str
    target_id: str
    author_name: str
    author_user_id: int | None
    author_key_id: int | None
    body: str
    created_at_unix_nano: int
    edited_at_unix_nano: int | None
    mentions: list[MentionOut]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at(self) -> datetime:
        return ns_to_datetime(self.created_at_unix_nano)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def edited_at(self) -> datetime | None:
        return None if self.edited_at_unix_nano is None else ns_to_datetime(self.edited_at_unix_nano)


class CommentPage(BaseModel):
    """A target's comments, oldest first."""

    items: list[CommentOut]
    next_cursor: str | None


class ActivityOut(BaseModel):
    """One thing done in the project."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    actor: str
    actor_user_id: int | None
    verb: str
    target_kind: str
    target_id: str
    summary: str
    created_at_unix_nano: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at(self) -> datetime:
        return ns_to_datetime(self.created_at_unix_nano)


class ActivityPageOut(BaseModel):
    """The project's activity, newest first; pass ``next_before_id`` as ``before_id`` for more."""

    items: list[ActivityOut]
    next_before_id: int | None
