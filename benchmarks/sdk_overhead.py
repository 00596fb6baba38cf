"""What tracing costs the application: watchkeep's @observe against its peers.

Prints, from one run on one machine, the per-call cost on the caller's thread (p50,
p99) of a bare function, a raw OpenTelemetry span with the same GenAI attributes
(SDK BatchSpanProcessor + OTLP/HTTP exporter), ``@wk.observe`` and Langfuse's
``@observe``; the share of spans dropped in a burst of 50,000 calls; and, with the
server down, the caller-side p99, how long ``flush()`` and ``shutdown()`` block, and
the share of spans lost for good. Every SDK exports to the same local counting sink,
run in its own process so its decoding does not compete with the measured thread.

Langfuse runs from its own virtual environment (``benchmarks/peers/langfuse.sh``);
without it the table says so. Run: ``.venv/bin/python benchmarks/sdk_overhead.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from rich.console import Console
from rich.table import Table

import watchkeep as wk

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / "peers"
sys.path.insert(0, str(PEERS))
import harness  # noqa: E402

LANGFUSE_PYTHON = ROOT / ".bench" / "langfuse-venv" / "bin" / "python"
MODEL, RESPONSE_MODEL = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
GENAI_ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": MODEL,
    "gen_ai.response.model": RESPONSE_MODEL,
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 40,
    "gen_ai.response.finish_reasons": ("stop",),
}
TIMEOUT = 5.0  # given to every flush/shutdown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sink(port: int = 0) -> Iterator[str]:
    """A counting OTLP sink in a subprocess; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "watchkeep.sdk.testing", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


# --- the contenders ------------------------------------------------------------------
def bare() -> int:
    return 1


class RawOtel:
    """OpenTelemetry SDK as documented: BatchSpanProcessor + OTLP/HTTP protobuf exporter."""

    def __init__(self, url: str) -> None:
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
        tracer = self.provider.get_tracer("bench")

        def call() -> int:
            with tracer.start_as_current_span(f"chat {MODEL}", attributes=GENAI_ATTRIBUTES):
                return 1

        self.call = call

    def flush(self) -> None:
        self.provider.force_flush(int(TIMEOUT * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()


class Watchkeep:
    """``@wk.observe`` setting the same GenAI attributes through ``update_current``."""

    def __init__(self, url: str, home: str) -> None:
        self.client = wk.init(endpoint=url, api_key="bench", home=home)

        @wk.observe(name=f"chat {MODEL}", kind="llm")
        def call() -> int:
            wk.update_current(
                provider="openai",
                model=MODEL,
                response_model=RESPONSE_MODEL,
                input_tokens=120,
                output_tokens=40,
                finish_reasons=("stop",),
            )
            return 1

        self.call = call

    def flush(self) -> None:
        wk.flush(TIMEOUT)

    def shutdown(self) -> None:
        wk.shutdown(TIMEOUT)


def langfuse(mode: str, url: str) -> dict[str, float] | None:
    if not LANGFUSE_PYTHON.exists():
        return None
    done = subprocess.run(
        [str(LANGFUSE_PYTHON), str(PEERS / "langfuse_peer.py"), mode, url],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"langfuse peer failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return dict(json.loads(lines[-1]))


# --- scenarios -----------------------------------------------------------------------
def up_scenario(make: Callable[[str], Any]) -> dict[str, float]:
    """Latency with the server up, then the burst's drop share."""
    with sink() as url:
        sdk = make(url)
        result = harness.latency(sdk.call)
        sdk.flush()
        before = harness.sink_count(url)
        harness.burst(sdk.call)
        sdk.flush()
        received = harness.wait_for_count(url, before + harness.BURST, timeout=20) - before
        sdk.shutdown()
    result["burst_dropped"] = 1 - received / harness.BURST
    return result


def down_scenario(make: Callable[[str], Any], recover: Callable[[str], None]) -> dict[str, float]:
    """Server down for the whole workload and for flush/shutdown; then up: what arrives?"""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sdk = make(url)
    result = {"down_p99": harness.latency(sdk.call, harness.DOWN_CALLS)["p99"]}
    result["flush_s"] = harness.timed(sdk.flush)
    result["shutdown_s"] = harness.timed(sdk.shutdown)
    with sink(port):
        recover(url)
        received = harness.sink_count(url)
    result["down_dropped"] = 1 - received / (harness.DOWN_CALLS + 2000)  # + warm-up calls
    return result


def main() -> None:
    console = Console(width=150)
    home = tempfile.mkdtemp(prefix="wk-bench-")
    results: dict[str, dict[str, float] | None] = {}

    console.print("measuring bare function...")
    results["bare function"] = harness.latency(bare)
    console.print("measuring raw OpenTelemetry...")
    raw = up_scenario(RawOtel)
    raw.update(down_scenario(RawOtel, lambda url: None))
    results["raw OTel span (GenAI attrs)"] = raw
    console.print("measuring @wk.observe...")
    ours = up_scenario(lambda url: Watchkeep(url, home))
    spool_home = tempfile.mkdtemp(prefix="wk-bench-down-")

    def replay(url: str) -> None:  # a restarted process finds the spool and replays it
        Watchkeep(url, spool_home).client.flush(30)
        wk.shutdown(TIMEOUT)

    ours.update(down_scenario(lambda url: Watchkeep(url, spool_home), replay))
    results["@wk.observe"] = ours
    console.print("measuring Langfuse @observe (peer venv)...")
    peer = None
    if LANGFUSE_PYTHON.exists():
        with sink() as url:
            peer = langfuse("up", url)
        port = free_port()
        down = langfuse("down", f"http://127.0.0.1:{port}")
        if peer is not None and down is not None:
            with sink(port) as url:
                down["down_dropped"] = 1 - harness.sink_count(url) / (harness.DOWN_CALLS + 2000)
            peer.update(down)
    results["Langfuse @observe"] = peer
    print_table(console, results)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f}"


def print_table(console: Console, results: dict[str, dict[str, float] | None]) -> None:
    table = Table(
        title=f"SDK overhead on the caller's thread ({os.cpu_count()} CPUs, "
        f"{harness.CALLS} paced calls; burst {harness.BURST}; "
        f"server down: {harness.DOWN_CALLS} calls, timeouts {TIMEOUT:.0f} s)"
    )
    columns = [
        ("p50 µs", "p50", "µs"),
        ("p99 µs", "p99", "µs"),
        ("burst dropped", "burst_dropped", "%"),
        ("down: p99 µs", "down_p99", "µs"),
        ("down: flush", "flush_s", "s"),
        ("down: shutdown", "shutdown_s", "s"),
        ("down: lost", "down_dropped", "%"),
    ]
    table.add_column("contender")
    for title, _, _ in columns:
        table.add_column(title, justify="right")
    for name, result in results.items():
        if result is None:
            table.add_row(name, "not measured: run benchmarks/peers/langfuse.sh", *[""] * 6)
            continue
        table.add_row(name, *[_fmt(result.get(key), unit) for _, key, unit in columns])
    console.print(table)
    ours, raw = results["@wk.observe"], results["raw OTel span (GenAI attrs)"]
    peer = results.get("Langfuse @observe")
    assert ours is not None
    assert raw is not None
    console.print(
        f"@wk.observe / raw OTel span, p50: {ours['p50'] / raw['p50']:.2f} "
        f"(target <= 1.0); p99: {ours['p99'] / raw['p99']:.2f}"
    )
    if peer is not None:
        console.print(
            f"@wk.observe / Langfuse @observe, p50: {ours['p50'] / peer['p50']:.2f} "
            f"(target <= 0.20); p99: {ours['p99'] / peer['p99']:.2f}"
        )
    console.print(f"@wk.observe p99 with the server down / up: {ours['down_p99'] / ours['p99']:.2f}")


if __name__ == "__main__":
    main()
