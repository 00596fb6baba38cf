"""The public module-level API (``watchkeep.init``, ``watchkeep.span``, ...).

Every function here resolves the current client at call time and never raises into
the application: SDK failures are logged once and the call degrades to a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Unpack

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from watchkeep.sdk.client import _HOLDER, Client, current_client, install
from watchkeep.sdk.config import Redactor
from watchkeep.sdk.decorators import kind_attributes
from watchkeep.sdk.pipeline import Stats
from watchkeep.sdk.spans import SpanRecord, activate, current_span, deactivate, trace_and_span_ids
from watchkeep.sdk.update import SpanUpdate, apply_update


def init(
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    environment: str | None = None,
    release: str | None = None,
    service_name: str | None = None,
    sample_rate: float | None = None,
    capture_content: bool | None = None,
    redact: Redactor | bool | None = None,
    enabled: bool | None = None,
    set_global: bool | None = None,
    **settings: Any,
) -> Client:
    """Configure tracing for this process; unset arguments come from ``WATCHKEEP_*``.

    Without an API key this warns and returns an inactive client: every helper is then
    a no-op. Further settings (``home``, ``queue_size``, ``batch_size``,
    ``flush_interval``, ``export_timeout``, ``shutdown_timeout``, ``spool_max_bytes``,
    ``max_payload_chars``) are accepted as keywords.
    """
    overrides = {
        "endpoint": endpoint,
        "api_key": api_key,
        "environment": environment,
        "release": release,
        "service_name": service_name,
        "sample_rate": sample_rate,
        "capture_content": capture_content,
        "redact": redact,
        "enabled": enabled,
        "set_global": set_global,
        **settings,
    }
    return install(overrides)


def get_client() -> Client:
    """The current client (built from the environment if ``init`` was not called)."""
    return current_client()


@contextmanager
def span(
    name: str, /, *, otel_kind: SpanKind = SpanKind.INTERNAL, **fields: Unpack[SpanUpdate]
) -> Iterator[trace.Span]:
    """A span around a block, current inside it; exceptions mark it failed and propagate.

    ``fields`` are those of ``update_current``; ``kind`` (``llm``, ``tool``...) also sets
    the GenAI operation name.
    """
    client = current_client()
    record: SpanRecord | None = None
    token: object = None
    try:
        record = client.start_span(name, otel_kind)
        record.attributes.update(kind_attributes(fields.get("kind", "span")))
        if fields:
            apply_update(
                record,
                fields,
                capture_content=client.config.capture_content,
                max_chars=client.config.max_payload_chars,
            )
        token = activate(record)
    except Exception as exc:
        client.errors.report("span", exc)
    if record is None or token is None:
        yield trace.INVALID_SPAN
        return
    try:
        yield record
    except BaseException as exc:
        record.fail(exc)
        raise
    finally:
        try:
            deactivate(token)
            record.end()
        except Exception as exc:
            client.errors.report("span", exc)


def update_current(**fields: Unpack[SpanUpdate]) -> None:
    """Set fields (model, tokens, input, output, metadata...) on the current span."""
    client = _HOLDER.client or current_client()
    try:
        current = current_span()
        if current is not None:
            apply_update(
                current,
                fields,
                capture_content=client.config.capture_content,
                max_chars=client.config.max_payload_chars,
            )
    except Exception as exc:
        client.errors.report("update_current", exc)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside any recording span."""
    return trace_and_span_ids(current_span())[0]


def current_span_id() -> str | None:
    return trace_and_span_ids(current_span())[1]


def score(
    name: str,
    value: float | str | bool,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    source: str = "api",
    label: str | None = None,
    comment: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    data_type: str | None = None,
    idempotency_key: str | None = None,
) -> bool:
    """Record a score on a trace (default: the current one); sent in the background.

    ``idempotency_key`` (default: a new UUID) makes a resent score count once.
    """
    return current_client().score(
        name,
        value,
        trace_id=trace_id,
        span_id=span_id,
        source=source,
        label=label,
        comment=comment,
        metadata=metadata,
        data_type=data_type,
        idempotency_key=idempotency_key,
    )


def feedback(
    value: float | str | bool,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    comment: str | None = None,
    name: str = "user_feedback",
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> bool:
    """An end user's verdict on a trace (thumbs, stars, text): a score from ``end-user``.

    Pass the id of the feedback event as ``idempotency_key`` to make a double click count once.
    """
    return current_client().score(
        name,
        value,
        trace_id=trace_id,
        span_id=span_id,
        source="end-user",
        comment=comment,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )


def flush(timeout: float | None = None) -> bool:
    """Send what is queued now; returns within ``timeout`` (unsent data stays queued)."""
    try:
        return current_client().flush(timeout)
    except Exception:
        return False


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop; returns within ``timeout``, leftovers are written to the spool."""
    try:
        return current_client().shutdown(timeout)
    except Exception:
        return False


def stats() -> Stats:
    """Counters: queued, exported, spooled, replayed, dropped, rejected, spool files..."""
    return current_client().stats()


def get_tracer(name: str = "watchkeep", version: str | None = None) -> trace.Tracer:
    """An OpenTelemetry tracer on watchkeep's own TracerProvider."""
    return current_client().get_tracer(name, version)
