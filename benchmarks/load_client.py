"""An open-loop raw HTTP/1.1 load generator for the gateway benchmarks, and what it measures.

Requests leave on schedule on keep-alive connections whatever the server does, and latency
counts from the scheduled time, so a server that falls behind cannot hide it (no
coordinated omission). ``interleaved`` runs several targets in alternating slices, and
each ``Result`` remembers where each slice's latencies start, so a figure that compares
two targets can be taken slice by slice: this VM's speed drifts within seconds, and the
spread between slices is the honest uncertainty of such a comparison (``slice_gap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from watchkeep.devtools.quantiles import Quantile, quantile_interval

BODY = {
    "messages": [{"role": "user", "content": "Say something short."}],
    "temperature": 0.7,
    "max_tokens": 16,
}
IDLE_LIMIT_S = 3.0  # below the servers' keep-alive timeout


@dataclass
class Target:
    """Something to send chat completions to."""

    name: str
    host: str
    port: int
    path: str
    key: str
    pid: int | None = None

    def raw(self, model: str, stream: bool = False) -> bytes:
        body = orjson.dumps({**BODY, "model": model, **({"stream": True} if stream else {})})
        return (
            f"POST {self.path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {self.key}\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode() + body


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0  # the server's CPU (all its processes and threads) during the calls
    slice_starts: list[int] = field(default_factory=list)  # where each open-loop run's latencies begin

    @property
    def cpu_us_per_call(self) -> float:
        """The server's CPU µs a call: what it costs the machine, whatever the load around it."""
        return self.cpu_s / len(self.latencies_ms) * 1e6 if self.latencies_ms else float("nan")

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(len(data) * q))] if data else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def slice_pcts(self, q: float) -> list[float]:
        """The ``q`` percentile of each slice's latencies (``interleaved``), in order."""
        ends = [*self.slice_starts[1:], len(self.latencies_ms)]
        return [Result(self.latencies_ms[a:b]).pct(q) for a, b in zip(self.slice_starts, ends, strict=True)]


def slice_gap(run: Result, other: Result, q: float = 0.5) -> Quantile:
    """How much later ``run``'s ``q`` percentile came than ``other``'s, slice by slice: the
    median over the interleaved slices of their difference, with its order-statistic
    interval (n = slices). Slices, not requests, are the independent units: requests in
    one slice share the machine's state, and the machine drifts between slices."""
    pairs = zip(run.slice_pcts(q), other.slice_pcts(q), strict=True)
    diffs = [a - b for a, b in pairs if a == a and b == b]  # a slice of errors alone has none
    return quantile_interval(diffs, 0.5) if diffs else Quantile(float("nan"), float("nan"), float("nan"), 0)


class Conn:
    """One keep-alive HTTP/1.1 connection that reads exactly one response per request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def send(self, raw: bytes) -> tuple[int, float]:
        """The status and when the first chunk of the body arrived (a streamed answer's first
        event; the whole body otherwise)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        first = 0.0
        at = lower.find(b"content-length:")
        if at >= 0:
            length = int(lower[at + 15 : lower.find(b"\r\n", at)])
            await self.reader.readexactly(length)
        elif b"chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                first = first or time.perf_counter()
                if size == 0:
                    break
        return status, first or time.perf_counter()


class Pool:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.idle: list[Conn] = []

    async def _connection(self) -> Conn:
        """An idle connection the server has not timed out, or a new one.

        Servers close keep-alive connections idle for 5 s (uvicorn's default): a request
        written into one as it closes fails with no response, which is the client's doing,
        so connections idle for 3 s are closed here first, as HTTP client pools do.
        """
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < IDLE_LIMIT_S and not conn.reader.at_eof():
                return conn
            conn.writer.close()
        return Conn(*await asyncio.open_connection(self.target.host, self.target.port))

    async def send(self, raw: bytes) -> float | None:
        """When the answer's first body chunk arrived; None when the call failed."""
        conn = await self._connection()
        try:
            status, first = await conn.send(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn.writer.close()
            return None
        conn.idle_since = time.monotonic()
        self.idle.append(conn)
        return first if status == 200 else None

    def close(self) -> None:
        for conn in self.idle:
            conn.writer.close()
        self.idle.clear()


async def open_loop(
    target: Target,
    model: str,
    rate: float,
    seconds: float,
    pool: Pool | None = None,
    result: Result | None = None,
    stream: bool = False,
) -> Result:
    """``rate`` requests/s for ``seconds``; latency from each request's scheduled time to the
    whole answer, or with ``stream`` to its first streamed chunk (time to first chunk).

    With ``pool`` and ``result`` given, connections stay open and latencies accumulate
    across calls (the interleaved slices of ``interleaved``).
    """
    own_pool = pool is None
    pool = pool or Pool(target)
    raw, result = target.raw(model, stream), result or Result()
    start = time.perf_counter() + 0.05
    count = int(rate * seconds)

    async def one(at: float) -> None:
        first = await pool.send(raw)
        if first is not None:
            result.latencies_ms.append(((first if stream else time.perf_counter()) - at) * 1000)
        else:
            result.errors += 1

    result.slice_starts.append(len(result.latencies_ms))
    cpu_before = cpu_seconds(target.pid) if target.pid is not None else 0.0
    tasks = []
    for i in range(count):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at)))
    await asyncio.gather(*tasks)
    result.seconds += max(time.perf_counter() - start, seconds)
    if target.pid is not None:
        result.cpu_s += cpu_seconds(target.pid) - cpu_before
    if own_pool:
        pool.close()
    return result


async def interleaved(
    targets: list[Target], model: str, rate: float, seconds: float, stream: bool = False, slices: int = 16
) -> list[Result]:
    """Open-loop runs of each target (the upstream alone first), interleaved.

    Each gets ``seconds`` in all, cut into slices taken in ABBA order (direct, proxies...,
    proxies... reversed, direct, ...): this VM's speed drifts by a fifth within seconds, and
    back-to-back runs would count that drift as latency a proxy added.
    """
    pools = [Pool(t) for t in targets]
    results = [Result() for _ in targets]
    for i in range(slices):
        order = range(len(targets)) if i % 2 == 0 else reversed(range(len(targets)))
        for k in order:
            await open_loop(targets[k], model, rate, seconds / slices, pools[k], results[k], stream)
    for pool in pools:
        pool.close()
    return results


async def closed_loop(
    target: Target, model: str, concurrency: int, seconds: float, limit: int | None = None
) -> Result:
    """``concurrency`` clients back to back, for ``seconds`` or ``limit`` requests in all."""
    pool, raw, result = Pool(target), target.raw(model), Result()
    start = time.perf_counter()
    deadline = start + seconds
    sent = 0

    async def client() -> None:
        nonlocal sent
        while time.perf_counter() < deadline and (limit is None or sent < limit):
            sent += 1
            t = time.perf_counter()
            if await pool.send(raw) is not None:
                result.latencies_ms.append((time.perf_counter() - t) * 1000)
            else:
                result.errors += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    pool.close()
    return result


def _process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (workers fork or spawn)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants."""
    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and its descendants so far (every thread)."""
    ticks = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _TICKS
