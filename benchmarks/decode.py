"""Decode benchmark: CPU µs a span of ``decode_protobuf``, upb path against the compiled
wire decoder (``watchkeep.ingest._otlp_wire``, ADR 0031).

Both decode the same pre-encoded exports of 512 spans (``ingest.make_bodies``, Phoenix- and
agent-shaped), in one process, passes interleaved so that both see the same machine load;
each figure is the best pass in process CPU time (``time.process_time``), so other work on
a shared machine inflates it less than wall time would. The garbage collector is tuned as
the decode workers run it (``gc_tuning.tune_for_throughput``) unless ``--gc-default``.

    python benchmarks/decode.py                     # 20 exports a shape, 5 passes
    python benchmarks/decode.py --exports 40 --passes 9 --shape phoenix
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from ingest import SPANS_PER_REQUEST, make_bodies
from watchkeep.gc_tuning import tune_for_throughput
from watchkeep.ingest.decoded import DecodedExport
from watchkeep.ingest.otlp_proto import decode_protobuf_upb, decode_traces


def cpu_per_span(decode: Callable[[bytes], DecodedExport | None], bodies: list[bytes]) -> float:
    """Process CPU µs a span of one pass over ``bodies``."""
    started = time.process_time()
    for body in bodies:
        decode(body)
    return (time.process_time() - started) / (len(bodies) * SPANS_PER_REQUEST) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=20, help="exports of 512 spans a shape")
    parser.add_argument("--passes", type=int, default=5, help="interleaved passes; the best is shown")
    parser.add_argument("--shape", choices=["phoenix", "agent", "both"], default="both")
    parser.add_argument("--gc-default", action="store_true", help="leave CPython's collector settings")
    args = parser.parse_args()
    if decode_traces is None:
        raise SystemExit(
            "watchkeep.ingest._otlp_wire is not built: pip install -e . with Cython and a C compiler"
        )
    shapes = ["phoenix", "agent"] if args.shape == "both" else [args.shape]
    corpus = {shape: make_bodies(args.exports, 17, shape) for shape in shapes}
    if not args.gc_default:
        tune_for_throughput()
    n = args.exports * SPANS_PER_REQUEST
    print(f"n = {n} spans a shape, best of {args.passes} passes, process CPU µs a span")
    print(f"{'shape':8} {'upb':>8} {'compiled':>9} {'ratio':>6}")
    for shape, bodies in corpus.items():
        for body in bodies:  # the same answer, or this benchmark measures nothing useful
            if decode_traces(body) != decode_protobuf_upb(body):
                raise SystemExit(f"{shape}: the compiled decoder disagrees with upb")
        upb, compiled = [], []
        for _ in range(args.passes):
            upb.append(cpu_per_span(decode_protobuf_upb, bodies))
            compiled.append(cpu_per_span(decode_traces, bodies))
        print(f"{shape:8} {min(upb):8.2f} {min(compiled):9.2f} {min(upb) / min(compiled):5.1f}x")


if __name__ == "__main__":
    main()
