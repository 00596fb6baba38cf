"""Langfuse's ``@observe`` under the benchmark's workloads; run with the peer venv's python.

Usage: langfuse_peer.py up|down SINK_URL  ->  prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness


def main() -> None:
    mode, url = sys.argv[1], sys.argv[2]
    os.environ.update(
        {
            "LANGFUSE_HOST": url,
            "LANGFUSE_BASE_URL": url,
            "LANGFUSE_PUBLIC_KEY": "pk-lf-bench",
            "LANGFUSE_SECRET_KEY": "sk-lf-bench",
            "LANGFUSE_TRACING_ENVIRONMENT": "bench",
        }
    )
    from langfuse import get_client, observe

    langfuse = get_client()

    @observe(name="chat gpt-4o-mini", as_type="generation")
    def call() -> int:
        langfuse.update_current_generation(
            model="gpt-4o-mini",
            usage_details={"input": 120, "output": 40},
            metadata={"provider": "openai", "finish_reason": "stop"},
        )
        return 1

    result: dict[str, float] = {}
    if mode == "up":
        result.update(harness.latency(call))
        langfuse.flush()
        before = harness.sink_count(url)
        harness.burst(call)
        langfuse.flush()
        received = harness.wait_for_count(url, before + harness.BURST, timeout=20) - before
        result["burst_dropped"] = 1 - received / harness.BURST
    else:
        down = harness.latency(call, harness.DOWN_CALLS)
        result["down_p99"] = down["p99"]
        result["flush_s"] = harness.timed(langfuse.flush)
        result["shutdown_s"] = harness.timed(langfuse.shutdown)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
