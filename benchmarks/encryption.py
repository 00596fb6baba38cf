"""Cost of encryption at rest: AES-256-GCM seal and open of span payloads.

Prints throughput (MB/s) and microseconds per 800-character payload, and the cost per
span (two payloads, input and output, sealed on ingest). The payload here repeats one
sentence, so v2's zstd shrinks it far more than real text: ``payload_bytes.py`` measures
sizes and CPU on the ingest benchmark's messages. Run: .venv/bin/python benchmarks/encryption.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from watchkeep.security.crypto import Keyring, new_key
from watchkeep.store.sealing import row_aad

PAYLOAD = ('{"role":"user","content":"' + "Summarise the quarterly report for the board. " * 20)[:798] + '"}'
ROUNDS = 20_000


def _timed(fn: Callable[[], object], rounds: int) -> float:
    start = time.process_time()  # CPU time: the machine is shared
    for _ in range(rounds):
        fn()
    return time.process_time() - start


def main() -> None:
    ring = Keyring.from_keys(new_key())
    aad = row_aad("span_payloads", "input", 1)
    sealed = ring.seal(PAYLOAD, aad)
    seal_s = _timed(lambda: ring.seal(PAYLOAD, aad), ROUNDS)
    open_s = _timed(lambda: ring.open(sealed, aad), ROUNDS)
    mb = len(PAYLOAD.encode()) * ROUNDS / 1e6
    print(f"payload: {len(PAYLOAD)} chars, stored as {len(sealed)} chars sealed")
    print(f"seal: {mb / seal_s:8.1f} MB/s  {seal_s / ROUNDS * 1e6:6.2f} us/payload")
    print(f"open: {mb / open_s:8.1f} MB/s  {open_s / ROUNDS * 1e6:6.2f} us/payload")
    print(f"ingest cost: {2 * seal_s / ROUNDS * 1e6:.2f} us/span (input and output sealed)")


if __name__ == "__main__":
    main()
