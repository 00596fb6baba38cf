"""Read commands over the query API: ``traces list|show|tail``, ``scores list``, ``export``.

They speak HTTP through ``watchkeep.client`` (a server anywhere, a key of its project),
never the database: the same permissions and tenant scoping as every other API user.
Tables go to stdout; ``--json`` prints JSON instead (``list``/``tail``: one object a line;
``show``: one object). Progress and messages go to stderr.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from watchkeep.cli.export_writers import Format, open_writer
from watchkeep.client import Client, Score, SpanNode, TraceDetail, TraceSummary, WatchkeepError

traces_app = typer.Typer(help="Read traces from a server (the query API).", no_args_is_help=True)
scores_app = typer.Typer(help="Read scores and feedback from a server.", no_args_is_help=True)
PIPE_WIDTH = 240  # piped output is not cut to 80 columns


def _console(stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr), wide when it is not a terminal."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=PIPE_WIDTH)
    return console


Url = Annotated[str, typer.Option("--url", envvar="WATCHKEEP_URL", help="Server URL.")]
ApiKey = Annotated[
    str, typer.Option("--api-key", envvar="WATCHKEEP_API_KEY", help="A key of the project to read.")
]
DEFAULT_URL = "http://127.0.0.1:8700"
Json = Annotated[bool, typer.Option("--json", help="Print JSON (lists: one object a line).")]
User = Annotated[str | None, typer.Option("--user", help="User id.")]
Session = Annotated[str | None, typer.Option("--session", help="Session id.")]
Environment = Annotated[str | None, typer.Option("--environment", help="Deployment environment.")]
Release = Annotated[str | None, typer.Option("--release", help="Application release.")]
Name = Annotated[str | None, typer.Option("--name", help="Substring of the name (any case).")]
Model = Annotated[str | None, typer.Option("--model", help="Request or response model.")]
Since = Annotated[
    str | None, typer.Option("--since", help="Started at or after: '30m', '1h', '2d' ago, or ISO 8601.")
]
Until = Annotated[str | None, typer.Option("--until", help="Started before: '10m' ago or ISO 8601.")]
Errors = Annotated[bool, typer.Option("--errors", help="Only traces (spans) with an error.")]
Tag = Annotated[list[str] | None, typer.Option("--tag", help="Has this tag (repeatable: all of them).")]
Search = Annotated[str | None, typer.Option("--search", help="Full-text search of prompts and responses.")]
Metadata = Annotated[
    list[str] | None, typer.Option("--metadata", help="KEY:VALUE the SDK metadata must hold (repeatable).")
]

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``'90s'``, ``'30m'``, ``'1h'``, ``'2d'``, ``'1w'`` ago, or an ISO 8601 time (UTC if
    it names no zone), as an aware datetime."""
    match = _AGO.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: use e.g. 30m, 1h, 2d or 2026-01-31T12:00:00Z") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def trace_filters(
    *,
    user: User = None,
    session: Session = None,
    environment: Environment = None,
    release: Release = None,
    name: Name = None,
    model: Model = None,
    since: Since = None,
    until: Until = None,
    errors: Errors = False,
    tag: Tag = None,
    search: Search = None,
    metadata: Metadata = None,
) -> dict[str, Any]:
    """The client's filter keywords from the CLI's options."""
    return {
        "user_id": user,
        "session_id": session,
        "environment": environment,
        "release": release,
        "name": name,
        "model": model,
        "start_from": parse_when(since) if since else None,
        "start_to": parse_when(until) if until else None,
        "status": "error" if errors else None,
        "tags": tag or None,
        "q": search,
        "metadata": dict(_pair(m) for m in metadata) if metadata else None,
    }


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r}: use KEY:VALUE")
    return key, value


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def with_trace_filters(*, until: bool = True) -> Callable[[F], F]:
    """Give a command the trace filter options; it receives them as ``filters`` (the
    client's keywords: ``trace_filters``, whose parameters are the options), declared once."""
    options = [
        p
        for p in inspect.signature(trace_filters, eval_str=True).parameters.values()
        if until or p.name != "until"
    ]
    names = [p.name for p in options]

    def decorate(command: F) -> F:
        sig = inspect.signature(command, eval_str=True)
        own = [p.replace(kind=p.KEYWORD_ONLY) for p in sig.parameters.values() if p.name != "filters"]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            filters = trace_filters(**{n: kwargs.pop(n) for n in names})
            return command(filters=filters, **kwargs)

        run.__signature__ = sig.replace(parameters=own + options)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in own + options}
        return run  # type: ignore[return-value]

    return decorate


def _client(url: str, api_key: str) -> Client:
    if not api_key:
        _console(stderr=True).print("an API key is needed: --api-key or WATCHKEEP_API_KEY")
        raise typer.Exit(2)
    return Client(url, api_key)


def _fail(exc: WatchkeepError) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(1)


def _fetch(url: str, api_key: str, limit: int, items: Callable[[Client], Iterator[T]]) -> list[T]:
    """The first ``limit`` of ``items(client)``; a failure is printed and exits 1."""
    with _client(url, api_key) as client:
        try:
            return list(islice(items(client), limit))
        except WatchkeepError as exc:
            raise _fail(exc) from exc


def _json_lines(values: Iterable[Any]) -> None:
    for value in values:
        _json_line(value)


def _json_line(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()  # a tail's reader sees each trace as it comes


def _time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _trace_table() -> Table:
    table = Table(show_lines=False, header_style="bold")
    for col in ("started (UTC)", "trace id", "name", "ms", "spans", "tokens", "cost $", "user", "session"):
        table.add_column(col, no_wrap=col in ("trace id", "started (UTC)"))
    table.add_column("status")
    return table


def _trace_row(t: TraceSummary) -> list[str]:
    return [
        _time(t.start_time),
        t.trace_id,
        escape(t.name or ""),
        f"{t.duration_ms:,.1f}",
        str(t.span_count),
        f"{t.total_tokens:,}",
        f"{t.cost_usd:.6f}",
        escape(t.user_id or ""),
        escape(t.session_id or ""),
        "[red]error[/red]" if t.has_error else "ok",
    ]


@traces_app.command("list")
@with_trace_filters()
def traces_list(
    filters: dict[str, Any],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many traces.")] = 50,
    json: Json = False,
) -> None:
    """Traces, newest first (pages are followed up to --limit)."""
    found = _fetch(url, api_key, limit, lambda c: c.iter_traces(page_size=min(limit, 500), **filters))
    if json:
        return _json_lines(found)
    table = _trace_table()
    for t in found:
        table.add_row(*_trace_row(t))
    _console().print(table)
    _console(stderr=True).print(f"{len(found)} trace(s)")


def _snippet(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _span_label(node: SpanNode, trace_start: int) -> str:
    offset = (node.start_time_unix_nano - trace_start) / 1e6
    parts = [f"[bold]{escape(node.name)}[/bold]", f"+{offset:,.1f} ms", f"{node.duration_ms:,.1f} ms"]
    model = node.response_model or node.request_model
    if model:
        parts.append(f"[cyan]{escape(model)}[/cyan]")
    if node.input_tokens is not None or node.output_tokens is not None:
        parts.append(f"tokens {node.input_tokens or 0}→{node.output_tokens or 0}")
    if node.cost_usd:
        parts.append(f"${node.cost_usd:.6f}")
    if node.time_to_first_token_ms is not None:
        parts.append(f"ttft {node.time_to_first_token_ms:,.1f} ms")
    if node.status == "error":
        parts.append(f"[red]error {escape(node.status_message or '')}[/red]")
    if node.detached:
        parts.append("[yellow](detached)[/yellow]")
    return "  ".join(parts)


def render_trace(detail: TraceDetail, width: int = 200) -> Tree:
    """The span tree with timings, tokens, cost and the messages (cut to ``width``)."""
    starts = [node.start_time_unix_nano for _, node in detail.spans()]
    trace_start = min(starts) if starts else 0
    tree = Tree(f"trace [bold]{detail.trace_id}[/bold]  {detail.span_count} span(s)")
    branches: dict[int, Tree] = {-1: tree}
    for depth, node in detail.spans():
        branch = branches[depth - 1].add(_span_label(node, trace_start))
        branches[depth] = branch
        for label, value in (("input", node.input), ("output", node.output)):
            if value is not None:
                branch.add(f"[dim]{label}:[/dim] {escape(_snippet(value, width))}")
    if detail.scores:
        scores = tree.add("[bold]scores[/bold]")
        for s in detail.scores:
            scores.add(escape(_score_text(s)))
    return tree


def _score_text(s: Score) -> str:
    value = s.string_value if s.string_value is not None else s.value
    label = f" (label {s.label})" if s.label is not None else ""
    return f"{s.name} = {value}{label} [{s.source}]"


@traces_app.command("show")
def traces_show(
    trace_id: Annotated[str, typer.Argument(help="32 hex digits.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    width: Annotated[int, typer.Option(min=20, help="Cut messages to this many characters.")] = 200,
    json: Json = False,
) -> None:
    """One trace: its span tree with timings, tokens, cost, messages and scores."""
    with _client(url, api_key) as client:
        try:
            detail = client.get_trace(trace_id)
        except (WatchkeepError, ValueError) as exc:
            _console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc
    if json:
        _json_line(detail)
        return
    _console().print(render_trace(detail, width))


def follow_traces(
    client: Client, filters: dict[str, Any], interval: float, lookback_s: float
) -> Iterator[TraceSummary]:
    """New traces as they arrive, each once: polls with a start-time watermark.

    A trace is new when its id was not yet seen; polls look back ``lookback_s`` before the
    newest start seen, so traces that arrive late (a slow exporter) are still caught.
    """
    watermark = datetime.now(UTC) - timedelta(seconds=lookback_s)
    seen: dict[str, datetime] = {}
    primed = filters.get("start_from") is not None  # with --since, print what is already there
    since = filters.pop("start_from", None) or watermark
    while True:
        fresh = list(client.iter_traces(start_from=since, **filters))
        fresh.reverse()  # oldest first
        for t in fresh:
            if t.trace_id not in seen:
                seen[t.trace_id] = t.start_time
                if primed:
                    yield t
        primed = True
        if seen:
            newest = max(seen.values())
            since = max(since, newest - timedelta(seconds=lookback_s))
            seen = {k: v for k, v in seen.items() if v >= since}
        time.sleep(interval)


@traces_app.command("tail")
@with_trace_filters(until=False)
def traces_tail(
    filters: dict[str, Any],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 2.0,
    lookback: Annotated[float, typer.Option(min=0, help="Seconds of late arrival to allow.")] = 60.0,
    max_traces: Annotated[int | None, typer.Option(min=1, help="Stop after this many traces.")] = None,
    json: Json = False,
) -> None:
    """Follow new traces live (Ctrl-C stops); --since also prints recent ones first."""
    printed = 0
    with _client(url, api_key) as client:
        try:
            for t in follow_traces(client, filters, interval, lookback):
                if json:
                    _json_line(t)
                else:
                    table = _trace_table() if printed == 0 else Table.grid(padding=(0, 1))
                    table.add_row(*_trace_row(t))
                    _console().print(table)
                printed += 1
                if max_traces is not None and printed >= max_traces:
                    return
        except KeyboardInterrupt:
            _console(stderr=True).print(f"stopped after {printed} trace(s)")
        except WatchkeepError as exc:
            raise _fail(exc) from exc


@scores_app.command("list")
def scores_list(
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    name: Annotated[str | None, typer.Option(help="Score name.")] = None,
    trace_id: Annotated[str | None, typer.Option(help="Of this trace.")] = None,
    source: Annotated[str | None, typer.Option(help="human, api, evaluator or end-user.")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after: '1h' ago or ISO 8601.")] = None,
    until: Annotated[str | None, typer.Option(help="Created before: '10m' ago or ISO 8601.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many scores.")] = 50,
    json: Json = False,
) -> None:
    """Scores and feedback, newest first."""
    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    found = _fetch(
        url,
        api_key,
        limit,
        lambda c: c.iter_scores(
            name=name, trace_id=trace_id, source=source, created_from=start, created_to=end,
            page_size=min(limit, 1000),
        ),
    )  # fmt: skip
    if json:
        return _json_lines(found)
    table = Table(header_style="bold")
    for col in ("created (UTC)", "name", "value", "label", "source", "trace id", "span id", "comment"):
        table.add_column(col)
    for s in found:
        value = (
            s.string_value if s.string_value is not None else f"{s.value:g}" if s.value is not None else ""
        )
        row = [_time(s.created_at), s.name, value, s.label or "", s.source, s.trace_id, s.span_id or ""]
        table.add_row(*(escape(str(v)) for v in [*row, _snippet(s.comment or "", 60)]))
    _console().print(table)
    _console(stderr=True).print(f"{len(found)} score(s)")


@with_trace_filters()
def export(
    filters: dict[str, Any],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[
        Literal["jsonl", "csv", "parquet"], typer.Option("--format", help="jsonl, csv or parquet.")
    ] = "jsonl",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Export spans (one row per span, with its trace attributes), newest first, in one
    streamed request (GET /api/v1/export): memory stays flat whatever the size. A stream
    cut short is an error (exit 1), never a silently short file."""
    count = _export(url, api_key, filters, fmt, output, quiet)
    _console(stderr=True).print(f"exported {count:,} span(s) to {output}")


PROGRESS_EVERY = 5000  # spans between progress bar updates


def _export(url: str, api_key: str, f: dict[str, Any], fmt: Format, output: Path, quiet: bool) -> int:
    count = 0
    progress = Progress(
        SpinnerColumn(),
        TextColumn("exporting {task.completed:,} spans"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        disable=quiet,
    )
    failure: WatchkeepError | None = None
    with ExitStack() as stack, _client(url, api_key) as client, progress:
        task = progress.add_task("export", total=None, rate="")
        writer = open_writer(fmt, output, stack)
        started = time.perf_counter()
        try:
            shown = 0
            for rows in client.export_rows(**f):
                writer.write(rows)
                count += len(rows)
                if count - shown >= PROGRESS_EVERY:
                    shown = count
                    rate = count / max(time.perf_counter() - started, 1e-9)
                    progress.update(task, completed=count, rate=f"{rate:,.0f}/s")
            progress.update(task, completed=count)
        except WatchkeepError as exc:
            failure = exc
        finally:
            writer.close()
    if failure is not None:
        output.unlink(missing_ok=True)  # a partial file would pass for a whole one
        raise _fail(failure) from failure
    return count
