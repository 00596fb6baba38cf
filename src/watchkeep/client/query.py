"""``Client`` and ``AsyncClient``: the query API over httpx, answers as typed dataclasses.

Both share the request building and answer parsing below; they differ only in how a
request is sent. List methods return one ``Page``; ``iter_*`` methods follow
``next_cursor`` lazily, one page in memory at a time (keyset cursors stay stable while
new data arrives, so a walk neither repeats nor skips an item).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, NoReturn, TypedDict, TypeVar, Unpack

import httpx
import orjson

from watchkeep.client.errors import IncompleteExport, TransportError, error_for
from watchkeep.client.evals import AsyncEvalMethods, EvalMethods
from watchkeep.client.evals import Call as _Call
from watchkeep.client.models import Metrics, Page, QualityReport, Score, Span, TraceDetail, TraceSummary

T = TypeVar("T")
Params = list[tuple[str, str]]
Time = datetime | str
DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_TIMEOUT = 30.0
MAX_PAGE = {"/api/v1/traces": 500, "/api/v1/spans": 1000, "/api/v1/scores": 1000}


def _time(value: Time) -> str:
    """An aware datetime (or an ISO string, passed as is) for a query parameter."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("timestamps need a time zone, e.g. datetime.now(UTC)")
    return value.isoformat()


class TraceFilterArgs(TypedDict, total=False):
    """The trace and span list filters as keyword arguments (see ``TraceFilter``)."""

    start_from: Time | None
    start_to: Time | None
    model: str | None
    provider: str | None
    operation: str | None
    user_id: str | None
    session_id: str | None
    environment: str | None
    release: str | None
    status: Literal["ok", "error"] | None
    name: str | None
    trace_id: str | None
    tags: Sequence[str] | None
    q: str | None
    metadata: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """What ``/api/v1/traces`` and ``/api/v1/spans`` narrow by (all optional, ANDed).

    ``start_to`` is exclusive; ``name`` is a case-insensitive substring; ``tags`` are sent
    as repeated ``tag`` parameters (every tag must be present); ``q`` searches prompt and
    response text (all words); ``metadata`` keys must equal their values (as text), sent as
    repeated ``metadata=key:value``.
    """

    start_from: Time | None = None
    start_to: Time | None = None
    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    environment: str | None = None
    release: str | None = None
    status: Literal["ok", "error"] | None = None
    name: str | None = None
    trace_id: str | None = None
    tags: Sequence[str] | None = None
    q: str | None = None
    metadata: Mapping[str, str] | None = None

    def params(self) -> Params:
        """The query parameters, as the API names them."""
        out: Params = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "tags":
                out.extend(("tag", str(tag)) for tag in value)
            elif f.name == "metadata":
                out.extend(("metadata", f"{k}:{v}") for k, v in value.items())
            elif f.name in ("start_from", "start_to"):
                out.append((f.name, _time(value)))
            else:
                out.append((f.name, str(value)))
        return out


def _optional(**values: Any) -> Params:
    """Query parameters from keyword arguments, times formatted, Nones dropped."""
    return [
        (key.rstrip("_"), _time(v) if isinstance(v, datetime) else str(v))
        for key, v in values.items()
        if v is not None
    ]


class ScoreFilterArgs(TypedDict, total=False):
    """The score list filters as keyword arguments (``created_to`` is exclusive)."""

    name: str | None
    trace_id: str | None
    source: str | None
    created_from: Time | None
    created_to: Time | None


class MetricsArgs(TypedDict, total=False):
    """``metrics`` keywords: the window, the series, and what narrows the calls."""

    start: Time | None
    end: Time | None
    bucket_seconds: int | None
    metrics: Sequence[str] | None
    tags: Sequence[str] | None
    model: str | None
    model_version: str | None
    prompt_version: str | None
    route: str | None
    environment: str | None
    release: str | None
    provider: str | None


class QualityArgs(TypedDict, total=False):
    """``quality`` keywords besides the score name."""

    start: Time | None
    end: Time | None
    model: str | None
    confidence: float | None


class HttpOptions(TypedDict, total=False):
    """Passed to ``httpx.Client``: ``timeout`` (seconds, default 30) and ``transport``."""

    timeout: float
    transport: httpx.BaseTransport


class AsyncHttpOptions(TypedDict, total=False):
    """Passed to ``httpx.AsyncClient``: ``timeout`` (seconds, default 30) and ``transport``."""

    timeout: float
    transport: httpx.AsyncBaseTransport


def _page_parser(item: Callable[[dict[str, Any]], T]) -> Callable[[Any], Page[T]]:
    def parse(data: Any) -> Page[T]:
        return Page(tuple(item(i) for i in data["items"]), data.get("next_cursor"))

    return parse


_TRACES = _page_parser(TraceSummary.from_json)
_SPANS = _page_parser(Span.from_json)
_SCORES = _page_parser(Score.from_json)


def _list_call(
    path: str, params: Params, parse: Callable[[Any], Page[T]], limit: int, cursor: str | None
) -> _Call[Page[T]]:
    if not 1 <= limit <= MAX_PAGE[path]:
        raise ValueError(f"limit must be 1 to {MAX_PAGE[path]}")
    tail = [("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
    return _Call(path, params + tail, parse)


def _settings(
    base_url: str | None, api_key: str | None, options: HttpOptions | AsyncHttpOptions
) -> tuple[str, dict[str, Any]]:
    """The base URL and the httpx client's keyword arguments."""
    url = (base_url or os.environ.get("WATCHKEEP_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("WATCHKEEP_API_KEY")
    if not key:
        raise ValueError("an API key is needed: pass api_key= or set WATCHKEEP_API_KEY")
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    return url, {"base_url": url, "headers": headers, "timeout": DEFAULT_TIMEOUT, **options}


def _read(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    try:
        body: Any = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = response.text
    if response.status_code >= 400:
        raise error_for(response.status_code, body, response.headers.get("retry-after"))
    return parse(body)


Walk = Callable[[str | None], _Call[Page[T]]]


class _Calls:
    """The request of every method, shared by the sync and async clients."""

    @staticmethod
    def traces(f: TraceFilterArgs, limit: int, cursor: str | None) -> _Call[Page[TraceSummary]]:
        return _list_call("/api/v1/traces", TraceFilter(**f).params(), _TRACES, limit, cursor)

    @staticmethod
    def spans(f: TraceFilterArgs, limit: int, cursor: str | None) -> _Call[Page[Span]]:
        return _list_call("/api/v1/spans", TraceFilter(**f).params(), _SPANS, limit, cursor)

    @staticmethod
    def scores(f: ScoreFilterArgs, limit: int, cursor: str | None) -> _Call[Page[Score]]:
        return _list_call("/api/v1/scores", _optional(**f), _SCORES, limit, cursor)

    @staticmethod
    def walk_traces(f: TraceFilterArgs, page_size: int) -> Walk[TraceSummary]:
        return lambda cursor: _Calls.traces(f, page_size, cursor)

    @staticmethod
    def walk_spans(f: TraceFilterArgs, page_size: int) -> Walk[Span]:
        return lambda cursor: _Calls.spans(f, page_size, cursor)

    @staticmethod
    def walk_scores(f: ScoreFilterArgs, page_size: int) -> Walk[Score]:
        return lambda cursor: _Calls.scores(f, page_size, cursor)

    @staticmethod
    def trace(trace_id: str) -> _Call[TraceDetail]:
        if len(trace_id) != 32 or any(c not in "0123456789abcdefABCDEF" for c in trace_id):
            raise ValueError("a trace id is 32 hex digits")
        return _Call(f"/api/v1/traces/{trace_id}", [], TraceDetail.from_json)

    @staticmethod
    def metrics(args: MetricsArgs) -> _Call[Metrics]:
        a: dict[str, Any] = dict(args)
        names, tags = a.pop("metrics", None), a.pop("tags", None)
        params = _optional(from_=a.pop("start", None), to=a.pop("end", None), **a)
        if names:
            params.append(("metrics", ",".join(names)))
        params.extend(("tags", tag) for tag in tags or ())
        return _Call("/api/v1/metrics", params, Metrics.from_json)

    @staticmethod
    def quality(name: str, args: QualityArgs) -> _Call[QualityReport]:
        a: dict[str, Any] = dict(args)
        params = _optional(name=name, from_=a.pop("start", None), to=a.pop("end", None), **a)
        return _Call("/api/v1/quality", params, QualityReport.from_json)


class _ExportStream:
    """Reads ``/api/v1/export`` lines: spans, then the trailer that proves the stream whole."""

    path = "/api/v1/export"

    def __init__(self, base_url: str, filters: TraceFilterArgs) -> None:
        self._url = base_url + self.path
        self.params = tuple(TraceFilter(**filters).params())
        self.count = 0
        self._ended = False
        self._rest = b""

    def fail(self, response: httpx.Response, _body: bytes) -> NoReturn:
        """Raise the API error of an error answer (its body read)."""
        _read(response, lambda _: None)
        raise AssertionError("unreachable: an error status")

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The span objects on the whole lines that ``chunk`` completes (bytes: no decoding pass)."""
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        rows = []
        for line in lines:
            row = self.row(line)
            if row is not None:
                rows.append(row)
        return rows

    def row(self, line: bytes) -> dict[str, Any] | None:
        """The span object on ``line``; None for a blank line or the trailer."""
        if not line.strip():
            return None
        if self._ended:
            raise IncompleteExport(f"{self._url}: data after the end of the export")
        try:
            data: dict[str, Any] = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise IncompleteExport(f"{self._url}: a malformed line after {self.count} spans") from exc
        if "_end" in data:
            if data.get("count") != self.count:
                raise IncompleteExport(
                    f"{self._url}: {self.count} spans read, server sent {data.get('count')}"
                )
            self._ended = True
            return None
        self.count += 1
        return data

    def cut(self, exc: Exception) -> IncompleteExport:
        """The error for a connection lost midway."""
        return IncompleteExport(f"{self._url}: cut after {self.count} spans: {exc}")

    def finish(self) -> None:
        """Raise ``IncompleteExport`` if the trailer never came."""
        if self._rest.strip() and not self._ended:
            raise IncompleteExport(f"{self._url}: cut after {self.count} spans, within a line")
        if not self._ended:
            raise IncompleteExport(f"{self._url}: the stream ended after {self.count} spans, before its end")


class Client(EvalMethods):
    """Synchronous client of the query API. ``base_url`` and ``api_key`` default to the
    ``WATCHKEEP_URL`` and ``WATCHKEEP_API_KEY`` environment variables; use it as a
    context manager (or call ``close``) to release its connections."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, **options: Unpack[HttpOptions]
    ) -> None:
        self.base_url, http = _settings(base_url, api_key, options)
        self._http = httpx.Client(**http)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, call: _Call[T]) -> T:
        try:
            response = self._http.get(call.path, params=tuple(call.params))
        except httpx.TransportError as exc:
            raise TransportError(f"{self.base_url}{call.path}: {exc}") from exc
        return _read(response, call.parse)

    def _walk(self, make: Walk[T]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self._get(make(cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def list_traces(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[TraceSummary]:
        """One page of traces, newest first."""
        return self._get(_Calls.traces(filters, limit, cursor))

    def iter_traces(
        self, *, page_size: int = 500, **filters: Unpack[TraceFilterArgs]
    ) -> Iterator[TraceSummary]:
        """Every matching trace, newest first, fetched a page at a time as it is consumed."""
        return self._walk(_Calls.walk_traces(filters, page_size))

    def get_trace(self, trace_id: str) -> TraceDetail:
        """One trace as a span tree with payloads and scores (``NotFound`` if not in the project)."""
        return self._get(_Calls.trace(trace_id))

    def list_spans(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[Span]:
        """One page of spans, newest first (trace attributes inherited from the trace)."""
        return self._get(_Calls.spans(filters, limit, cursor))

    def iter_spans(self, *, page_size: int = 1000, **filters: Unpack[TraceFilterArgs]) -> Iterator[Span]:
        """Every matching span, newest first, a page at a time."""
        return self._walk(_Calls.walk_spans(filters, page_size))

    def export_spans(self, **filters: Unpack[TraceFilterArgs]) -> Iterator[Span]:
        """Every matching span, newest first, in one streamed request (``/api/v1/export``):
        far faster than ``iter_spans`` for bulk reads, one line in memory at a time. Raises
        ``IncompleteExport`` if the stream is cut before its end."""
        for rows in self.export_rows(**filters):
            yield from map(Span.from_json, rows)

    def export_rows(self, **filters: Unpack[TraceFilterArgs]) -> Iterator[list[dict[str, Any]]]:
        """``export_spans`` as plain JSON objects (the ``/api/v1/spans`` item fields, ``start_time``
        an ISO string), a received chunk's lines at a time: no dataclass per span, for bulk
        writers. The same checks: ``IncompleteExport`` if the stream is cut before its end."""
        reader = _ExportStream(self.base_url, filters)
        try:
            with self._http.stream("GET", reader.path, params=reader.params) as response:
                if response.status_code >= 400:
                    reader.fail(response, response.read())
                for chunk in response.iter_bytes():
                    if rows := reader.feed(chunk):
                        yield rows
        except httpx.TransportError as exc:
            raise reader.cut(exc) from exc
        reader.finish()

    def list_scores(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[ScoreFilterArgs]
    ) -> Page[Score]:
        """One page of scores, newest first."""
        return self._get(_Calls.scores(filters, limit, cursor))

    def iter_scores(self, *, page_size: int = 1000, **filters: Unpack[ScoreFilterArgs]) -> Iterator[Score]:
        """Every matching score, newest first, a page at a time."""
        return self._walk(_Calls.walk_scores(filters, page_size))

    def metrics(self, **args: Unpack[MetricsArgs]) -> Metrics:
        """Rates, latency/TTFT percentiles, tokens and cost of LLM calls over [start, end)
        (default: the last hour); with ``bucket_seconds``, the time series too; narrowed by
        ``model``, ``model_version``, ``prompt_version``, ``route``, ``environment``,
        ``release`` or ``provider``; ``tags``: calls whose trace has them all."""
        return self._get(_Calls.metrics(args))

    def quality(self, name: str, **args: Unpack[QualityArgs]) -> QualityReport:
        """Quality of score ``name`` over [start, end) (default: the last day)."""
        return self._get(_Calls.quality(name, args))


class AsyncClient(AsyncEvalMethods):
    """The same API for asyncio: ``await`` the methods, ``async for`` the ``iter_*`` ones."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, **options: Unpack[AsyncHttpOptions]
    ) -> None:
        self.base_url, http = _settings(base_url, api_key, options)
        self._http = httpx.AsyncClient(**http)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, call: _Call[T]) -> T:
        try:
            response = await self._http.get(call.path, params=tuple(call.params))
        except httpx.TransportError as exc:
            raise TransportError(f"{self.base_url}{call.path}: {exc}") from exc
        return _read(response, call.parse)

    async def _walk(self, make: Walk[T]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self._get(make(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def list_traces(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[TraceSummary]:
        return await self._get(_Calls.traces(filters, limit, cursor))

    def iter_traces(
        self, *, page_size: int = 500, **filters: Unpack[TraceFilterArgs]
    ) -> AsyncIterator[TraceSummary]:
        return self._walk(_Calls.walk_traces(filters, page_size))

    async def get_trace(self, trace_id: str) -> TraceDetail:
        return await self._get(_Calls.trace(trace_id))

    async def list_spans(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[Span]:
        return await self._get(_Calls.spans(filters, limit, cursor))

    def iter_spans(self, *, page_size: int = 1000, **filters: Unpack[TraceFilterArgs]) -> AsyncIterator[Span]:
        return self._walk(_Calls.walk_spans(filters, page_size))

    async def export_spans(self, **filters: Unpack[TraceFilterArgs]) -> AsyncIterator[Span]:
        """See ``Client.export_spans``."""
        async for rows in self.export_rows(**filters):
            for row in rows:
                yield Span.from_json(row)

    async def export_rows(self, **filters: Unpack[TraceFilterArgs]) -> AsyncIterator[list[dict[str, Any]]]:
        """See ``Client.export_rows``."""
        reader = _ExportStream(self.base_url, filters)
        try:
            async with self._http.stream("GET", reader.path, params=reader.params) as response:
                if response.status_code >= 400:
                    reader.fail(response, await response.aread())
                async for chunk in response.aiter_bytes():
                    if rows := reader.feed(chunk):
                        yield rows
        except httpx.TransportError as exc:
            raise reader.cut(exc) from exc
        reader.finish()

    async def list_scores(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[ScoreFilterArgs]
    ) -> Page[Score]:
        return await self._get(_Calls.scores(filters, limit, cursor))

    def iter_scores(
        self, *, page_size: int = 1000, **filters: Unpack[ScoreFilterArgs]
    ) -> AsyncIterator[Score]:
        return self._walk(_Calls.walk_scores(filters, page_size))

    async def metrics(self, **args: Unpack[MetricsArgs]) -> Metrics:
        return await self._get(_Calls.metrics(args))

    async def quality(self, name: str, **args: Unpack[QualityArgs]) -> QualityReport:
        return await self._get(_Calls.quality(name, args))
