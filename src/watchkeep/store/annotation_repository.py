"""Annotation queues, their items and labels, always scoped to one project.

A queue is filled with traces picked by the trace list's own filter (the first N matches,
newest first, or a seeded random sample of a time range); re-filling skips traces already
queued. Annotators (console users) label items; every label write recomputes the item's
agreed label and keeps it as a ground-truth score (``annotation_ground_truth``). Work is
bounded: at most ``MAX_FILL`` traces a fill, ``MAX_ITEMS`` a queue, ``MAX_POPULATION``
candidate traces a sample, ``MAX_QUEUES`` queues a project.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from watchkeep.store.annotation_ground_truth import agreed_label, write_ground_truth
from watchkeep.store.clock import now_ns
from watchkeep.store.tables import (
    annotation_items,
    annotation_labels,
    annotation_queues,
    scores,
    traces,
    users,
)
from watchkeep.store.trace_queries import Page, TraceFilter, TraceQueries, decode_cursor, encode_cursor

MAX_FILL = 10_000
MAX_ITEMS = 100_000
MAX_POPULATION = 200_000
MAX_QUEUES = 500
MAX_LABELS = 20
MAX_LABEL_CHARS = 64
MAX_ANNOTATORS = 10
MAX_COMMENT_CHARS = 10_000
MAX_SOURCES = 20  # fill descriptions kept on the queue
INSERT_BATCH = 1000


class AnnotationError(ValueError):
    """A refused annotation request; ``status`` is the HTTP status a router answers with."""

    status = 422
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueNotFound(AnnotationError):
    """No such queue (or item) in the project."""

    status = 404
    code = "not_found"


class QueueConflict(AnnotationError):
    """A taken name, a cap reached, or a concurrent change."""

    status = 409
    code = "conflict"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue to create."""

    name: str
    score_name: str
    labels: tuple[str, ...]
    annotators_per_item: int = 1
    description: str | None = None

    def check(self) -> None:
        """``AnnotationError`` with a clear message when the spec is not acceptable."""
        if not self.name.strip() or len(self.name) > 200:
            raise AnnotationError("name must be 1 to 200 characters")
        if not self.score_name.strip() or len(self.score_name) > 256:
            raise AnnotationError("score_name must be 1 to 256 characters")
        if not 2 <= len(self.labels) <= MAX_LABELS:
            raise AnnotationError(f"a queue has 2 to {MAX_LABELS} labels, not {len(self.labels)}")
        for label in self.labels:
            if not label.strip() or len(label) > MAX_LABEL_CHARS:
                raise AnnotationError(f"each label is 1 to {MAX_LABEL_CHARS} characters: {label[:80]!r}")
        repeated = sorted({x for x in self.labels if self.labels.count(x) > 1})
        if repeated:
            raise AnnotationError(f"labels must be distinct; repeated: {', '.join(repeated)}")
        if not 1 <= self.annotators_per_item <= MAX_ANNOTATORS:
            raise AnnotationError(f"annotators_per_item is 1 to {MAX_ANNOTATORS}")


@dataclass(frozen=True, slots=True)
class FillResult:
    """What a fill did: traces matched, added, skipped as already queued; the queue's size after."""

    matched: int
    added: int
    skipped: int
    items: int


def _queue_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["labels"] = list(out["labels"])
    return out


class AnnotationRepository:
    """Queues scoped to their project; labels become ground truth for quality metrics."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._traces = TraceQueries(engine)

    # --- queues ---------------------------------------------------------------------

    def create_queue(self, project_id: int, spec: QueueSpec, created_by: str | None = None) -> dict[str, Any]:
        """A new queue; ``QueueConflict`` when the name is taken or the project is at ``MAX_QUEUES``."""
        spec.check()
        q = annotation_queues.c
        try:
            with self._engine.begin() as conn:
                count = conn.execute(select(func.count()).where(q.project_id == project_id)).scalar_one()
                if count >= MAX_QUEUES:
                    raise QueueConflict(f"a project has at most {MAX_QUEUES} queues; delete one first")
                key = conn.execute(
                    insert(annotation_queues).values(
                        project_id=project_id,
                        name=spec.name,
                        description=spec.description,
                        score_name=spec.score_name,
                        labels=list(spec.labels),
                        source=[],
                        annotators_per_item=spec.annotators_per_item,
                        created_by=created_by,
                        created_at_unix_nano=now_ns(),
                    )
                ).inserted_primary_key
        except IntegrityError as exc:
            raise QueueConflict(f"a queue named {spec.name!r} already exists in this project") from exc
        assert key is not None
        return self.get_queue(project_id, int(key[0]))

    def _queue(self, conn: Connection, project_id: int, queue_id: int) -> dict[str, Any]:
        q = annotation_queues.c
        row = conn.execute(
            select(annotation_queues).where(q.project_id == project_id, q.id == queue_id)
        ).first()
        if row is None:
            raise QueueNotFound(f"no annotation queue {queue_id} in this project")
        return _queue_dict(row)

    def get_queue(self, project_id: int, queue_id: int, user_id: int | None = None) -> dict[str, Any]:
        """One queue with its progress; ``QueueNotFound`` when it is not the project's."""
        with self._engine.connect() as conn:
            queue = self._queue(conn, project_id, queue_id)
            self._add_progress(conn, [queue], user_id)
        return queue

    def list_queues(self, project_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
        """The project's queues (at most ``MAX_QUEUES``), newest first, with their progress."""
        q = annotation_queues.c
        query = (
            select(annotation_queues)
            .where(q.project_id == project_id)
            .order_by(q.created_at_unix_nano.desc(), q.id.desc())
            .limit(MAX_QUEUES)
        )
        with self._engine.connect() as conn:
            queues = [_queue_dict(r) for r in conn.execute(query)]
            self._add_progress(conn, queues, user_id)
        return queues

    def _add_progress(self, conn: Connection, queues: list[dict[str, Any]], user_id: int | None) -> None:
        """Items, labels, items with all their labels and (for a user) items still waiting for
        that user, for all the queues in one grouped query."""
        if not queues:
            return
        i, a, q = annotation_items.c, annotation_labels.c, annotation_queues.c
        ids = [queue["id"] for queue in queues]
        mine_expr = case((a.user_id == user_id, 1), else_=0) if user_id is not None else literal(0)
        per_item = (
            select(a.item_id, func.count().label("n"), func.sum(mine_expr).label("mine"))
            .where(a.queue_id.in_(ids))
            .group_by(a.item_id)
            .subquery()
        )
        n = func.coalesce(per_item.c.n, 0)
        needed = q.annotators_per_item
        open_for_me = and_(n < needed, func.coalesce(per_item.c.mine, 0) == 0)
        query = (
            select(
                i.queue_id,
                func.count().label("items"),
                func.sum(n).label("labels"),
                func.sum(case((n >= needed, 1), else_=0)).label("completed"),
                func.sum(case((open_for_me, 1), else_=0)).label("mine"),
            )
            .select_from(
                annotation_items.join(annotation_queues, q.id == i.queue_id).outerjoin(
                    per_item, per_item.c.item_id == i.id
                )
            )
            .where(i.queue_id.in_(ids))
            .group_by(i.queue_id)
        )
        found = {int(r.queue_id): r for r in conn.execute(query)}
        for queue in queues:
            r = found.get(queue["id"])
            queue["progress"] = {
                "items": int(r.items) if r else 0,
                "labels": int(r.labels or 0) if r else 0,
                "completed": int(r.completed or 0) if r else 0,
                "remaining_for_me": (int(r.mine or 0) if r else 0) if user_id is not None else None,
            }

    def delete_queue(self, project_id: int, queue_id: int) -> None:
        """Remove a queue, its items, labels and ground-truth scores."""
        with self._engine.begin() as conn:
            self._queue(conn, project_id, queue_id)
            prefix = f"annotation:{queue_id}:"
            conn.execute(
                delete(scores).where(
                    scores.c.project_id == project_id, scores.c.idempotency_key.startswith(prefix)
                )
            )
            conn.execute(delete(annotation_labels).where(annotation_labels.c.queue_id == queue_id))
            conn.execute(delete(annotation_items).where(annotation_items.c.queue_id == queue_id))
            conn.execute(delete(annotation_queues).where(annotation_queues.c.id == queue_id))

    # --- filling --------------------------------------------------------------------

    def fill_first(self, project_id: int, queue_id: int, f: TraceFilter, limit: int) -> FillResult:
        """Add the first ``limit`` matching traces not yet queued (newest first, as the trace list)."""
        limit = _check_fill_size(limit)
        t, i = traces.c, annotation_items.c
        queued = exists().where(i.queue_id == queue_id, i.trace_id == t.trace_id)
        query = (
            select(t.trace_id)
            .where(*self._traces.trace_conditions(project_id, f), ~queued)
            .order_by(t.start_time_unix_nano.desc(), t.trace_id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            self._queue(conn, project_id, queue_id)
            picked = list(conn.execute(query).scalars())
        source = {"kind": "filter", "filter": _filter_record(f), "limit": limit}
        return self._add_items(project_id, queue_id, picked, len(picked), source)

    def fill_sample(self, project_id: int, queue_id: int, f: TraceFilter, size: int, seed: int) -> FillResult:
        """Add a seeded random sample of ``size`` matching traces (the filter holds the time range).

        The population is every matching trace ordered by id, so the same seed over the same
        traces picks the same ones; those already queued are skipped, not replaced.
        """
        size = _check_fill_size(size)
        if f.start_from_ns is None or f.start_to_ns is None:
            raise AnnotationError("a sample needs a time range (since and until), so it can be reproduced")
        t = traces.c
        query = (
            select(t.trace_id)
            .where(*self._traces.trace_conditions(project_id, f))
            .order_by(t.trace_id)
            .limit(MAX_POPULATION + 1)
        )
        with self._engine.connect() as conn:
            self._queue(conn, project_id, queue_id)
            population = list(conn.execute(query).scalars())
        if len(population) > MAX_POPULATION:
            raise AnnotationError(
                f"more than {MAX_POPULATION} traces match; narrow the time range or the filter to sample"
            )
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(population), size=min(size, len(population)), replace=False)
        picked = [population[int(k)] for k in chosen]
        source = {"kind": "sample", "filter": _filter_record(f), "sample": size, "seed": seed}
        return self._add_items(project_id, queue_id, picked, len(picked), source)

    def _add_items(
        self, project_id: int, queue_id: int, picked: list[str], matched: int, source: dict[str, Any]
    ) -> FillResult:
        i, q = annotation_items.c, annotation_queues.c
        try:
            with self._engine.begin() as conn:
                queue = self._queue(conn, project_id, queue_id)
                existing = (
                    set(
                        conn.execute(
                            select(i.trace_id).where(i.queue_id == queue_id, i.trace_id.in_(picked))
                        ).scalars()
                    )
                    if len(picked) <= INSERT_BATCH
                    else self._queued_among(conn, queue_id, picked)
                )
                new = [tid for tid in dict.fromkeys(picked) if tid not in existing]
                stats = conn.execute(
                    select(func.count(), func.max(i.position)).where(i.queue_id == queue_id)
                ).one()
                size, top = int(stats[0]), stats[1]
                if size + len(new) > MAX_ITEMS:
                    raise QueueConflict(
                        f"a queue holds at most {MAX_ITEMS} items; it has {size}, this fill adds {len(new)}"
                    )
                start = (int(top) + 1) if top is not None else 0
                now = now_ns()
                rows = [
                    {
                        "queue_id": queue_id,
                        "project_id": project_id,
                        "trace_id": tid,
                        "span_id": None,
                        "position": start + k,
                        "created_at_unix_nano": now,
                    }
                    for k, tid in enumerate(new)
                ]
                for k in range(0, len(rows), INSERT_BATCH):
                    conn.execute(insert(annotation_items), rows[k : k + INSERT_BATCH])
                history = [*list(queue["source"] or []), {**source, "added": len(new), "at_unix_nano": now}]
                conn.execute(
                    update(annotation_queues).where(q.id == queue_id).values(source=history[-MAX_SOURCES:])
                )
        except IntegrityError as exc:
            raise QueueConflict("the queue was filled concurrently; retry the fill") from exc
        return FillResult(matched, len(new), len(picked) - len(new), size + len(new))

    @staticmethod
    def _queued_among(conn: Connection, queue_id: int, picked: list[str]) -> set[str]:
        i = annotation_items.c
        found: set[str] = set()
        for k in range(0, len(picked), INSERT_BATCH):
            chunk = picked[k : k + INSERT_BATCH]
            found.update(
                conn.execute(
                    select(i.trace_id).where(i.queue_id == queue_id, i.trace_id.in_(chunk))
                ).scalars()
            )
        return found

    # --- items and labels -----------------------------------------------------------

    def list_items(
        self, project_id: int, queue_id: int, limit: int = 100, cursor: str | None = None
    ) -> Page[dict[str, Any]]:
        """Items by position, each with its labels, agreed label and status."""
        i = annotation_items.c
        with self._engine.connect() as conn:
            queue = self._queue(conn, project_id, queue_id)
            query = select(annotation_items).where(i.queue_id == queue_id)
            if cursor is not None:
                (position, item_id) = decode_cursor(cursor, (int, int))
                query = query.where(or_(i.position > position, and_(i.position == position, i.id > item_id)))
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(i.position, i.id).limit(limit + 1))]
            more = len(rows) > limit
            rows = rows[:limit]
            _attach_labels(conn, queue, rows)
        next_cursor = encode_cursor(rows[-1]["position"], rows[-1]["id"]) if more and rows else None
        return Page(rows, next_cursor)

    def next_item(
        self, project_id: int, queue_id: int, user_id: int, after_position: int | None = None
    ) -> dict[str, Any] | None:
        """The first item (by position, after ``after_position`` when given: a skip) that the
        user has not labelled and that still needs labels; None when there is none."""
        i = annotation_items.c
        with self._engine.connect() as conn:
            queue = self._queue(conn, project_id, queue_id)
            query = select(annotation_items).where(*_open_for(queue, user_id))
            if after_position is not None:
                query = query.where(i.position > after_position)
            row = conn.execute(query.order_by(i.position, i.id).limit(1)).first()
            if row is None:
                return None
            items = [dict(row._mapping)]
            _attach_labels(conn, queue, items)
        return items[0]

    def label(
        self,
        project_id: int,
        queue_id: int,
        item_id: int,
        user_id: int,
        label: str,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Record (or replace) the user's label of an item; the item's state after it.

        The item's ground-truth score is recomputed in the same transaction.
        """
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise AnnotationError(f"a comment is at most {MAX_COMMENT_CHARS} characters")
        for attempt in (1, 2):
            try:
                return self._label_once(project_id, queue_id, item_id, user_id, label, comment)
            except IntegrityError as exc:  # a concurrent first label of the same item or user
                if attempt == 2:
                    raise QueueConflict("the item changed concurrently; retry") from exc
        raise AssertionError("unreachable")

    def _label_once(
        self, project_id: int, queue_id: int, item_id: int, user_id: int, label: str, comment: str | None
    ) -> dict[str, Any]:
        a, i = annotation_labels.c, annotation_items.c
        with self._engine.begin() as conn:
            queue = self._queue(conn, project_id, queue_id)
            if label not in queue["labels"]:
                raise AnnotationError(
                    f"unknown label {label[:80]!r}; this queue's labels are {', '.join(queue['labels'])}"
                )
            row = conn.execute(
                select(annotation_items).where(i.queue_id == queue_id, i.id == item_id)
            ).first()
            if row is None:
                raise QueueNotFound(f"no item {item_id} in annotation queue {queue_id}")
            item = dict(row._mapping)
            now = now_ns()
            changed = conn.execute(
                update(annotation_labels)
                .where(a.item_id == item_id, a.user_id == user_id)
                .values(label=label, comment=comment, updated_at_unix_nano=now)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(annotation_labels).values(
                        item_id=item_id,
                        queue_id=queue_id,
                        project_id=project_id,
                        user_id=user_id,
                        label=label,
                        comment=comment,
                        created_at_unix_nano=now,
                        updated_at_unix_nano=now,
                    )
                )
            labels = list(conn.execute(select(a.label).where(a.item_id == item_id)).scalars())
            write_ground_truth(conn, project_id=project_id, queue=queue, item=item, labels=labels)
            _attach_labels(conn, queue, [item])
        return item

    def labels_by_item(
        self, project_id: int, queue_id: int
    ) -> tuple[dict[str, Any], list[dict[int, str]], dict[int, str]]:
        """The queue, each labelled item's labels by user id (in position order), and user names.

        Bounded by the queue's size cap times its annotators.
        """
        a, i = annotation_labels.c, annotation_items.c
        with self._engine.connect() as conn:
            queue = self._queue(conn, project_id, queue_id)
            query = (
                select(a.item_id, a.user_id, a.label, users.c.display_name, users.c.email)
                .select_from(
                    annotation_labels.join(annotation_items, i.id == a.item_id).outerjoin(
                        users, users.c.id == a.user_id
                    )
                )
                .where(a.queue_id == queue_id, a.project_id == project_id)
                .order_by(i.position, a.item_id, a.user_id)
            )
            by_item: dict[int, dict[int, str]] = defaultdict(dict)
            names: dict[int, str] = {}
            for r in conn.execute(query):
                by_item[int(r.item_id)][int(r.user_id)] = r.label
                names[int(r.user_id)] = r.display_name or r.email or str(r.user_id)
        return queue, list(by_item.values()), names


def _open_for(queue: dict[str, Any], user_id: int) -> list[Any]:
    """Conditions of the queue's items the user has not labelled and that still need labels."""
    i, a = annotation_items.c, annotation_labels.c
    labelled = exists().where(a.item_id == i.id, a.user_id == user_id)
    count = select(func.count()).where(a.item_id == i.id).scalar_subquery()
    return [i.queue_id == queue["id"], ~labelled, count < queue["annotators_per_item"]]


def _attach_labels(conn: Connection, queue: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Each item's labels (with their authors), agreed label and status: open, agreed or tied."""
    if not items:
        return
    a = annotation_labels.c
    query = (
        select(a.item_id, a.user_id, a.label, a.comment, a.updated_at_unix_nano, users.c.display_name)
        .select_from(annotation_labels.outerjoin(users, users.c.id == a.user_id))
        .where(a.item_id.in_([item["id"] for item in items]))
        .order_by(a.item_id, a.updated_at_unix_nano, a.id)
    )
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(query):
        found[int(r.item_id)].append(
            {
                "user_id": int(r.user_id),
                "user_name": r.display_name,
                "label": r.label,
                "comment": r.comment,
                "updated_at_unix_nano": int(r.updated_at_unix_nano),
            }
        )
    needed = queue["annotators_per_item"]
    for item in items:
        labels = found.get(item["id"], [])
        item["labels"] = labels
        item["ground_truth"] = agreed_label([x["label"] for x in labels], needed)
        if len(labels) < needed:
            item["status"] = "open"
        else:
            item["status"] = "agreed" if item["ground_truth"] is not None else "tied"


def _check_fill_size(n: int) -> int:
    if not 1 <= n <= MAX_FILL:
        raise AnnotationError(f"a fill adds 1 to {MAX_FILL} traces, not {n}")
    return n


def _filter_record(f: TraceFilter) -> dict[str, Any]:
    """The filter as JSON for the queue's fill history (set fields only)."""
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(f).items()
        if v not in (None, ())
    }
