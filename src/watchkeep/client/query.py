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
from typing import Any, Literal, TypedDict, TypeVar, Unpack

import httpx
import orjson

from watchkeep.client.errors import TransportError, error_for
from watchkeep.client.models import Metrics, Page, QualityReport, Score, Span, TraceDetail, TraceSummary

T = TypeVar("T")
Params = list[tuple[str, str]]
Time = datetime | str
DEFAULT_URL = "http://127.0.0.1:8700"
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


def _score_params(
    name: str | None,
    trace_id: str | None,
    source: str | None,
    created_from: Time | None,
    created_to: Time | None,
) -> Params:
    return _optional(
        name=name, trace_id=trace_id, source=source, created_from=created_from, created_to=created_to
    )


@dataclass(frozen=True, slots=True)
class _Call:
    """One GET: path, parameters and how to read the JSON answer."""

    path: str
    params: Params
    parse: Callable[[Any], Any]


def _page_parser(item: Callable[[dict[str, Any]], T]) -> Callable[[Any], Page[T]]:
    def parse(data: Any) -> Page[T]:
        return Page(tuple(item(i) for i in data["items"]), data.get("next_cursor"))

    return parse


_TRACES = _page_parser(TraceSummary.from_json)
_SPANS = _page_parser(Span.from_json)
_SCORES = _page_parser(Score.from_json)


def _list_call(
    path: str, params: Params, parse: Callable[[Any], Any], limit: int, cursor: str | None
) -> _Call:
    if not 1 <= limit <= MAX_PAGE[path]:
        raise ValueError(f"limit must be 1 to {MAX_PAGE[path]}")
    tail = [("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
    return _Call(path, params + tail, parse)


def _metrics_call(
    start: Time | None,
    end: Time | None,
    bucket_seconds: int | None,
    metrics: Sequence[str] | None,
    tags: Sequence[str] | None,
    **calls: str | None,
) -> _Call:
    params = _optional(from_=start, to=end, bucket_seconds=bucket_seconds, **calls)
    if metrics:
        params.append(("metrics", ",".join(metrics)))
    params.extend(("tags", tag) for tag in tags or ())
    return _Call("/api/v1/metrics", params, Metrics.from_json)


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    url = (base_url or os.environ.get("WATCHKEEP_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("WATCHKEEP_API_KEY")
    if not key:
        raise ValueError("an API key is needed: pass api_key= or set WATCHKEEP_API_KEY")
    return url, {"Authorization": f"Bearer {key}", "Accept": "application/json"}


def _read(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    try:
        body: Any = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = response.text
    if response.status_code >= 400:
        raise error_for(response.status_code, body, response.headers.get("retry-after"))
    return parse(body)


class _Calls:
    """The request of every method, shared by the sync and async clients."""

    @staticmethod
    def traces(f: TraceFilter, limit: int, cursor: str | None) -> _Call:
        return _list_call("/api/v1/traces", f.params(), _TRACES, limit, cursor)

    @staticmethod
    def spans(f: TraceFilter, limit: int, cursor: str | None) -> _Call:
        return _list_call("/api/v1/spans", f.params(), _SPANS, limit, cursor)

    @staticmethod
    def scores(params: Params, limit: int, cursor: str | None) -> _Call:
        return _list_call("/api/v1/scores", params, _SCORES, limit, cursor)

    @staticmethod
    def trace(trace_id: str) -> _Call:
        if len(trace_id) != 32 or any(c not in "0123456789abcdefABCDEF" for c in trace_id):
            raise ValueError("a trace id is 32 hex digits")
        return _Call(f"/api/v1/traces/{trace_id}", [], TraceDetail.from_json)

    @staticmethod
    def quality(
        name: str, start: Time | None, end: Time | None, model: str | None, confidence: float | None
    ) -> _Call:
        params = _optional(name=name, from_=start, to=end, model=model, confidence=confidence)
        return _Call("/api/v1/quality", params, QualityReport.from_json)


class Client:
    """Synchronous client of the query API. ``base_url`` and ``api_key`` default to the
    ``WATCHKEEP_URL`` and ``WATCHKEEP_API_KEY`` environment variables; use it as a
    context manager (or call ``close``) to release its connections."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, headers = _settings(base_url, api_key)
        self.base_url = url
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, call: _Call) -> Any:
        try:
            response = self._http.get(call.path, params=tuple(call.params))
        except httpx.TransportError as exc:
            raise TransportError(f"{self.base_url}{call.path}: {exc}") from exc
        return _read(response, call.parse)

    def _walk(self, make: Callable[[str | None], _Call]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            page: Page[Any] = self._get(make(cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def list_traces(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[TraceSummary]:
        """One page of traces, newest first."""
        page: Page[TraceSummary] = self._get(_Calls.traces(TraceFilter(**filters), limit, cursor))
        return page

    def iter_traces(
        self, *, page_size: int = 500, **filters: Unpack[TraceFilterArgs]
    ) -> Iterator[TraceSummary]:
        """Every matching trace, newest first, fetched a page at a time as it is consumed."""
        f = TraceFilter(**filters)
        return self._walk(lambda cursor: _Calls.traces(f, page_size, cursor))

    def get_trace(self, trace_id: str) -> TraceDetail:
        """One trace as a span tree with payloads and scores (``NotFound`` if not in the project)."""
        detail: TraceDetail = self._get(_Calls.trace(trace_id))
        return detail

    def list_spans(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[Span]:
        """One page of spans, newest first (trace attributes inherited from the trace)."""
        page: Page[Span] = self._get(_Calls.spans(TraceFilter(**filters), limit, cursor))
        return page

    def iter_spans(self, *, page_size: int = 1000, **filters: Unpack[TraceFilterArgs]) -> Iterator[Span]:
        """Every matching span, newest first, a page at a time."""
        f = TraceFilter(**filters)
        return self._walk(lambda cursor: _Calls.spans(f, page_size, cursor))

    def list_scores(
        self,
        *,
        name: str | None = None,
        trace_id: str | None = None,
        source: str | None = None,
        created_from: Time | None = None,
        created_to: Time | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Score]:
        """One page of scores, newest first."""
        params = _score_params(name, trace_id, source, created_from, created_to)
        page: Page[Score] = self._get(_Calls.scores(params, limit, cursor))
        return page

    def iter_scores(
        self,
        *,
        name: str | None = None,
        trace_id: str | None = None,
        source: str | None = None,
        created_from: Time | None = None,
        created_to: Time | None = None,
        page_size: int = 1000,
    ) -> Iterator[Score]:
        """Every matching score, newest first, a page at a time."""
        params = _score_params(name, trace_id, source, created_from, created_to)
        return self._walk(lambda cursor: _Calls.scores(params, page_size, cursor))

    def metrics(
        self,
        *,
        start: Time | None = None,
        end: Time | None = None,
        bucket_seconds: int | None = None,
        metrics: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        **calls: str | None,
    ) -> Metrics:
        """Rates, latency/TTFT percentiles, tokens and cost of LLM calls over [start, end)
        (default: the last hour); with ``bucket_seconds``, the time series too. ``calls``
        narrows by ``model``, ``model_version``, ``prompt_version``, ``route``,
        ``environment``, ``release`` or ``provider``; ``tags``: calls whose trace has them all."""
        result: Metrics = self._get(_metrics_call(start, end, bucket_seconds, metrics, tags, **calls))
        return result

    def quality(
        self,
        name: str,
        *,
        start: Time | None = None,
        end: Time | None = None,
        model: str | None = None,
        confidence: float | None = None,
    ) -> QualityReport:
        """Quality of score ``name`` over [start, end) (default: the last day)."""
        report: QualityReport = self._get(_Calls.quality(name, start, end, model, confidence))
        return report


class AsyncClient:
    """The same API for asyncio: ``await`` the methods, ``async for`` the ``iter_*`` ones."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, headers = _settings(base_url, api_key)
        self.base_url = url
        self._http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, call: _Call) -> Any:
        try:
            response = await self._http.get(call.path, params=tuple(call.params))
        except httpx.TransportError as exc:
            raise TransportError(f"{self.base_url}{call.path}: {exc}") from exc
        return _read(response, call.parse)

    async def _walk(self, make: Callable[[str | None], _Call]) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            page: Page[Any] = await self._get(make(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def list_traces(
        self, *, limit: int = 50, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[TraceSummary]:
        page: Page[TraceSummary] = await self._get(_Calls.traces(TraceFilter(**filters), limit, cursor))
        return page

    def iter_traces(
        self, *, page_size: int = 500, **filters: Unpack[TraceFilterArgs]
    ) -> AsyncIterator[TraceSummary]:
        f = TraceFilter(**filters)
        return self._walk(lambda cursor: _Calls.traces(f, page_size, cursor))

    async def get_trace(self, trace_id: str) -> TraceDetail:
        detail: TraceDetail = await self._get(_Calls.trace(trace_id))
        return detail

    async def list_spans(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Unpack[TraceFilterArgs]
    ) -> Page[Span]:
        page: Page[Span] = await self._get(_Calls.spans(TraceFilter(**filters), limit, cursor))
        return page

    def iter_spans(self, *, page_size: int = 1000, **filters: Unpack[TraceFilterArgs]) -> AsyncIterator[Span]:
        f = TraceFilter(**filters)
        return self._walk(lambda cursor: _Calls.spans(f, page_size, cursor))

    async def list_scores(
        self,
        *,
        name: str | None = None,
        trace_id: str | None = None,
        source: str | None = None,
        created_from: Time | None = None,
        created_to: Time | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Score]:
        params = _score_params(name, trace_id, source, created_from, created_to)
        page: Page[Score] = await self._get(_Calls.scores(params, limit, cursor))
        return page

    def iter_scores(
        self,
        *,
        name: str | None = None,
        trace_id: str | None = None,
        source: str | None = None,
        created_from: Time | None = None,
        created_to: Time | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Score]:
        params = _score_params(name, trace_id, source, created_from, created_to)
        return self._walk(lambda cursor: _Calls.scores(params, page_size, cursor))

    async def metrics(
        self,
        *,
        start: Time | None = None,
        end: Time | None = None,
        bucket_seconds: int | None = None,
        metrics: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        **calls: str | None,
    ) -> Metrics:
        result: Metrics = await self._get(_metrics_call(start, end, bucket_seconds, metrics, tags, **calls))
        return result

    async def quality(
        self,
        name: str,
        *,
        start: Time | None = None,
        end: Time | None = None,
        model: str | None = None,
        confidence: float | None = None,
    ) -> QualityReport:
        report: QualityReport = await self._get(_Calls.quality(name, start, end, model, confidence))
        return report
