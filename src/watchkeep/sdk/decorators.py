"""``@observe``: one span per call of a sync, async, generator or async generator function.

The caller pays for: reading the current client and span, two random ids, two clock
reads, one small object, and attaching it to the OpenTelemetry context. Arguments and
the return value are kept by reference and serialised on the export thread (an object
mutated after the call returns may be recorded in its mutated state). SDK failures are
caught and reported once; the user's own exceptions pass through untouched.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, ParamSpec, TypeVar, cast, overload

from opentelemetry.trace import SpanKind

from watchkeep import semconv
from watchkeep.sdk.client import _HOLDER, Client, current_client
from watchkeep.sdk.spans import SpanRecord, activate, deactivate

P = ParamSpec("P")
MAX_CAPTURED_ITEMS = 1000  # yielded items kept as a generator's output


def kind_attributes(kind: str) -> dict[str, Any]:
    """``watchkeep.span.kind`` plus the GenAI operation a known kind implies."""
    if kind == "span":
        return {}
    attrs: dict[str, Any] = {semconv.WK_SPAN_KIND: kind}
    operation = semconv.OPENINFERENCE_KIND_TO_OPERATION.get("LLM" if kind == "generation" else kind.upper())
    if operation is not None:
        attrs[semconv.GEN_AI_OPERATION_NAME] = operation
    return attrs


class _Observed:
    """What one decorated function needs per call, computed once at decoration time."""

    __slots__ = ("attributes", "capture_input", "capture_output", "name", "otel_kind", "signature")

    def __init__(
        self,
        func: Callable[..., Any],
        name: str | None,
        kind: str,
        capture_input: bool | None,
        capture_output: bool | None,
        attributes: Mapping[str, Any] | None,
    ) -> None:
        self.name = name or getattr(func, "__qualname__", None) or repr(func)
        self.attributes = {**kind_attributes(kind), **(attributes or {})}
        self.otel_kind = SpanKind.CLIENT if kind in ("llm", "generation", "embedding") else SpanKind.INTERNAL
        self.capture_input = capture_input
        self.capture_output = capture_output
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            self.signature = None

    def start(self, client: Client, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanRecord | None:
        """A started record, or None if the SDK failed (then the call runs untraced)."""
        try:
            record = client.start_span(self.name, self.otel_kind)
            if self.attributes:
                record.attributes.update(self.attributes)
            capture = self.capture_input
            if capture if capture is not None else client.config.capture_content:
                record.input = (self.signature, args, kwargs)
            return record
        except Exception as exc:
            client.errors.report("observe", exc)
            return None

    def finish(self, client: Client, record: SpanRecord, result: Any, exc: BaseException | None) -> None:
        try:
            if exc is not None:
                record.fail(exc)
            else:
                capture = self.capture_output
                if capture if capture is not None else client.config.capture_content:
                    record.output = result
            record.end()
        except Exception as error:
            client.errors.report("observe", error)


def _client() -> Client:
    return _HOLDER.client or current_client()


def _release(client: Client, token: object) -> None:
    try:
        deactivate(token)
    except Exception as exc:
        client.errors.report("context", exc)


def _wrap_sync(func: Callable[..., Any], obs: _Observed) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = _client()
        if not client.active:
            return func(*args, **kwargs)
        record = obs.start(client, args, kwargs)
        if record is None:
            return func(*args, **kwargs)
        token = activate(record)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _release(client, token)
            obs.finish(client, record, None, exc)
            raise
        _release(client, token)
        obs.finish(client, record, result, None)
        return result

    return wrapper


def _wrap_async(func: Callable[..., Any], obs: _Observed) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = _client()
        if not client.active:
            return await func(*args, **kwargs)
        record = obs.start(client, args, kwargs)
        if record is None:
            return await func(*args, **kwargs)
        token = activate(record)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _release(client, token)
            obs.finish(client, record, None, exc)
            raise
        _release(client, token)
        obs.finish(client, record, result, None)
        return result

    return wrapper


class _Items:
    """Collects what a generator yields, for its span's output."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        if len(self.items) < MAX_CAPTURED_ITEMS:
            self.items.append(item)

    def output(self) -> Any:
        items = self.items
        if items and all(isinstance(i, str) for i in items):
            return "".join(items)
        return items


def _wrap_generator(func: Callable[..., Any], obs: _Observed) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        client = _client()
        record = obs.start(client, args, kwargs) if client.active else None
        if record is None:
            return (yield from func(*args, **kwargs))
        items = _Items()
        generator = func(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = activate(record)  # current only while the generator body runs
            try:
                item = generator.throw(thrown) if thrown is not None else generator.send(sent)
            except StopIteration as stop:
                _release(client, token)
                obs.finish(client, record, items.output(), None)
                return stop.value
            except BaseException as exc:
                _release(client, token)
                obs.finish(client, record, None, exc)
                raise
            _release(client, token)
            items.add(item)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                generator.close()
                obs.finish(client, record, items.output(), None)
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper


def _wrap_async_generator(func: Callable[..., Any], obs: _Observed) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        client = _client()
        generator = func(*args, **kwargs)
        record = obs.start(client, args, kwargs) if client.active else None
        items = _Items()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = activate(record) if record is not None else None
            try:
                if thrown is not None:
                    item = await generator.athrow(thrown)
                else:
                    item = await generator.asend(sent)
            except StopAsyncIteration:
                if record is not None:
                    _release(client, token)
                    obs.finish(client, record, items.output(), None)
                return
            except BaseException as exc:
                if record is not None:
                    _release(client, token)
                    obs.finish(client, record, None, exc)
                raise
            if record is not None:
                _release(client, token)
                items.add(item)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                await generator.aclose()
                if record is not None:
                    obs.finish(client, record, items.output(), None)
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper


F = TypeVar("F", bound=Callable[..., Any])


@overload
def observe(func: F, /) -> F: ...


@overload
def observe(
    *,
    name: str | None = None,
    kind: str = "span",
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Callable[[F], F]: ...


def observe(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "span",
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> F | Callable[[F], F]:
    """Trace every call of the decorated function as a span.

    ``kind`` (``span``, ``llm``/``generation``, ``tool``, ``agent``, ``chain``,
    ``retriever``, ``embedding``...) is recorded as ``watchkeep.span.kind`` and mapped to a
    GenAI operation name. Capture flags default to ``init(capture_content=...)``.
    """

    def decorate(target: F) -> F:
        obs = _Observed(target, name, kind, capture_input, capture_output, attributes)
        if inspect.isasyncgenfunction(target):
            return cast(F, _wrap_async_generator(target, obs))
        if inspect.isgeneratorfunction(target):
            return cast(F, _wrap_generator(target, obs))
        if inspect.iscoroutinefunction(target):
            return cast(F, _wrap_async(target, obs))
        return cast(F, _wrap_sync(target, obs))

    if func is not None:
        return decorate(func)
    return decorate
