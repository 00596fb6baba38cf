"""Alias moves reach two ``watchkeep server`` processes on one database whole: while callers
hammer both, no process serves a half-updated route or flaps back to the old version."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from tests.support.gateway import process
from tests.support.keys import new_key
from tests.support.registry_gateway import FILE, TWO_OF_ONE_ALIAS, switches, until
from tests.support.servers import free_port

REPLIES = {1: "from v1", 2: "from v2"}
MOVES = (2, 1, 2)  # production: 1 -> 2 -> 1 -> 2
CALLERS_PER_PROCESS = 2
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@dataclass(frozen=True)
class Answer:
    """One call: when it was sent and answered (monotonic), what it said, its trace."""

    sent: float
    received: float
    reply: str
    trace_id: str | None


@contextmanager
def _server(home: Path, database_url: str, config: Path) -> Iterator[str]:
    """A ``watchkeep server`` OS process on ``database_url``, routes synced on the 1 s default."""
    port = free_port()
    env = {
        "WATCHKEEP_HOME": str(home),
        "WATCHKEEP_DATABASE_URL": database_url,
        "WATCHKEEP_GATEWAY_CONFIG": str(config),
        "WATCHKEEP_WORKER_ENABLED": "false",
        "WATCHKEEP_INGEST_DECODE_WORKERS": "0",
        "WATCHKEEP_OTLP_GRPC_PORT": "0",  # two servers: no shared default gRPC port
        "WATCHKEEP_LOG_LEVEL": "WARNING",
    }
    args = ["env", *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m", "watchkeep.cli.main"]
    url = f"http://127.0.0.1:{port}"
    with process([*args, "server", "--port", str(port)], ready_url=f"{url}/readyz"):
        yield url


def _ask(client: httpx.Client) -> tuple[str, str | None]:
    """The route's reply (or a description of the failure) and the trace id of the call."""
    try:
        response = client.post("/v1/chat/completions", json=CHAT)
    except httpx.HTTPError as exc:
        return f"failed: {exc!r}", None
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}", None
    reply = str(response.json()["choices"][0]["message"]["content"])
    return reply, response.headers.get("x-watchkeep-trace-id")


def _hammer(url: str, key: str, answers: list[Answer], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        while not stop.is_set():
            sent = time.monotonic()
            reply, trace_id = _ask(client)
            answers.append(Answer(sent, time.monotonic(), reply, trace_id))


def _serves(url: str, key: str, reply: str) -> bool:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        return _ask(client)[0] == reply


def _assert_never_back(answers: list[Answer], moved_at: list[float]) -> None:
    """Within one process: once a call got the new version after a move, every call sent later
    (and answered before the next move) gets it too."""
    for k, version in enumerate(MOVES):
        start, end = moved_at[k], (moved_at[k + 1] if k + 1 < len(moved_at) else float("inf"))
        new = REPLIES[version]
        firsts = [a.received for a in answers if start <= a.received < end and a.reply == new]
        assert firsts, f"move {k + 1} to v{version} was never served"
        stale = [a for a in answers if a.sent > min(firsts) and a.received < end and a.reply != new]
        assert not stale, f"after move {k + 1} to v{version}: {stale[:5]}"


def _stored_versions(api: httpx.Client, trace_ids: set[str]) -> dict[str, str | None]:
    """model_version of each stored gateway span of the project (every page)."""
    found: dict[str, str | None] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/spans", params=params).json()
        for span in page["items"]:
            if span["trace_id"] in trace_ids and span["name"].startswith("chat"):
                found[span["trace_id"]] = span["model_version"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_two_gateway_processes_follow_alias_moves_whole(tmp_path: Path, database_url: str) -> None:
    project = f"p-{uuid.uuid4().hex[:10]}"
    admin = {"Authorization": f"Bearer {new_key(database_url, 'admin', project)}"}
    member = new_key(database_url, "member", project)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(FILE), "utf-8")
    with (
        _server(tmp_path / "a", database_url, config) as a,
        _server(tmp_path / "b", database_url, config) as b,
        httpx.Client(base_url=a, headers=admin, timeout=30) as api_a,
        httpx.Client(base_url=b, headers=admin, timeout=30) as api_b,
    ):
        for version, reply in REPLIES.items():
            body = {"backend": "mock", "params": {"mock": {"reply": reply}}}
            created = api_a.post("/api/v1/models/bot/versions", json=body)
            assert (created.status_code, created.json()["version"]) == (201, version), created.text
        assert api_a.put("/api/v1/models/bot/aliases/production", json={"version": 1}).status_code == 200
        put = api_a.put("/api/v1/routes/chat", json=TWO_OF_ONE_ALIAS)
        assert put.status_code == 200, put.text
        for url in (a, b):  # b serves the route on its next poll
            until(lambda u=url: _serves(u, member, REPLIES[1]))

        urls = [a] * CALLERS_PER_PROCESS + [b] * CALLERS_PER_PROCESS
        seen: list[list[Answer]] = [[] for _ in urls]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hammer, args=(url, member, s, stop), daemon=True)
            for url, s in zip(urls, seen, strict=True)
        ]
        for t in threads:
            t.start()
        until(lambda: all(seen))  # every caller has an answer of v1 before the first move
        moved_at: list[float] = []
        try:
            for k, version in enumerate(MOVES):
                marks = [len(s) for s in seen]
                moved_at.append(time.monotonic())
                mover = (api_a, api_b)[k % 2]  # a move through either process reaches both
                moved = mover.put("/api/v1/models/bot/aliases/production", json={"version": version})
                assert moved.status_code == 200, moved.text
                until(
                    lambda w=REPLIES[version], ms=marks: all(
                        any(x.reply == w for x in s[m:]) for s, m in zip(seen, ms, strict=True)
                    ),
                    timeout=20,
                )
        finally:
            stop.set()
            for t in threads:
                t.join(30)

        for answers in seen:  # every answer is whole; each caller switches once per move
            replies = [x.reply for x in answers]
            assert set(replies) <= set(REPLIES.values()), sorted(set(replies) - set(REPLIES.values()))
            assert switches(replies) == len(MOVES), replies
        for callers in (seen[:CALLERS_PER_PROCESS], seen[CALLERS_PER_PROCESS:]):
            _assert_never_back([x for s in callers for x in s], moved_at)

        # The stored spans name the version that answered.
        expected = {
            x.trace_id: f"bot@{n}" for s in seen for x in s for n, r in REPLIES.items() if x.reply == r
        }
        assert None not in expected
        wanted = {str(t) for t in expected}
        stored = until(lambda: (found := _stored_versions(api_a, wanted)).keys() == wanted and found, 30)
        assert stored == expected
