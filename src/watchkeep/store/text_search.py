"""Full-text search of prompts and responses, indexed off the ingest path.

Ingest writes spans and payloads only; an FTS insert (or a GIN-indexed tsvector) on that
path would cost every span. Instead ``SearchIndexer`` tails ``spans.id`` past a high-water
mark kept in ``search_index_state`` and indexes the payload text of new spans in batches,
on its own thread in every server process (rows are read and parsed outside the write
transaction, which moves the mark only if no other process moved it meanwhile),
so search is eventually consistent: a span is found a second or two after its commit,
longer while ingest runs flat out (each pass is bounded, the backlog is worked off later).

SQLite: an FTS5 table ``search_fts`` (rowid = span row id, ``project_id`` kept beside the
text). PostgreSQL: ``search_documents`` with a ``tsvector`` of the text's distinct words
under a GIN index. Both cut text at what is not a letter or digit, with no stemming, so
the two databases agree. The words are cut and lowercased here (``lexemes``), for
documents and queries alike, and each document is indexed as its distinct words: on
PostgreSQL without positions (no query uses them; ``to_tsvector`` in the insert cost
about 90 of its 120 µs of database CPU a span, docs/operations.md "Search indexing"); on
SQLite FTS5 keeps the text it indexes as the table's content, so the distinct words
instead of the whole text cut that copy and the index by a fifth to two fifths (ADR 0030,
session 36). User input is never parsed as query syntax: it is cut into words, each quoted
(SQLite: an FTS5 string, PostgreSQL: a ``tsquery`` lexeme), and every word must match.

The mark moves as ``store.index_marks`` says (over contiguous ids on PostgreSQL, whose
ids do not commit in order), shared with the traces' user and session lookups.

GenAI instrumentations may send the messages of an LLM span as log records
(``/v1/logs``), which fill its payload row after the span. An LLM span indexed with a
side missing is kept in memory (bounded, ``LATE_PAYLOAD_NS``) by the process that indexed
it and indexed again once both sides are there, or when that time is up.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Boolean

from watchkeep.periodic import IngestYield
from watchkeep.store import index_gaps
from watchkeep.store.clock import now_ns
from watchkeep.store.engine import is_sqlite
from watchkeep.store.index_marks import (
    MarkPass,
    live_projects,
    lock_mark,
    move_mark,
    passable,
    read_mark,
)
from watchkeep.store.sealing import Sealer, open_text, row_aad

log = logging.getLogger(__name__)

STATE_NAME = "payload_text"
LATE_PAYLOAD_NS = 120_000_000_000
MAX_LATE = 100_000  # spans awaiting their messages, per process
MAX_FIELD_CHARS = 100_000  # of each payload side; PostgreSQL refuses tsvectors over 1 MB
MAX_MESSAGE_CHARS = 2000  # of each message (WATCHKEEP_SEARCH_INDEX_MAX_CHARS)
MAX_QUERY_WORDS = 16
MAX_LEXEME_BYTES = 2047  # PostgreSQL's limit on one lexeme (MAXSTRLEN)
SEARCH_INDEX_TABLES = ("search_fts", "search_documents")
_SKIPPED_KEYS = frozenset({"role", "type", "id", "tool_call_id", "finish_reason", "index"})
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# ASCII letters and digits as themselves (upper case lowered), every other byte a space: ``_WORD`` on ASCII.
_ASCII_WORD_BYTES = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256)).lower()
# ASCII characters that are not letters or digits as spaces; other bytes (UTF-8) as they are.
_ASCII_SEPARATORS = bytes(c if c >= 128 or chr(c).isalnum() else 32 for c in range(256))


def default_budget(sqlite: bool) -> float:
    """The share of each second the indexer works while behind, by default."""
    return 0.1 if sqlite else 0.25


def not_search_index(name: str | None, type_: str, _parents: Any) -> bool:
    """Schema comparison filter: the index tables are raw DDL (FTS5 and its shadow tables)."""
    return not (type_ == "table" and name is not None and name.startswith(SEARCH_INDEX_TABLES))


def query_words(q: str) -> list[str]:
    """The words of a user's query (letters and digits only), at most ``MAX_QUERY_WORDS``."""
    return _WORD.findall(q)[:MAX_QUERY_WORDS]


def lexemes(body: str) -> str:
    """The distinct lowercased words of ``body`` (letters and digits only, so never a quote,
    backslash or space), space-separated: PostgreSQL's lexemes of it. Words over its 2 KB
    lexeme limit are left out, as ``to_tsvector`` leaves them."""
    # Byte tables and splits in C rather than a regular expression over the whole text:
    # ASCII text in one pass (a tenth of the expression's cost); other text (a fifth less
    # than the expression on English prose, session 36) is cut at ASCII punctuation
    # first, the pieces of ASCII letters and digits kept as they are, and only the pieces
    # with a non-ASCII character in them cut by the Unicode rule (``_WORD``). Lengths are
    # checked in C too (``max(map(len, ...))``): long words are rare.
    if body.isascii():
        words = set(body.encode().translate(_ASCII_WORD_BYTES).split())
    else:
        # (A lone surrogate travels as bytes and separates words, as it does for ``_WORD``.)
        pieces = set(body.lower().encode(errors="surrogatepass").translate(_ASCII_SEPARATORS).split())
        words = set(filter(bytes.isalnum, pieces))
        rest = pieces - words
        if rest:
            found = _WORD.findall(b" ".join(rest).decode(errors="surrogatepass"))
            words.update(w.encode() for w in found)
    if max(map(len, words), default=0) >= MAX_LEXEME_BYTES:
        words = {w for w in words if len(w) < MAX_LEXEME_BYTES}
    return b" ".join(words).decode()


def payload_text(raw: str | None, max_chars: int = MAX_FIELD_CHARS) -> str:
    """The human text of a stored payload: string leaves of its JSON (not roles or ids),
    each cut to ``max_chars`` (a payload that is not JSON is one message). A leaf that is
    itself JSON is walked too: OpenTelemetry GenAI attributes hold messages as JSON
    strings, whose roles and types would otherwise match every span."""
    if not raw:
        return ""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[: min(max_chars, MAX_FIELD_CHARS)]
    out: list[str] = []
    stack: list[Any] = [value]
    size = 0
    while stack and size < MAX_FIELD_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            if item[:1] in ("[", "{") and (nested := _json(item)) is not None:
                stack.append(nested)
                continue
            out.append(item[:max_chars])
            size += len(out[-1]) + 1
        elif isinstance(item, dict):
            stack.extend(v for k, v in reversed(item.items()) if k not in _SKIPPED_KEYS)
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return "\n".join(out)[:MAX_FIELD_CHARS]


def _json(raw: str) -> list[Any] | dict[str, Any] | None:
    """``raw`` parsed when it is a JSON array or object, else None."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, list | dict) else None


class SpanTextMatch(ColumnElement[bool]):
    """``span_id IN (ids of the project's spans whose payload text has every word)``."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, span_row_id: ColumnElement[Any], project_id: int, words: list[str]) -> None:
        self.span_row_id = span_row_id
        self.project_id = int(project_id)
        self.words = words


@compiles(SpanTextMatch, "sqlite")
def _match_sqlite(element: SpanTextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    # The words as the documents' were cut (``lexemes``), each an FTS5 string: unicode61
    # folds case and diacritics on both sides alike.
    words = sorted(lexemes(" ".join(element.words)).split())
    if not words:  # no word under the lexeme limit (q is capped at 256 characters: defence only)
        return "1 = 0"
    quoted = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    column = compiler.process(element.span_row_id, **kw)
    match = compiler.process(bindparam("fts_q", quoted, unique=True), **kw)
    return (
        f"{column} IN (SELECT rowid FROM search_fts WHERE search_fts MATCH {match} "
        f"AND project_id = {element.project_id})"
    )


@compiles(SpanTextMatch, "postgresql")
def _match_postgres(element: SpanTextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.span_row_id, **kw)
    # Quoted lexemes, taken as they are: the documents' words were cut by ``lexemes`` too.
    query = " & ".join(f"'{w}'" for w in sorted(lexemes(" ".join(element.words)).split()))
    if not query:  # no word under the lexeme limit (q is capped at 256 characters: defence only)
        return "1 = 0"
    words = compiler.process(bindparam("fts_q", query, unique=True), **kw)
    return (
        f"{column} IN (SELECT span_row_id FROM search_documents WHERE project_id = "
        f"{element.project_id} AND document @@ CAST({words} AS tsquery))"
    )


# Spans past the mark, then their payloads by a range bounded on both sides: as one join
# with ORDER BY ... LIMIT, PostgreSQL planned a scan of every span past the mark and of
# every payload (a merge join from the table's start, or a hash join over all of it),
# a cost that grew with the backlog and the store (docs/operations.md "Search indexing").
_PENDING = text(
    "SELECT id, project_id, ingested_at_unix_nano, operation FROM spans WHERE id > :mark ORDER BY id LIMIT :n"
)
_PAYLOADS = text(
    "SELECT span_row_id, input, output FROM span_payloads WHERE span_row_id > :mark AND span_row_id <= :upto"
)
# Spans by id with their payloads (PostgreSQL: those committed into a jumped gap).
_BY_ID = text(
    "SELECT s.id, s.project_id, s.operation, p.input, p.output FROM spans s "
    "LEFT JOIN span_payloads p ON p.span_row_id = s.id WHERE s.id = ANY(CAST(:ids AS bigint[]))"
)


@dataclass(frozen=True, slots=True)
class IndexLag:
    """How far the index trails ingest: span ids past the mark (gaps in PostgreSQL's ids
    count too), and the age of the oldest span not indexed yet (0 when none)."""

    spans: int
    seconds: float


class SearchIndexer(MarkPass):
    """Indexes the payload text of new spans in bounded batches, on a thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int | None = None,
        interval: float = 1.0,
        budget: float | None = None,
        max_chars: int = MAX_MESSAGE_CHARS,
        sealer: Sealer | None = None,
        ingest_busy: Callable[[], float] | None = None,
    ) -> None:
        super().__init__("watchkeep-search-index")
        self._engine = engine
        # The ingest writer's busy seconds so far (``GroupCommitWriter.busy_seconds``): while
        # it writes without pause, indexing would only slow it (CPU, and SQLite's write lock).
        self._ingest_busy = ingest_busy
        # Opens encrypted payloads: the index then holds their words (the operator's choice, ADR 0019).
        self._sealer = sealer
        self._sqlite = is_sqlite(engine.url.drivername)
        # SQLite's write lock is ingest's too: small batches hold it briefly (~50 ms).
        self._batch = batch or (500 if self._sqlite else 2000)
        self._interval = interval
        # Work per pass while behind (WATCHKEEP_SEARCH_INDEX_BUDGET): on SQLite it holds
        # ingest's write lock, so by default a tenth of each second (about 2,000 spans/s);
        # PostgreSQL only shares CPU. docs/operations.md "Search indexing" has the trade-off.
        self._budget = budget if budget is not None else default_budget(self._sqlite)
        self._max_chars = max_chars
        self._lag: tuple[float, IndexLag] | None = None  # (measured at, monotonic), for scrapes
        self._late: deque[tuple[int, int]] = deque(maxlen=MAX_LATE)  # (span row id, given up at)

    def catch_up(self, timeout: float = 10.0) -> int:
        """Index until no span is left past the mark, then the spans whose messages were
        missing (``MarkPass.catch_up``); the spans passed."""
        total = super().catch_up(timeout)
        self.index_late()
        return total

    def lag(self, max_age: float = 1.0) -> IndexLag:
        """How far the index trails (three indexed look-ups), measured at most every ``max_age`` s."""
        cached = self._lag
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        with self._engine.connect() as conn:
            mark = read_mark(conn, STATE_NAME)
            newest = conn.execute(text("SELECT max(id) FROM spans")).scalar()
            oldest = conn.execute(
                text("SELECT ingested_at_unix_nano FROM spans WHERE id > :m ORDER BY id LIMIT 1"), {"m": mark}
            ).scalar()
        lag = IndexLag(
            max(0, int(newest or 0) - int(mark)),
            0.0 if oldest is None else max(0.0, (now_ns() - int(oldest)) / 1e9),
        )
        self._lag = (time.monotonic(), lag)
        return lag

    def behind(self) -> bool:
        """Whether a span is past the mark."""
        with self._engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT 1 FROM spans WHERE id > (SELECT position FROM search_index_state "
                        "WHERE name = :n) LIMIT 1"
                    ),
                    {"n": STATE_NAME},
                ).first()
            )

    def index_batch(self) -> int:
        """Index up to ``batch`` spans past the mark; the spans passed.

        Rows are read and their text extracted outside the write transaction, which then
        only inserts and moves the mark if no other process moved it meanwhile: on SQLite
        the database's write lock, which ingest needs too, is held for the inserts alone.
        On PostgreSQL the spans committed into gaps it jumped before are read there too
        (``index_gaps``).
        """
        with self._engine.connect() as conn:
            mark = read_mark(conn, STATE_NAME)
            accepted, jumped = passable(
                conn,
                conn.execute(_PENDING, {"mark": mark, "n": self._batch}),
                mark,
                now_ns() - self.gap_wait_ns,
                self._sqlite,
            )
            if not accepted and (self._sqlite or not index_gaps.has_late(conn, STATE_NAME)):
                return 0
            payloads = (
                {
                    int(r.span_row_id): (r.input, r.output)
                    for r in conn.execute(_PAYLOADS, {"mark": mark, "upto": int(accepted[-1].id)})
                }
                if accepted
                else {}  # a pass for late spans alone (PostgreSQL): they are read with theirs
            )
        rows = [(r, *payloads.get(int(r.id), (None, None))) for r in accepted]
        docs = self._documents(rows)  # before the write lock (SQLite's is ingest's too)
        with self._engine.begin() as conn:
            if lock_mark(conn, STATE_NAME, self._sqlite) != mark:
                return 0  # another process indexed these meanwhile
            if not self._sqlite:  # spans committed into the gaps jumped before (``index_gaps``)
                index_gaps.record(conn, STATE_NAME, jumped, now_ns())
                late = index_gaps.take_late(conn, STATE_NAME, now_ns())
                found = [(r, r.input, r.output) for r in conn.execute(_BY_ID, {"ids": late})] if late else []
                rows += found
                docs += self._documents(found)
            live = live_projects(conn, {p for _, p, _ in docs}, self._sqlite)
            self._insert(conn, [d for d in docs if d[1] in live])
            if accepted:
                move_mark(conn, STATE_NAME, int(accepted[-1].id))
        until = now_ns() + LATE_PAYLOAD_NS
        self._late.extend(
            (int(r.id), until)
            for r, raw_in, raw_out in rows
            if r.operation is not None and (raw_in is None or raw_out is None)
        )
        return len(rows)

    def _documents(self, rows: list[tuple[Any, str | None, str | None]]) -> list[tuple[int, int, str]]:
        """(span row id, project, lexemes) of the spans ``rows`` (span, input, output) that
        have text: built before a write transaction, so SQLite's lock is held for the
        inserts alone."""
        return [
            (int(r.id), int(r.project_id), lexemes(body))
            for r, raw_in, raw_out in rows
            if (body := self._document(int(r.project_id), raw_in, raw_out))
        ]

    def _document(self, project_id: int, raw_input: str | None, raw_output: str | None) -> str:
        """The text of a span's payloads (opened when they are encrypted)."""
        if self._sealer is None:
            return _document(raw_input, raw_output, self._max_chars)
        return _document(
            open_text(self._sealer, raw_input, row_aad("span_payloads", "input", project_id)),
            open_text(self._sealer, raw_output, row_aad("span_payloads", "output", project_id)),
            self._max_chars,
        )

    def index_late(self, limit: int = 2000) -> int:
        """Index again the LLM spans whose messages were missing; the spans done with."""
        if not self._late:
            return 0
        now = now_ns()
        waiting = dict(self._late.popleft() for _ in range(min(limit, len(self._late))))
        done: set[int] = set()
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT s.id, s.project_id, p.input, p.output FROM spans s "
                        "JOIN span_payloads p ON p.span_row_id = s.id "
                        f"WHERE s.id IN ({', '.join(str(i) for i in sorted(waiting))})"
                    )
                ).all()
            ready = [r for r in rows if (r.input is not None and r.output is not None) or waiting[r.id] < now]
            docs = self._documents([(r, r.input, r.output) for r in ready])
            if docs:
                with self._engine.begin() as conn:
                    if self._sqlite:
                        lock_mark(conn, STATE_NAME, True)  # the write lock first, as in index_batch
                    live = live_projects(conn, {p for _, p, _ in docs}, self._sqlite)
                    self._insert(conn, [d for d in docs if d[1] in live])
            done = {int(r.id) for r in ready} | {i for i, until in waiting.items() if until < now}
        finally:
            self._late.extend((i, until) for i, until in waiting.items() if i not in done)
        return len(done)

    def _insert(self, conn: Connection, docs: list[tuple[int, int, str]]) -> None:
        """Index ``docs`` (span row id, project, lexemes), replacing what a span had."""
        if not docs:
            return
        if self._sqlite:
            conn.exec_driver_sql(
                "INSERT OR REPLACE INTO search_fts (rowid, project_id, body) VALUES (?, ?, ?)", docs
            )
        else:
            # One statement over arrays: a round trip per row cost more than the indexing.
            # Each document's lexemes travel space-separated (no lexeme holds a space).
            conn.exec_driver_sql(
                "INSERT INTO search_documents (span_row_id, project_id, document) "
                "SELECT i, p, array_to_tsvector(string_to_array(b, ' ')) "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS d(i, p, b) "
                "ON CONFLICT (span_row_id) DO UPDATE SET document = EXCLUDED.document",
                ([i for i, _, _ in docs], [p for _, p, _ in docs], [b for _, _, b in docs]),
            )

    def _run(self) -> None:
        pressure = IngestYield(self._ingest_busy)
        while not self._stop.wait(self._interval):
            if not pressure.run_pass():
                continue
            deadline = time.monotonic() + self._budget
            try:
                while self.index_batch() == self._batch and time.monotonic() < deadline:
                    pass
                self.index_late()
            except Exception:
                log.exception("search indexing failed; retrying next pass")


def _document(raw_input: str | None, raw_output: str | None, max_chars: int) -> str:
    return "\n".join(
        t for t in (payload_text(raw_input, max_chars), payload_text(raw_output, max_chars)) if t
    )


def purge_project(engine: Engine, project_id: int, batch: int = 20_000) -> int:
    """Delete a deleted project's index rows (before its spans, whose ids find them on SQLite)."""
    sqlite = is_sqlite(engine.url.drivername)
    if sqlite:
        statement = text(
            "DELETE FROM search_fts WHERE rowid IN (SELECT id FROM spans WHERE project_id = :p "
            "AND id > :after ORDER BY id LIMIT :n)"
        )
        last_id = text(
            "SELECT max(id) FROM (SELECT id FROM spans WHERE project_id = :p AND id > :after ORDER BY id LIMIT :n)"
        )
    else:
        statement = text(
            "DELETE FROM search_documents WHERE span_row_id IN (SELECT span_row_id FROM search_documents "
            "WHERE project_id = :p LIMIT :n)"
        )
    total, after = 0, 0
    while True:
        with engine.begin() as conn:
            params = {"p": project_id, "n": batch, "after": after}
            if sqlite:
                upto = conn.execute(last_id, params).scalar()
            removed = max(0, conn.execute(statement, params).rowcount)
        total += removed
        if sqlite:
            if upto is None:
                return total
            after = int(upto)
        elif removed < batch:
            return total
