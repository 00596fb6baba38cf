"""Datasets and their immutable versions in the store; every lookup is scoped to a project.

A version is written once, in one transaction, and never changed: its number is the next
of its dataset (the unique (dataset, version) constraint settles a race, the loser
retries) and its content hash dedupes a re-import against every earlier version. Items
go in by executemany batches, so a 100k-item import is a few hundred statements.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from watchkeep.evals.datasets import (
    MAX_ITEMS_PER_VERSION,
    content_hash_of,
    item_hash,
)
from watchkeep.evals.model import DatasetItem
from watchkeep.store.clock import now_ns
from watchkeep.store.eval_tables import dataset_items, dataset_versions, datasets
from watchkeep.store.sealing import Sealer, open_json, row_aad, seal_json
from watchkeep.store.trace_queries import Page, decode_cursor, encode_cursor

__all__ = [
    "MAX_ITEMS_PER_VERSION",
    "DatasetNotFound",
    "DatasetRepository",
    "DatasetSummary",
    "DatasetVersionInfo",
]

INSERT_BATCH = 1000  # items per executemany
MAX_NAME_CHARS = 200  # datasets.name
MIN_HASH_PREFIX = 8
RETRIES = 5  # a version number taken by a concurrent import: try the next
_HEX = re.compile(r"^[0-9a-f]+$")


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

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer  # encryption at rest of item input and expected (None: plaintext)

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
        check_name(name)
        if not items:
            raise ValueError("a dataset version needs at least one item")
        if len(items) > MAX_ITEMS_PER_VERSION:
            raise ValueError(f"a dataset version holds at most {MAX_ITEMS_PER_VERSION} items")
        if len({i.key for i in items}) != len(items):
            raise ValueError("item keys must be unique within a version")
        hashes = [item_hash(i) for i in items]
        digest = content_hash_of(hashes)
        splits = dict(Counter(i.split for i in items if i.split is not None))
        dataset_id = self._dataset_id(project_id, name, description, created_by)
        for _ in range(RETRIES):
            try:
                with self._engine.begin() as conn:
                    existing = self._by_hash(conn, project_id, dataset_id, digest)
                    if existing is not None:
                        return existing, False
                    number = (
                        conn.execute(
                            select(func.max(dataset_versions.c.version)).where(
                                dataset_versions.c.dataset_id == dataset_id
                            )
                        ).scalar()
                        or 0
                    ) + 1
                    version_id = conn.execute(
                        insert(dataset_versions)
                        .values(
                            dataset_id=dataset_id,
                            project_id=project_id,
                            version=number,
                            content_hash=digest,
                            item_count=len(items),
                            splits=splits,
                            source=source,
                            message=message,
                            created_by=created_by,
                            created_at_unix_nano=now_ns(),
                        )
                        .returning(dataset_versions.c.id)
                    ).scalar_one()
                    _insert_items(conn, project_id, int(version_id), items, hashes, self._sealer)
            except IntegrityError:
                continue
            return self.version_by_id(project_id, int(version_id)), True
        raise RuntimeError(f"could not number a new version of {name!r}: too many concurrent imports")

    def _dataset_id(self, project_id: int, name: str, description: str | None, created_by: str | None) -> int:
        d = datasets.c
        for _ in range(RETRIES):
            with self._engine.connect() as conn:
                found = conn.execute(select(d.id).where(d.project_id == project_id, d.name == name)).scalar()
            if found is not None:
                return int(found)
            try:
                with self._engine.begin() as conn:
                    new_id = conn.execute(
                        insert(datasets)
                        .values(
                            project_id=project_id,
                            name=name,
                            description=description,
                            created_by=created_by,
                            created_at_unix_nano=now_ns(),
                        )
                        .returning(datasets.c.id)
                    ).scalar_one()
                return int(new_id)
            except IntegrityError:
                continue  # created meanwhile: read it
        raise RuntimeError(f"could not create dataset {name!r}")

    def _by_hash(
        self, conn: Connection, project_id: int, dataset_id: int, digest: str
    ) -> DatasetVersionInfo | None:
        v = dataset_versions.c
        row = conn.execute(
            _version_query(project_id)
            .where(v.dataset_id == dataset_id, v.content_hash == digest)
            .order_by(v.version)
            .limit(1)
        ).first()
        return _info(row) if row is not None else None

    def get(self, project_id: int, name: str) -> DatasetSummary:
        """One dataset with its latest version; raises ``DatasetNotFound``."""
        d = datasets.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(d.id, d.name, d.description, d.created_at_unix_nano).where(
                    d.project_id == project_id, d.name == name
                )
            ).first()
        if row is None:
            raise DatasetNotFound(f"no dataset {name} in this project")
        versions = self.versions(project_id, name)
        return DatasetSummary(
            id=row.id,
            name=row.name,
            description=row.description,
            created_at_ns=row.created_at_unix_nano,
            versions=len(versions),
            latest=versions[0] if versions else None,
        )

    def list_datasets(
        self, project_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[DatasetSummary]:
        """The project's datasets by name, keyset-paged."""
        d, v = datasets.c, dataset_versions.c
        query = select(d.id, d.name, d.description, d.created_at_unix_nano).where(d.project_id == project_id)
        if cursor is not None:
            query = query.where(d.name > decode_cursor(cursor, (str,))[0])
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(d.name).limit(limit + 1)).all()
            page = rows[:limit]
            ids = [r.id for r in page]
            latest_numbers = (
                select(v.dataset_id, func.max(v.version).label("latest"), func.count().label("n"))
                .where(v.project_id == project_id, v.dataset_id.in_(ids))
                .group_by(v.dataset_id)
                .subquery()
            )
            latest = {
                r.dataset_id: (_info(r), int(r.n))
                for r in conn.execute(
                    _version_query(project_id)
                    .add_columns(latest_numbers.c.n)
                    .join(
                        latest_numbers,
                        (latest_numbers.c.dataset_id == v.dataset_id)
                        & (latest_numbers.c.latest == v.version),
                    )
                )
            }
        summaries = [
            DatasetSummary(
                id=r.id,
                name=r.name,
                description=r.description,
                created_at_ns=r.created_at_unix_nano,
                versions=latest.get(r.id, (None, 0))[1],
                latest=latest.get(r.id, (None, 0))[0],
            )
            for r in page
        ]
        next_cursor = encode_cursor(page[-1].name) if len(rows) > limit and page else None
        return Page(summaries, next_cursor)

    def versions(self, project_id: int, name: str) -> list[DatasetVersionInfo]:
        """Every version of ``name``, newest first; raises ``DatasetNotFound``."""
        with self._engine.connect() as conn:
            dataset_id = _find_dataset(conn, project_id, name)
            rows = conn.execute(
                _version_query(project_id)
                .where(dataset_versions.c.dataset_id == dataset_id)
                .order_by(dataset_versions.c.version.desc())
            ).all()
        return [_info(r) for r in rows]

    def resolve(self, project_id: int, name: str, version: int | str = "latest") -> DatasetVersionInfo:
        """A version by number, ``latest``, or a content-hash prefix (at least 8 hex digits)."""
        v = dataset_versions.c
        spec = version.strip().lower() if isinstance(version, str) else version
        with self._engine.connect() as conn:
            dataset_id = _find_dataset(conn, project_id, name)
            base = _version_query(project_id).where(v.dataset_id == dataset_id)
            if spec == "latest":
                row = conn.execute(base.order_by(v.version.desc()).limit(1)).first()
                if row is None:
                    raise DatasetNotFound(f"dataset {name!r} has no versions yet")
                return _info(row)
            if isinstance(spec, int) or (spec.isdigit() and len(spec) < MIN_HASH_PREFIX):
                row = conn.execute(base.where(v.version == int(spec))).first()
                if row is None:
                    raise DatasetNotFound(f"dataset {name!r} has no version {spec}")
                return _info(row)
            return _by_prefix(conn, base, name, spec)

    def version_by_id(self, project_id: int, version_id: int) -> DatasetVersionInfo:
        """A version by its row id; raises ``DatasetNotFound``."""
        with self._engine.connect() as conn:
            row = conn.execute(_version_query(project_id).where(dataset_versions.c.id == version_id)).first()
        if row is None:
            raise DatasetNotFound(f"no dataset version {version_id}")
        return _info(row)

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
        c = dataset_items.c
        query = (
            select(c.item_key, c.input, c.expected, c.item_metadata, c.split, c.trace_id)
            .where(c.project_id == project_id, c.version_id == version_id)
            .order_by(c.position)
            .offset(max(offset, 0))
        )
        if split is not None:
            query = query.where(c.split == split)
        if limit is not None:
            query = query.limit(max(limit, 0))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DatasetItem(
                key=r.item_key,
                input=open_json(self._sealer, r.input, row_aad("dataset_items", "input", project_id)),
                expected=open_json(
                    self._sealer, r.expected, row_aad("dataset_items", "expected", project_id)
                ),
                metadata=r.item_metadata or {},
                split=r.split,
                trace_id=r.trace_id,
            )
            for r in rows
        ]

    def delete(self, project_id: int, name: str) -> bool:
        """Delete a dataset and all its versions; False when there was none."""
        d, v = datasets.c, dataset_versions.c
        with self._engine.begin() as conn:
            dataset_id = conn.execute(select(d.id).where(d.project_id == project_id, d.name == name)).scalar()
            if dataset_id is None:
                return False
            version_ids = select(v.id).where(v.project_id == project_id, v.dataset_id == dataset_id)
            conn.execute(
                delete(dataset_items).where(
                    dataset_items.c.project_id == project_id, dataset_items.c.version_id.in_(version_ids)
                )
            )
            conn.execute(
                delete(dataset_versions).where(v.project_id == project_id, v.dataset_id == dataset_id)
            )
            conn.execute(delete(datasets).where(d.id == dataset_id))
        return True


def check_name(name: str) -> None:
    """A dataset name: 1 to 200 printable characters, no surrounding spaces."""
    if not name or len(name) > MAX_NAME_CHARS or name != name.strip() or not name.isprintable():
        raise ValueError(f"a dataset name is 1 to {MAX_NAME_CHARS} printable characters")


def _version_query(project_id: int) -> Any:
    v = dataset_versions.c
    return (
        select(dataset_versions, datasets.c.name.label("dataset_name"))
        .join(datasets, datasets.c.id == v.dataset_id)
        .where(v.project_id == project_id, datasets.c.project_id == project_id)
    )


def _info(row: Any) -> DatasetVersionInfo:
    return DatasetVersionInfo(
        id=row.id,
        dataset_id=row.dataset_id,
        dataset_name=row.dataset_name,
        version=row.version,
        content_hash=row.content_hash,
        item_count=row.item_count,
        splits=dict(row.splits or {}),
        source=row.source,
        message=row.message,
        created_by=row.created_by,
        created_at_ns=row.created_at_unix_nano,
    )


def _find_dataset(conn: Connection, project_id: int, name: str) -> int:
    d = datasets.c
    found = conn.execute(select(d.id).where(d.project_id == project_id, d.name == name)).scalar()
    if found is None:
        raise DatasetNotFound(f"no dataset {name!r} in this project")
    return int(found)


def _by_prefix(conn: Connection, base: Any, name: str, spec: str) -> DatasetVersionInfo:
    if len(spec) < MIN_HASH_PREFIX or len(spec) > 64 or not _HEX.match(spec):
        raise DatasetNotFound(
            f"{spec!r} is not a version of {name!r}: use latest, a number or a hash prefix "
            f"of at least {MIN_HASH_PREFIX} hex digits"
        )
    v = dataset_versions.c
    rows = conn.execute(base.where(v.content_hash.startswith(spec, autoescape=True)).limit(2)).all()
    if not rows:
        raise DatasetNotFound(f"dataset {name!r} has no version with hash {spec}...")
    if len(rows) > 1:
        raise DatasetNotFound(f"hash prefix {spec} names several versions of {name!r}: give more digits")
    return _info(rows[0])


def _insert_items(
    conn: Connection,
    project_id: int,
    version_id: int,
    items: Sequence[DatasetItem],
    hashes: Sequence[str],
    sealer: Sealer | None,
) -> None:
    aad_in, aad_expected = (row_aad("dataset_items", c, project_id) for c in ("input", "expected"))
    for start in range(0, len(items), INSERT_BATCH):
        conn.execute(
            insert(dataset_items),
            [
                {
                    "version_id": version_id,
                    "project_id": project_id,
                    "position": start + offset,
                    "item_key": item.key,
                    "item_hash": hashes[start + offset],
                    "split": item.split,
                    "input": seal_json(sealer, item.input, aad_in),
                    "expected": seal_json(sealer, item.expected, aad_expected),
                    "item_metadata": dict(item.metadata) or None,
                    "trace_id": item.trace_id,
                }
                for offset, item in enumerate(items[start : start + INSERT_BATCH])
            ],
        )
