"""The server goes away mid-run: the app sees nothing, and every span arrives later.

.venv/bin/python examples/sdk_outage.py
"""

from __future__ import annotations

import tempfile

import watchkeep as wk
from watchkeep.sdk.testing import OtlpSink


@wk.observe
def handle(request_id: int) -> str:
    wk.update_current(model="demo", input_tokens=10, output_tokens=2)
    return f"ok {request_id}"


def main() -> None:
    sink = OtlpSink("demo-key").start()
    client = wk.init(endpoint=sink.url, api_key="demo-key", home=tempfile.mkdtemp())
    sink.stop()  # the server is down for the whole workload
    for i in range(1000):
        handle(i)
    wk.flush(2)
    print("while down:", client.stats())
    sink.start()  # back, on the same port
    wk.flush(10)
    print("after replay:", client.stats())
    print("spans received:", len(sink.spans))
    wk.shutdown(5)
    sink.stop()


if __name__ == "__main__":
    main()
