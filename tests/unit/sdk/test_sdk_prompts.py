"""wk.get_prompt: TTL cache, stale-while-revalidate, fallbacks, compile and span attributes.

The registry endpoint is served by a small in-test server (an ``OtlpSink`` that also
answers ``GET /api/v1/prompts/{name}``), so the same server receives the spans. Time is an
injected clock and background refreshes are collected and run by hand: nothing here
depends on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import pytest

import watchkeep as wk
from watchkeep import semconv
from watchkeep.sdk.client import install
from watchkeep.sdk.prompts import (
    RETRY_AFTER_FAILURE_S,
    Prompt,
    PromptStore,
    PromptUnavailable,
    parse_prompt,
    placeholders,
)
from watchkeep.sdk.testing import OtlpSink

API_KEY = "prompt-key"


def version_body(name: str, version: int, template: Any, label: str | None = "production") -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "label": label,
        "template": template,
        "variables": list(placeholders(template)),
        "model_settings": {"temperature": 0.2},
    }


class PromptServer(OtlpSink):
    """An OTLP sink that also serves the registry's prompt endpoint from ``self.prompts``."""

    def __init__(self) -> None:
        super().__init__(API_KEY)
        self.prompts: dict[tuple[str, str, str], Any] = {}
        self.seen: list[tuple[str, dict[str, str], str | None]] = []
        self.status: int | None = None  # answer this instead of the prompt
        self.gate = threading.Event()
        self.gate.set()

    def publish(self, name: str, version: int, template: Any, label: str | None = "production") -> None:
        body = version_body(name, version, template, label)
        self.prompts[(name, "version", str(version))] = body
        if label is not None:
            self.prompts[(name, "label", label)] = body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        base: Any = super()._handler()

        class Handler(base):  # type: ignore[misc]
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if not url.path.startswith("/api/v1/prompts/"):
                    super().do_GET()
                    return
                query = dict(parse_qsl(url.query))
                name = unquote(url.path.removeprefix("/api/v1/prompts/"))
                with server.state.lock:
                    server.seen.append((name, query, self.headers.get("Authorization")))
                server.gate.wait(10)
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self._reply(401)
                    return
                if server.status is not None:
                    self._reply(server.status, b"oops")
                    return
                ((kind, value),) = query.items()
                body = server.prompts.get((name, kind, value))
                if body is None:
                    self._reply(404, b'{"detail":"unknown prompt"}')
                else:
                    self._reply(200, body if isinstance(body, bytes) else orjson.dumps(body))

        return Handler


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Deferred:
    """A ``spawn`` that keeps background refreshes until the test runs them."""

    def __init__(self) -> None:
        self.tasks: list[Callable[[], None]] = []

    def __call__(self, task: Callable[[], None]) -> None:
        self.tasks.append(task)

    def run_all(self) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task()


@pytest.fixture
def server() -> Iterator[PromptServer]:
    with PromptServer() as running:
        running.publish("greet", 1, "Hello {{ user }}!")
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spawn() -> Deferred:
    return Deferred()


@pytest.fixture
def store(server: PromptServer, clock: FakeClock, spawn: Deferred) -> Iterator[PromptStore]:
    created = PromptStore(server.url, API_KEY, clock=clock, spawn=spawn)
    yield created
    created.close()


@pytest.fixture
def wk_client(server: PromptServer, tmp_path: Path) -> Iterator[None]:
    active = wk.init(endpoint=server.url, api_key=API_KEY, home=tmp_path / "home", flush_interval=0.05)
    yield
    active.shutdown(2)
    install({"enabled": False})


# --- fetching ---------------------------------------------------------------------------
@pytest.mark.usefixtures("wk_client")
def test_get_prompt_fetches_label_with_the_key_and_returns_the_version(server: PromptServer) -> None:
    prompt = wk.get_prompt("greet")
    assert prompt == Prompt(
        name="greet",
        template="Hello {{ user }}!",
        version=1,
        label="production",
        variables=("user",),
        model_settings={"temperature": 0.2},
    )
    assert not prompt.is_fallback
    assert server.seen == [("greet", {"label": "production"}, f"Bearer {API_KEY}")]


def test_version_pin_asks_for_the_version_and_never_goes_stale(
    store: PromptStore, server: PromptServer, clock: FakeClock, spawn: Deferred
) -> None:
    server.publish("greet", 2, "Hi {{ user }}", label="staging")
    assert store.get("greet", version=2, ttl_s=1).version == 2
    assert server.seen[-1][1] == {"version": "2"}
    clock.now += 10_000
    assert store.get("greet", version=2, ttl_s=1).template == "Hi {{ user }}"
    assert spawn.tasks == []
    assert store.requests == 1


def test_names_are_escaped_in_the_path(store: PromptStore, server: PromptServer) -> None:
    server.publish("team/a b", 4, "x")
    assert store.get("team/a b").version == 4
    assert server.seen[-1][0] == "team/a b"


# --- the cache --------------------------------------------------------------------------
def test_fresh_entry_is_served_from_memory(store: PromptStore, clock: FakeClock, spawn: Deferred) -> None:
    first = store.get("greet", ttl_s=60)
    clock.now += 59
    assert store.get("greet", ttl_s=60) is first
    assert store.requests == 1
    assert spawn.tasks == []


def test_stale_entry_is_served_at_once_while_one_refresh_runs(
    store: PromptStore, server: PromptServer, clock: FakeClock, spawn: Deferred
) -> None:
    store.get("greet", ttl_s=60)
    server.publish("greet", 2, "Welcome {{ user }}")
    clock.now += 61
    served = [store.get("greet", ttl_s=60) for _ in range(20)]
    assert {p.version for p in served} == {1}  # stale, without waiting for the server
    assert len(spawn.tasks) == 1  # one refresh, not twenty
    spawn.run_all()
    assert store.get("greet", ttl_s=60).version == 2
    assert store.requests == 2
    assert spawn.tasks == []


def test_server_away_keeps_the_last_good_value_and_backs_off(
    store: PromptStore, server: PromptServer, clock: FakeClock, spawn: Deferred
) -> None:
    store.get("greet", ttl_s=60)
    server.stop()
    store.close()  # a stopped sink's handler thread still answers on a kept-alive connection
    clock.now += 61
    assert store.get("greet", ttl_s=60).version == 1
    spawn.run_all()  # connection refused
    assert store.get("greet", ttl_s=60).version == 1
    assert spawn.tasks == []  # no new attempt before the back-off ends
    clock.now += RETRY_AFTER_FAILURE_S
    assert store.get("greet", ttl_s=60).version == 1
    assert len(spawn.tasks) == 1


@pytest.mark.parametrize("status", [500, 503, 404, 401])
def test_error_answers_on_refresh_keep_the_last_good_value(
    store: PromptStore, server: PromptServer, clock: FakeClock, spawn: Deferred, status: int
) -> None:
    store.get("greet", ttl_s=5)
    server.status = status
    clock.now += 6
    store.get("greet", ttl_s=5)
    spawn.run_all()
    prompt = store.get("greet", ttl_s=5)
    assert prompt.version == 1
    assert not prompt.is_fallback


def test_concurrent_cold_misses_send_one_request(server: PromptServer) -> None:
    store = PromptStore(server.url, API_KEY)
    server.gate.clear()  # hold the first request until every caller is running
    results: list[Prompt] = []
    lock = threading.Lock()

    def call() -> None:
        prompt = store.get("greet", timeout_s=10)
        with lock:
            results.append(prompt)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert server.wait_for(lambda s: len(server.seen) >= 1)
    server.gate.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert {p.version for p in results} == {1}
    assert len(server.seen) == 1
    store.close()


def test_the_default_refresh_runs_in_a_background_thread(server: PromptServer, clock: FakeClock) -> None:
    store = PromptStore(server.url, API_KEY, clock=clock)
    store.get("greet", ttl_s=1)
    server.publish("greet", 2, "Hey")
    clock.now += 2
    assert store.get("greet", ttl_s=1).version == 1
    assert server.wait_for(lambda s: store.get("greet", ttl_s=1).version == 2)
    assert store.requests == 2
    store.close()


def test_invalidate_forgets_entries(store: PromptStore, server: PromptServer) -> None:
    store.get("greet")
    server.publish("greet", 3, "Yo")
    store.invalidate("other")
    assert store.get("greet").version == 1
    store.invalidate("greet")
    assert store.get("greet").version == 3


# --- fallbacks --------------------------------------------------------------------------
def test_default_template_is_served_as_fallback_when_nothing_is_cached(
    store: PromptStore, server: PromptServer
) -> None:
    server.stop()
    prompt = store.get("greet", default="Hi {{ user }} (built-in)")
    assert prompt.is_fallback
    assert prompt.version is None
    assert prompt.label == "production"
    assert prompt.variables == ("user",)
    assert prompt.compile(user="Ada") == "Hi Ada (built-in)"


def test_default_prompt_is_returned_marked_as_fallback(store: PromptStore) -> None:
    default = Prompt(name="other", template=[{"role": "system", "content": "Be brief"}], version=7)
    prompt = store.get("missing", default=default)
    assert prompt.is_fallback
    assert prompt.template == default.template
    assert prompt.version == 7


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        (lambda s: s.stop(), "unreachable"),
        (lambda s: setattr(s, "status", 502), "server_error"),
        (lambda s: s.prompts.clear(), "not_found"),
        (lambda s: s.prompts.update({("greet", "label", "production"): b"{not json"}), "invalid"),
    ],
)
def test_no_value_and_no_default_raises_a_clear_error(
    store: PromptStore, server: PromptServer, prepare: Callable[[PromptServer], None], reason: str
) -> None:
    prepare(server)
    with pytest.raises(PromptUnavailable) as caught:
        store.get("greet")
    assert caught.value.reason == reason
    assert "greet" in str(caught.value)
    assert "default=" in str(caught.value)


def test_a_cold_failure_backs_off_before_asking_again(
    store: PromptStore, server: PromptServer, clock: FakeClock
) -> None:
    server.status = 500
    assert store.get("greet", default="x").is_fallback
    assert store.get("greet", default="x").is_fallback
    assert store.requests == 1
    server.status = None
    clock.now += RETRY_AFTER_FAILURE_S
    assert store.get("greet", default="x").version == 1


def test_without_an_api_key_the_default_is_served_and_nothing_is_sent(server: PromptServer) -> None:
    install({"enabled": False, "endpoint": server.url})
    assert wk.get_prompt("greet", default="fallback").is_fallback
    with pytest.raises(PromptUnavailable) as caught:
        wk.get_prompt("greet")
    assert caught.value.reason == "no_api_key"
    assert server.seen == []


# --- compile ----------------------------------------------------------------------------
def test_compile_substitutes_simple_placeholders_once() -> None:
    prompt = Prompt(
        name="p", template="{{ a }}+{{b}}={{  c }} {{ missing }} {% if a %}x{% endif %} {{ a|upper }}"
    )
    assert prompt.compile(a="{{ b }}", b=2, c=None) == (
        "{{ b }}+2=None {{ missing }} {% if a %}x{% endif %} {{ a|upper }}"
    )


def test_compile_fills_every_message_and_leaves_the_template_alone() -> None:
    template = [
        {"role": "system", "content": "You help {{ team }}."},
        {"role": "user", "content": [{"type": "text", "text": "Q: {{ question }}"}]},
    ]
    prompt = Prompt(name="chat", template=template)
    assert prompt.compile(team="ops", question="why?") == [
        {"role": "system", "content": "You help ops."},
        {"role": "user", "content": [{"type": "text", "text": "Q: why?"}]},
    ]
    assert template[0]["content"] == "You help {{ team }}."


def test_parse_prompt_enforces_the_contract() -> None:
    good = version_body("p", 1, [{"role": "user", "content": "{{ x }}"}])
    assert parse_prompt(good).variables == ("x",)
    assert parse_prompt({**good, "variables": None, "model_settings": None}).variables == ("x",)
    for bad in (
        [],
        {**good, "name": ""},
        {**good, "version": "1"},
        {**good, "version": True},
        {**good, "label": 3},
        {**good, "template": [{"content": "no role"}]},
        {**good, "template": None},
        {**good, "variables": "x"},
        {**good, "model_settings": [1]},
    ):
        with pytest.raises(ValueError, match=r"must be|not an object"):
            parse_prompt(bad)


# --- spans ------------------------------------------------------------------------------
@pytest.mark.usefixtures("wk_client")
def test_spans_carry_the_prompt_name_and_version(server: PromptServer) -> None:
    with wk.span("handler"):
        prompt = wk.get_prompt("greet")
        with prompt.use(), wk.span("llm-call"):
            pass
    with wk.span("after"):
        pass
    assert wk.flush(5)
    spans = {s.name: s for s in server.spans}
    for name in ("handler", "llm-call"):
        assert spans[name].attributes[semconv.WK_PROMPT_NAME] == "greet"
        assert spans[name].attributes[semconv.WK_PROMPT_VERSION] == 1
    assert semconv.WK_PROMPT_NAME not in spans["after"].attributes


@pytest.mark.usefixtures("wk_client")
def test_otel_spans_started_inside_use_carry_the_prompt(server: PromptServer) -> None:
    prompt = Prompt(name="greet", template="x", version=5)
    with prompt.use(), wk.get_tracer("test").start_as_current_span("otel-span"):
        pass
    assert wk.flush(5)
    (span,) = [s for s in server.spans if s.name == "otel-span"]
    assert span.attributes[semconv.WK_PROMPT_VERSION] == 5


@pytest.mark.usefixtures("wk_client")
def test_fallback_spans_carry_the_name_but_no_version(server: PromptServer) -> None:
    with wk.span("handler"):
        assert wk.get_prompt("unknown", default="plain").is_fallback
    assert wk.flush(5)
    (span,) = [s for s in server.spans if s.name == "handler"]
    assert span.attributes[semconv.WK_PROMPT_NAME] == "unknown"
    assert semconv.WK_PROMPT_VERSION not in span.attributes
