"""The SDK's prompt fetch against the real server (both databases), through a relay that can
take the server away: the registry API answers the SDK's contract, a label move is seen once
the TTL has passed (not before), an outage keeps the last good value, a cold cache falls
back to the default, and ``wk.get_prompt`` stamps the version on the spans it serves
(``watchkeep.prompt.name``/``version``, stored as the span's typed columns)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.console import project_of
from tests.support.keys import new_key
from tests.support.sdk_live import Relay, from_live
from tests.support.servers import LiveServer

import watchkeep as wk
from watchkeep.sdk.client import install
from watchkeep.sdk.prompts import PromptStore, PromptUnavailable

TTL = 30.0


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_now(task: Callable[[], None]) -> None:
    """Run a background refresh at once, so the test sees its effect deterministically."""
    task()


@pytest.fixture
def relay(live_server: LiveServer) -> Iterator[Relay]:
    host, port = live_server.url.split("//")[1].split(":")
    relay = Relay((host, int(port)))
    relay.up()
    yield relay
    relay.down()


def admin(live: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    """A call with the server's member key (the team's), straight to the server."""
    headers = {"Authorization": f"Bearer {live.api_key}"}
    response = httpx.request(method, f"{live.url}/api/v1{path}", headers=headers, timeout=10, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def release(live: LiveServer, name: str) -> None:
    """Two versions of ``name``, production on v1."""
    admin(live, "POST", f"/prompts/{name}/versions", json={"template": "Hello {{ name }}!"})
    chat = [{"role": "user", "content": "Hi {{ name }}, v2"}]
    admin(
        live,
        "POST",
        f"/prompts/{name}/versions",
        json={"template": chat, "model_settings": {"temperature": 0}},
    )
    admin(live, "PUT", f"/prompts/{name}/aliases/production", json={"version": 1, "reason": "launch"})


def ingest_key(live: LiveServer) -> str:
    """What an application holds: an ingest key of the same project."""
    return new_key(live.database_url, "ingest", project_of(live.database_url, live.api_key))


def test_label_moves_are_seen_after_the_ttl_and_an_outage_keeps_the_last_good_value(
    live_server: LiveServer, relay: Relay
) -> None:
    release(live_server, "greet")
    clock = Clock()
    store = PromptStore(relay.url, ingest_key(live_server), clock=clock, spawn=run_now)
    try:
        first = store.get("greet", ttl_s=TTL)
        assert (first.version, first.label, first.template, first.is_fallback) == (
            1,
            "production",
            "Hello {{ name }}!",
            False,
        )
        assert first.compile(name="Ada") == "Hello Ada!"

        admin(
            live_server, "PUT", "/prompts/greet/aliases/production", json={"version": 2, "reason": "better"}
        )
        clock.now += TTL / 2
        assert store.get("greet", ttl_s=TTL).version == 1  # still fresh: no request
        assert store.requests == 1

        clock.now += TTL
        assert store.get("greet", ttl_s=TTL).version == 1  # stale, served at once; refresh runs
        moved = store.get("greet", ttl_s=TTL)
        assert (moved.version, moved.template, dict(moved.model_settings)) == (
            2,
            [{"role": "user", "content": "Hi {{ name }}, v2"}],
            {"temperature": 0},
        )
        assert store.requests == 2

        pinned = store.get("greet", version=1, ttl_s=TTL)
        assert (pinned.version, pinned.label) == (1, None)

        relay.down()
        admin(live_server, "POST", "/prompts/greet/aliases/production/rollback", json={"reason": "oops"})
        clock.now += 2 * TTL
        for _ in range(2):  # the refresh fails; the last good value stays
            kept = store.get("greet", ttl_s=TTL)
            assert (kept.version, kept.is_fallback) == (2, False)

        relay.up()
        clock.now += 2 * TTL
        store.get("greet", ttl_s=TTL)
        assert store.get("greet", ttl_s=TTL).version == 1  # the rollback is seen once it is back
    finally:
        store.close()


def test_a_cold_cache_falls_back_to_the_default_while_the_server_is_away(
    live_server: LiveServer, relay: Relay
) -> None:
    release(live_server, "greet")
    key = ingest_key(live_server)
    relay.down()
    store = PromptStore(relay.url, key, spawn=run_now)
    try:
        served = store.get("greet", default="Hi {{ name }} (built in)", timeout_s=2)
        assert (served.is_fallback, served.version, served.template) == (
            True,
            None,
            "Hi {{ name }} (built in)",
        )
        with pytest.raises(PromptUnavailable) as missing:
            store.get("other", timeout_s=2)
        assert missing.value.reason == "unreachable"
    finally:
        store.close()
    relay.up()
    live = PromptStore(relay.url, key, spawn=run_now)
    try:
        with pytest.raises(PromptUnavailable) as unknown:
            live.get("nope")
        assert unknown.value.reason == "not_found"
        bad_key = PromptStore(relay.url, "wk_bad_key", spawn=run_now)
        with pytest.raises(PromptUnavailable) as refused:
            bad_key.get("greet")
        assert refused.value.reason == "rejected"
        bad_key.close()
    finally:
        live.close()


def test_wk_get_prompt_stamps_the_version_on_its_spans(
    live_server: LiveServer, relay: Relay, tmp_path: Path
) -> None:
    release(live_server, "greet")
    backend = from_live(live_server)
    client = wk.init(
        endpoint=relay.url,
        api_key=ingest_key(live_server),
        home=tmp_path / "wk",
        environment="integration",
        flush_interval=0.05,
    )
    try:

        @wk.observe(name="answer")
        def answer() -> tuple[str, str | None]:
            prompt = wk.get_prompt("greet", label="production")
            text = prompt.compile(name="Ada")
            assert isinstance(text, str)
            return text, wk.current_trace_id()

        text, trace_id = answer()
        assert text == "Hello Ada!"
        assert trace_id is not None
        assert wk.flush(10)
        (span,) = backend.wait_spans(trace_id, 1)
        # Stored in the typed columns that every monitoring figure can be cut by.
        assert (span["prompt_name"], span["prompt_version"]) == ("greet", "1")
    finally:
        client.shutdown(5)
        install({"enabled": False})
