"""Datasets and their immutable versions in the store; every lookup is scoped to a project.

SKELETON (groundwork): signatures are the contract; the datasets helper implements them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from watchkeep.evals.model import DatasetItem
from watchkeep.store.trace_queries import Page

MAX_ITEMS_PER_VERSION = 1_000_000


class DatasetNotFound(LookupError):
    """No such dataset or version in this project."""


@dataclass(frozen=True, slots=True)
class DatasetVersionInfo:
    """One immutable version: its number, content hash, size and how it was built."""

    id: int
    dataset_id: int
    dataset_name: str
    version: int
    content_hash: str
    item_count: int
    splits: dict[str, int]
    source: dict[str, Any] | None
    message: str | None
    created_by: str | None
    created_at_ns: int


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """A dataset and its latest version (None before the first)."""

    id: int
    name: str
    description: str | None
    created_at_ns: int
    versions: int
    latest: DatasetVersionInfo | None = None
    tags: dict[str, Any] = field(default_factory=dict)


class DatasetRepository:
    """Writes versions (deduplicated by content hash) and reads datasets, versions and items."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_version(
        self,
        project_id: int,
        name: str,
        items: Sequence[DatasetItem],
        *,
        source: dict[str, Any] | None = None,
        message: str | None = None,
        created_by: str | None = None,
        description: str | None = None,
    ) -> tuple[DatasetVersionInfo, bool]:
        """Store ``items`` as the next version of ``name`` (creating the dataset on first use).
        Returns ``(version, created)``: when the content hash equals an existing version of the
        dataset, that version and False (nothing written)."""
        raise NotImplementedError

    def list_datasets(
        self, project_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[DatasetSummary]:
        """The project's datasets by name, keyset-paged."""
        raise NotImplementedError

    def versions(self, project_id: int, name: str) -> list[DatasetVersionInfo]:
        """Every version of ``name``, newest first; raises ``DatasetNotFound``."""
        raise NotImplementedError

    def resolve(self, project_id: int, name: str, version: int | str = "latest") -> DatasetVersionInfo:
        """A version by number, ``latest``, or a content-hash prefix (at least 8 hex digits)."""
        raise NotImplementedError

    def version_by_id(self, project_id: int, version_id: int) -> DatasetVersionInfo:
        """A version by its row id; raises ``DatasetNotFound``."""
        raise NotImplementedError

    def items(
        self,
        project_id: int,
        version_id: int,
        *,
        split: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DatasetItem]:
        """A version's items in position order (optionally one split, a window of them)."""
        raise NotImplementedError

    def delete(self, project_id: int, name: str) -> bool:
        """Delete a dataset and all its versions; False when there was none."""
        raise NotImplementedError
