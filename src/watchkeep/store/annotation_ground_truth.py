"""An annotation item's agreed label, written as the ground truth of a categorical score.

The quality metrics read categorical scores that carry both a prediction (``string_value``)
and a ground truth (``label``). An item's annotators agree when, once it has its
``annotators_per_item`` labels, one label holds a strict majority of all its labels; a tie
gives no ground truth. The agreed label is kept in ONE score row per (queue, item), found
again by its idempotency key, so re-labelling updates it instead of adding rows. Its
prediction is the latest non-annotation score of the queue's score name on the trace;
without one the row has no ``string_value`` and quality ignores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from watchkeep.semconv import ScoreDataType
from watchkeep.store.clock import now_ns
from watchkeep.store.tables import scores

ANNOTATION_SOURCE = "annotation"


def agreed_label(labels: Sequence[str], needed: int) -> str | None:
    """The majority label once ``needed`` labels are in; None before that and on a tie."""
    if len(labels) < needed or not labels:
        return None
    ranked = Counter(labels).most_common(2)
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def ground_truth_key(queue_id: int, item_id: int) -> str:
    """The idempotency key of an item's ground-truth score."""
    return f"annotation:{queue_id}:{item_id}"


def _prediction(conn: Connection, project_id: int, trace_id: str, name: str) -> str | None:
    c = scores.c
    query = (
        select(c.string_value)
        .where(
            c.project_id == project_id,
            c.trace_id == trace_id,
            c.name == name,
            c.source != ANNOTATION_SOURCE,
            c.data_type == ScoreDataType.CATEGORICAL.value,
            c.string_value.is_not(None),
        )
        .order_by(c.created_at_unix_nano.desc(), c.id.desc())
        .limit(1)
    )
    value: str | None = conn.execute(query).scalar()
    return value


def write_ground_truth(
    conn: Connection,
    *,
    project_id: int,
    queue: dict[str, Any],
    item: dict[str, Any],
    labels: Sequence[str],
) -> str | None:
    """Upsert (or remove, when there is no agreement) the item's ground-truth score; the agreed label."""
    key = ground_truth_key(queue["id"], item["id"])
    where = (scores.c.project_id == project_id, scores.c.idempotency_key == key)
    agreed = agreed_label(labels, queue["annotators_per_item"])
    if agreed is None:
        conn.execute(delete(scores).where(*where))
        return None
    values = {
        "name": queue["score_name"],
        "data_type": ScoreDataType.CATEGORICAL.value,
        "value": None,
        "string_value": _prediction(conn, project_id, item["trace_id"], queue["score_name"]),
        "label": agreed,
        "metadata": {
            "queue_id": queue["id"],
            "item_id": item["id"],
            "annotators": len(labels),
            "agreeing": Counter(labels)[agreed],
        },
        "created_at_unix_nano": now_ns(),
    }
    if conn.execute(update(scores).where(*where).values(**values)).rowcount:
        return agreed
    conn.execute(
        insert(scores).values(
            project_id=project_id,
            trace_id=item["trace_id"],
            span_id=item["span_id"],
            source=ANNOTATION_SOURCE,
            comment=None,
            idempotency_key=key,
            **values,
        )
    )
    return agreed
