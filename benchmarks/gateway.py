"""Gateway benchmark: the latency watchkeep adds, its top throughput and memory, against LiteLLM.

Everything runs on this machine: two mock OpenAI upstreams (0 ms and 50 ms, a raw
asyncio/httptools process that is never the bottleneck), ``watchkeep gateway`` (one
process, tracing every request into SQLite), and the LiteLLM proxy from its own
environment (``benchmarks/peers/litellm.sh``; the table says so when it is absent).
The load generator is an open-loop raw HTTP/1.1 client on keep-alive connections:
requests leave on schedule whatever the server does, and latency counts from the
scheduled time, so a server that falls behind cannot hide it (no coordinated omission).

    python benchmarks/gateway.py                      # the full run (200,000-request soak)
    python benchmarks/gateway.py --soak 20000 --seconds 5
    python benchmarks/gateway.py --no-loss-only --outage-seconds 5   # the no-loss phase, short

The no-loss phase (``benchmarks/gateway_outage.py``) serves calls through a database
outage and counts the traces stored afterwards by the trace ids the calls returned.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import yaml

from gateway_outage import add_arguments as add_outage_arguments
from gateway_outage import no_loss
from load_client import Result, Target, closed_loop, interleaved, rss_mib, slice_gap
from watchkeep.devtools.postgres import free_port
from watchkeep.devtools.quantiles import Quantile

ROOT = Path(__file__).resolve().parent.parent
LITELLM = Path(os.environ.get("LITELLM_VENV", ROOT / ".bench" / "litellm-venv")) / "bin" / "litellm"
MASTER_KEY = "sk-bench-" + os.urandom(24).hex()
TARGET_ADDED_P50_MS, TARGET_ADDED_P99_MS, TARGET_RPS, TARGET_GROWTH = 1.0, 5.0, 1000.0, 0.05


@contextlib.contextmanager
def started(
    args: list[str], ready: str, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[int]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[:3]} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[:3]} did not start")
            time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def routes(upstreams: dict[str, str]) -> dict[str, object]:
    return {
        "routes": [
            {
                "name": model,
                "deployments": [
                    {"name": f"mock-{model}", "backend": "openai_compatible", "base_url": f"{url}/v1"}
                ],
                "cache": {"enabled": False},
            }
            for model, url in upstreams.items()
        ]
    }


def litellm_config(upstreams: dict[str, str]) -> dict[str, object]:
    return {
        "model_list": [
            {
                "model_name": m,
                "litellm_params": {"model": f"openai/{m}", "api_base": f"{u}/v1", "api_key": "sk-mock"},
            }
            for m, u in upstreams.items()
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},  # it authenticates callers, as watchkeep does
    }


Percentiles = tuple[float, float, float]  # added p50, p95, p99 in ms


@dataclass
class Figures:
    added: dict[str, Percentiles] = field(default_factory=dict)  # label -> added ms
    cpu_us: dict[str, tuple[float, float]] = field(default_factory=dict)  # label -> (ours, bare) a call
    errors: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    rss_warm: float = 0.0
    rss_soak: float = 0.0
    soaked: int = 0
    note: str = ""
    floor: dict[str, Percentiles] = field(default_factory=dict)  # the bare forwarder's added ms
    ttft: dict[str, Percentiles] = field(default_factory=dict)  # added time to the first chunk
    floor_ttft: dict[str, Percentiles] = field(default_factory=dict)
    # watchkeep's p50 minus the bare forwarder's, slice by slice (``load_client.slice_gap``):
    # whole answers, and first chunks of streams.
    gap: dict[str, Quantile] = field(default_factory=dict)
    ttft_gap: dict[str, Quantile] = field(default_factory=dict)
    ttft_added: dict[str, Quantile] = field(default_factory=dict)  # over the direct upstream, by slice


def run_all(args: argparse.Namespace) -> tuple[Figures, Figures | None, str]:
    tmp = Path(tempfile.mkdtemp(prefix="wk-gw-bench-"))
    up0, up50 = free_port(), free_port()
    mock = [sys.executable, "-m", "watchkeep.devtools.mock_upstream"]
    upstreams = {"m0": f"http://127.0.0.1:{up0}", "m50": f"http://127.0.0.1:{up50}"}
    rates = [float(r) for r in args.rates.split(",")]
    with (
        started([*mock, "--port", str(up0)], f"{upstreams['m0']}/_stats"),
        started([*mock, "--port", str(up50), "--latency-ms", "50"], f"{upstreams['m50']}/_stats"),
    ):
        direct = _Router(up0, up50)
        with _watchkeep(tmp, upstreams, args) as ours_target, _bare(upstreams, args) as bare:
            ours = asyncio.run(_measure_routed(ours_target, direct, args, rates, bare))
        ours.note = f"{args.workers} worker(s), every request traced into SQLite"
        peer, peer_note = (
            (None, "skipped") if args.latency_only else _litellm(tmp, upstreams, args, rates, direct)
        )
    return ours, peer, peer_note


class _Router(Target):
    """Calls the direct upstream of each model (m0 and m50 live on different ports)."""

    def __init__(self, port0: int, port50: int) -> None:
        super().__init__("direct", "127.0.0.1", port0, "/v1/chat/completions", "none")
        self.port50 = port50

    def plain(self, model: str) -> Target:
        port = self.port if model == "m0" else self.port50
        return Target("direct", "127.0.0.1", port, "/v1/chat/completions", "none")


def _over(base: Result, run: Result) -> Percentiles:
    return tuple(run.pct(q) - base.pct(q) for q in (0.5, 0.95, 0.99))  # type: ignore[return-value]


async def _added(
    target: Target,
    direct: _Router,
    args: argparse.Namespace,
    rates: list[float],
    figures: Figures,
    floor: Target | None = None,
) -> None:
    """Added p50/p95/p99 over calling each upstream directly, at each open-loop rate, and
    with ``floor`` (the bare forwarder) measured in the same interleaved slices, its figures
    and both proxies' added time to the first streamed chunk at the highest rate."""
    proxies = [target] if floor is None else [target, floor]
    for proxy in proxies:
        await closed_loop(proxy, "m0", 8, 2.0)
    for model in ("m0", "m50"):
        for rate in rates:
            base, run, *bare = await interleaved([direct.plain(model), *proxies], model, rate, args.seconds)
            label = f"{model[1:]} ms @ {rate:g}/s"
            figures.added[label] = _over(base, run)
            figures.errors[label] = run.errors
            if bare:
                figures.floor[label] = _over(base, bare[0])
                figures.gap[label] = slice_gap(run, bare[0])
            figures.cpu_us[label] = (run.cpu_us_per_call, bare[0].cpu_us_per_call if bare else float("nan"))
        if floor is not None and args.ttft_seconds > 0:
            rate = max(rates)
            base, run, bare_run = await interleaved(
                [direct.plain(model), target, floor], model, rate, args.ttft_seconds, stream=True
            )
            label = f"{model[1:]} ms @ {rate:g}/s"
            figures.ttft[label], figures.floor_ttft[label] = _over(base, run), _over(base, bare_run)
            figures.ttft_gap[label] = slice_gap(run, bare_run)
            figures.ttft_added[label] = slice_gap(run, base)
            figures.cpu_us[f"stream {label}"] = (run.cpu_us_per_call, bare_run.cpu_us_per_call)
            figures.errors[f"stream {label}"] = run.errors + bare_run.errors


async def _measure_routed(
    target: Target,
    direct: _Router,
    args: argparse.Namespace,
    rates: list[float],
    floor: Target | None = None,
    peer: bool = False,
) -> Figures:
    figures = Figures()
    await _added(target, direct, args, rates, figures, floor)
    if args.latency_only:
        return figures
    top = await closed_loop(target, "m0", args.concurrency, args.seconds)
    figures.rps = top.rps
    figures.errors["throughput"] = top.errors
    assert target.pid is not None
    # Memory settles over the first requests (allocator arenas, SQLite's page cache, pools):
    # the warm reading comes after a warm-up soak, so growth means what keeps growing.
    await closed_loop(target, "m0", args.concurrency, 3600, limit=args.peer_warmup if peer else args.warmup)
    figures.rss_warm = rss_mib(target.pid)
    soaked = await closed_loop(
        target, "m0", args.concurrency, 3600, limit=args.peer_soak if peer else args.soak
    )
    figures.soaked = len(soaked.latencies_ms)
    figures.errors["soak"] = soaked.errors
    figures.rss_soak = rss_mib(target.pid)
    return figures


@contextlib.contextmanager
def _watchkeep(tmp: Path, upstreams: dict[str, str], args: argparse.Namespace) -> Iterator[Target]:
    config = tmp / "routes.yaml"
    config.write_text(yaml.safe_dump(routes(upstreams)))
    env = {**os.environ, "WATCHKEEP_HOME": str(tmp / "home"), "WATCHKEEP_LOG_LEVEL": "WARNING"}
    exe = [sys.executable, "-m", "watchkeep.cli.main"]
    key = subprocess.run(
        [*exe, "keys", "create", "--project", "bench"], env=env, check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    port = free_port()
    with started(
        [*exe, "gateway", "--port", str(port), "--workers", str(args.workers), "--config", str(config)],
        f"http://127.0.0.1:{port}/readyz",
        env,
    ) as pid:
        yield Target("watchkeep", "127.0.0.1", port, "/v1/chat/completions", key, pid)


@contextlib.contextmanager
def _bare(upstreams: dict[str, str], args: argparse.Namespace) -> Iterator[Target]:
    """benchmarks/bare_forwarder.py, with as many workers as watchkeep."""
    env = {
        **os.environ,
        "UPSTREAMS": orjson.dumps(upstreams).decode(),
        "PYTHONPATH": str(ROOT / "benchmarks"),
    }
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bare_forwarder:app", "--port", str(port), "--no-access-log"]
    cmd += ["--log-level", "warning", "--workers", str(args.workers)]
    with started(cmd, f"http://127.0.0.1:{port}/readyz", env) as pid:
        yield Target("bare", "127.0.0.1", port, "/v1/chat/completions", "none", pid)


def _litellm(
    tmp: Path, upstreams: dict[str, str], args: argparse.Namespace, rates: list[float], direct: _Router
) -> tuple[Figures | None, str]:
    if not LITELLM.exists():
        return None, f"LiteLLM not installed: run benchmarks/peers/litellm.sh ({LITELLM} missing)"
    version = subprocess.run(
        [str(LITELLM.parent / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    config = tmp / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(upstreams)))
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    port = free_port()
    cmd = [
        str(LITELLM),
        "--config",
        str(config),
        "--port",
        str(port),
        "--num_workers",
        str(args.peer_workers),
    ]
    try:
        with started(cmd, f"http://127.0.0.1:{port}/health/liveliness", env, timeout=180) as pid:
            target = Target("litellm", "127.0.0.1", port, "/v1/chat/completions", MASTER_KEY, pid)
            figures = asyncio.run(_measure_routed(target, direct, args, rates, peer=True))
    except RuntimeError as exc:
        return None, f"LiteLLM {version} failed: {exc}"
    return figures, f"LiteLLM {version}, {args.peer_workers} worker(s)"


def args_latency_only(figures: Figures) -> bool:
    """A ``--latency-only`` run: no throughput, soak or memory figures."""
    return figures.rps == 0.0


def table(ours: Figures, peer: Figures | None, peer_note: str) -> str:
    rows = [f"{'figure':42} {'watchkeep':>12} {'LiteLLM':>12} {'ratio':>8} {'bare fwd':>9}"]

    def row(name: str, a: float, b: float | None, unit: str, floor: float | None = None) -> None:
        higher_better = "requests/s" in name
        ratio = ""
        if b is not None and a and b:
            ratio = f"{(a / b if higher_better else b / a):.1f}x"
        bs = f"{b:.2f}{unit}" if b is not None else "n/a"
        fs = f"{floor:.2f}" if floor is not None else ""
        rows.append(f"{name:42} {a:>10.2f}{unit:2} {bs:>12} {ratio:>8} {fs:>9}")

    for label, ms in ours.added.items():
        theirs = peer.added.get(label) if peer else None
        floor = ours.floor.get(label)
        for i, q in enumerate(("p50", "p95", "p99")):
            row(
                f"added {q} ms, upstream {label}",
                ms[i],
                theirs[i] if theirs else None,
                "",
                floor[i] if floor else None,
            )
    for label, ms in ours.ttft.items():
        floor = ours.floor_ttft.get(label)
        for i, q in enumerate(("p50", "p95")):
            row(f"stream 1st chunk added {q}, {label}", ms[i], None, "", floor[i] if floor else None)
    for label, (cpu, bare_cpu) in ours.cpu_us.items():
        row(f"server CPU µs a call, {label}", cpu, None, "", bare_cpu)
    for name, gaps in (
        ("gap to bare fwd, p50", ours.gap),
        ("gap to bare fwd, stream 1st chunk p50", ours.ttft_gap),
        ("stream 1st chunk added p50", ours.ttft_added),
    ):
        for label, gap in gaps.items():
            rows.append(
                f"{name}, {label}: {gap.format(' ms', 2)} (median of {gap.n} slices' differences, 95 % interval)"
            )
    if args_latency_only(ours):
        rows.append(f"errors: watchkeep {ours.errors}")
        return "\n".join(rows)
    row("sustained requests/s (0 ms)", ours.rps, peer.rps if peer else None, "")
    row("RSS MiB after warm-up", ours.rss_warm, peer.rss_warm if peer else None, "")
    row("RSS MiB after soak", ours.rss_soak, peer.rss_soak if peer else None, "")
    growth = (ours.rss_soak - ours.rss_warm) / ours.rss_warm
    rows.append(f"soak: watchkeep {ours.soaked} requests" + (f", LiteLLM {peer.soaked}" if peer else ""))
    rows.append(f"errors: watchkeep {ours.errors}" + (f"; LiteLLM {peer.errors}" if peer else ""))
    rows.append(f"watchkeep: {ours.note}; peer: {peer_note}")
    rows.append("bare fwd: benchmarks/bare_forwarder.py (uvicorn + aiohttp, nothing else), same workers")
    at_200 = [v for k, v in ours.added.items() if "@ 200/s" in k]
    p50 = max((v[0] for v in at_200), default=float("nan"))
    p99 = max((v[2] for v in at_200), default=float("nan"))
    rows.append(
        f"targets: added p50 <= 1 ms at 200/s (worst {p50:.2f}): "
        f"{'met' if p50 <= TARGET_ADDED_P50_MS else 'MISSED'}; "
        f"p99 <= 5 ms at 200/s (worst {p99:.2f}): {'met' if p99 <= TARGET_ADDED_P99_MS else 'MISSED'}; "
        f">= 1000 requests/s: {'met' if ours.rps >= TARGET_RPS else 'MISSED'}; "
        f"memory growth < 5 % ({growth * 100:.1f} %): {'met' if growth < TARGET_GROWTH else 'MISSED'}"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="20,200", help="Open-loop request rates for the latency figures.")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="Length of each latency and throughput run."
    )
    parser.add_argument(
        "--ttft-seconds",
        type=float,
        default=6.0,
        help="Length of each streaming run (time to the first chunk; 0 skips it).",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="Only the added latency and time to first chunk (no throughput, soak, memory or peer).",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--warmup", type=int, default=20_000, help="Requests before the first memory reading."
    )
    parser.add_argument("--peer-warmup", type=int, default=1_000)
    parser.add_argument(
        "--soak", type=int, default=200_000, help="Requests before the second memory reading."
    )
    parser.add_argument(
        "--peer-soak", type=int, default=5_000, help="LiteLLM's soak (it runs ~40 requests/s)."
    )
    parser.add_argument("--workers", type=int, default=2, help="watchkeep gateway processes.")
    parser.add_argument("--peer-workers", type=int, default=2, help="LiteLLM proxy workers.")
    add_outage_arguments(parser)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if not args.no_loss_only:
        ours, peer, note = run_all(args)
        print(table(ours, peer, note))
    print(no_loss(args, started), flush=True)


if __name__ == "__main__":
    main()
