"""Routes naming registered models and prompts by alias: alias moves reach every gateway, whole."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import openai
import pytest
from tests.support.gateway import LiveGateway, live_gateway
from tests.support.keys import new_key
from tests.support.registry_gateway import FILE, TWO_OF_ONE_ALIAS, switches, until

from watchkeep.registry.repository import RegistryRepository

BY_ALIAS = {"deployments": [{"name": "a", "backend": "registry", "model": "bot@production"}]}


def _project_id(gw: LiveGateway, key: str | None = None) -> int:
    principal = gw.app.state.services.keys.verify(key or gw.key)
    assert principal is not None
    return int(principal.project_id)


def _registry(gw: LiveGateway) -> RegistryRepository:
    store: RegistryRepository = gw.app.state.services.registry_store
    return store


def _admin(gw: LiveGateway) -> dict[str, str]:
    project = str(gw.app.state.services.keys.verify(gw.key).project_name)
    return {"Authorization": f"Bearer {new_key(gw.database_url, 'admin', project)}"}


def _bot(gw: LiveGateway, *replies: str) -> int:
    """Register ``bot`` versions answering ``replies``; ``production`` on version 1."""
    project, registry = _project_id(gw), _registry(gw)
    for reply in replies:
        registry.register_model(project, "bot", backend="mock", params={"mock": {"reply": reply}})
    registry.move_alias(project, "model", "bot", "production", 1, actor="test")
    return project


def _client(gw: LiveGateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key or gw.key, max_retries=0)


def _say(client: openai.OpenAI, model: str) -> str:
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return str(reply.choices[0].message.content)


def _served(client: openai.OpenAI) -> str | None:
    """The route's answer, or None while this gateway does not serve it yet."""
    try:
        return _say(client, "chat")
    except openai.NotFoundError:
        return None


def test_a_route_by_alias_follows_the_alias_and_spans_carry_the_version(
    tmp_path: Path, database_url: str
) -> None:
    with live_gateway(tmp_path, database_url, FILE) as gw:
        project = _bot(gw, "from v1", "from v2")
        with httpx.Client(base_url=gw.url, headers=_admin(gw)) as admin:
            put = admin.put("/api/v1/routes/chat", json=BY_ALIAS)
            assert put.status_code == 200, put.text
            assert put.json()["deployments"][0]["model"] == "bot@production"  # as stored
        client = _client(gw)
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().choices[0].message.content == "from v1"
        span = gw.wait_span(raw.headers["x-watchkeep-trace-id"])
        assert (span["request_model"], span["model_version"]) == ("chat", "bot@1")
        assert span["provider"] == "mock"

        _registry(gw).move_alias(project, "model", "bot", "production", 2, actor="test")
        until(lambda: _say(client, "chat") == "from v2")  # the next poll (every second) reloads
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert gw.wait_span(raw.headers["x-watchkeep-trace-id"])["model_version"] == "bot@2"

        # Calls by reference: a version, an alias; unknown ones are 404 model_not_found.
        assert _say(client, "bot@1") == "from v1"
        assert _say(client, "bot@production") == "from v2"
        for unknown in ("bot@9", "bot@staging", "nobody@1"):
            with pytest.raises(openai.NotFoundError) as missing:
                _say(client, unknown)
            assert missing.value.code == "model_not_found"
        # Another project's caller cannot reach this project's model by name.
        stranger = _client(gw, new_key(database_url))
        with pytest.raises(openai.NotFoundError):
            _say(stranger, "bot@1")


def test_a_reference_that_does_not_resolve_is_refused_and_not_served(
    tmp_path: Path, database_url: str
) -> None:
    with live_gateway(tmp_path, database_url, FILE) as gw:
        project = _bot(gw, "from v1")
        with httpx.Client(base_url=gw.url, headers=_admin(gw)) as admin:
            no_alias = {"deployments": [{"name": "a", "backend": "registry", "model": "bot@canary"}]}
            refused = admin.put("/api/v1/routes/chat", json=no_alias)
            assert refused.status_code == 422
            assert "has no alias 'canary'" in refused.json()["error"]["message"]
            no_prompt = {**BY_ALIAS, "prompt": "greet@production"}
            assert admin.put("/api/v1/routes/chat", json=no_prompt).status_code == 422
            # Another project's registered name does not resolve here.
            other = new_key(database_url, "admin")
            other_admin = {"Authorization": f"Bearer {other}"}
            elsewhere = admin.put("/api/v1/routes/chat", json=BY_ALIAS, headers=other_admin)
            assert elsewhere.status_code == 422
            assert "not registered" in elsewhere.json()["error"]["message"]
            # Params that are not deployment fields are named.
            _registry(gw).register_model(project, "odd", backend="mock", params={"reply": "x"})
            odd = {"deployments": [{"name": "a", "backend": "registry", "model": "odd@1"}]}
            message = admin.put("/api/v1/routes/chat", json=odd).json()["error"]["message"]
            assert "params reply are not deployment fields" in message


def test_a_model_version_cannot_reach_what_a_route_may_not(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_UNBOUND_SECRET", "sk-secret")
    with live_gateway(tmp_path, database_url, FILE) as gw:
        project = _bot(gw, "from v1")
        registry = _registry(gw)
        metadata, _ = registry.register_model(
            project, "bot", backend="openai_compatible", params={"base_url": "http://169.254.169.254/v1"}
        )
        secret, _ = registry.register_model(
            project,
            "bot",
            backend="openai_compatible",
            params={"base_url": "https://api.example.com/v1", "api_key_env": "WK_UNBOUND_SECRET"},
        )
        with httpx.Client(base_url=gw.url, headers=_admin(gw)) as admin:
            for version, why in ((metadata.version, "egress"), (secret.version, "api_key_env")):
                route = {"deployments": [{"name": "a", "backend": "registry", "model": f"bot@{version}"}]}
                refused = admin.put("/api/v1/routes/chat", json=route)
                assert refused.status_code == 422
                assert why in refused.json()["error"]["message"]
            assert admin.put("/api/v1/routes/chat", json=BY_ALIAS).status_code == 200
        client = _client(gw)
        assert _say(client, "chat") == "from v1"
        # Moving the alias onto the metadata address withdraws the route on the next reload.
        registry.move_alias(project, "model", "bot", "production", metadata.version, actor="test")

        until(lambda: _served(client) is None)
        with pytest.raises(openai.PermissionDeniedError):
            _say(client, f"bot@{secret.version}")


def test_a_prompt_route_renders_and_traces_the_prompt_version(tmp_path: Path, database_url: str) -> None:
    with live_gateway(tmp_path, database_url, FILE) as gw:
        project = _bot(gw, "from v1")
        registry = _registry(gw)
        for greeting in ("Hello", "Howdy"):
            registry.register_prompt(
                project,
                "greet",
                template=[{"role": "system", "content": greeting + " {{ who }}"}],
                model_settings={"temperature": 0},
            )
        registry.move_alias(project, "prompt", "greet", "production", 1, actor="test")
        with httpx.Client(base_url=gw.url, headers=_admin(gw)) as admin:
            put = admin.put("/api/v1/routes/chat", json={**BY_ALIAS, "prompt": "greet@production"})
            assert put.status_code == 200, put.text
        client = _client(gw)
        asked = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        raw = client.chat.completions.with_raw_response.create(
            **asked, extra_body={"prompt_variables": {"who": "Ada"}}
        )
        assert raw.parse().choices[0].message.content == "from v1"
        span = gw.wait_span(raw.headers["x-watchkeep-trace-id"])
        assert (span["prompt_name"], span["prompt_version"]) == ("greet", "1")
        assert span["attributes"]["gen_ai.request.temperature"] == 0  # the prompt's setting

        for bad, named in (({}, "who"), ({"who": "Ada", "extra": 1}, "extra"), ("Ada", "prompt_variables")):
            with pytest.raises(openai.BadRequestError) as refused:
                client.chat.completions.create(**asked, extra_body={"prompt_variables": bad})
            assert named in str(refused.value.message)
        with pytest.raises(openai.BadRequestError, match="has none"):
            client.chat.completions.create(
                model="plain", messages=asked["messages"], extra_body={"prompt_variables": {"who": "x"}}
            )
        # Variables are data: they cannot reach the sandbox's internals.
        escape = {"who": "{{ ''.__class__.__mro__ }}"}
        raw = client.chat.completions.with_raw_response.create(
            **asked, extra_body={"prompt_variables": escape}
        )
        assert raw.parse().choices[0].message.content == "from v1"

        # The cached answer of prompt v1 never serves v2: its span says v2.
        registry.move_alias(project, "prompt", "greet", "production", 2, actor="test")

        def on_v2() -> bool:
            raw = client.chat.completions.with_raw_response.create(
                **asked, extra_body={"prompt_variables": {"who": "Ada"}}
            )
            span = gw.wait_span(raw.headers["x-watchkeep-trace-id"])
            return bool(
                span["prompt_version"] == "2" and not span["attributes"]["watchkeep.gateway.cache_hit"]
            )

        until(on_v2)


def _hammer(client: openai.OpenAI, seen: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        seen.append(_say(client, "chat"))


def test_two_gateways_follow_alias_moves_whole(tmp_path: Path, database_url: str) -> None:
    """Every answer is v1's or v2's; each caller switches exactly once per move (so no
    process ever serves the two deployments of one alias from different versions)."""
    with (
        live_gateway(tmp_path / "a", database_url, FILE) as a,
        live_gateway(tmp_path / "b", database_url, FILE) as b,
    ):
        project = _bot(a, "from v1", "from v2")
        with httpx.Client(base_url=a.url, headers=_admin(a)) as admin:
            assert admin.put("/api/v1/routes/chat", json=TWO_OF_ONE_ALIAS).status_code == 200
        clients = [_client(gw, a.key) for gw in (a, a, b, b)]  # one project, two gateways
        until(lambda: all(_served(c) == "from v1" for c in clients))  # b serves it on its next poll
        seen: list[list[str]] = [[] for _ in clients]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hammer, args=(c, s, stop), daemon=True)
            for c, s in zip(clients, seen, strict=True)
        ]
        for t in threads:
            t.start()
        until(lambda: all(seen))  # every caller has an answer of v1 before the first move
        moves = [2, 1, 2, 1]
        try:
            for version in moves:
                marks = [len(s) for s in seen]
                _registry(a).move_alias(project, "model", "bot", "production", version, actor="test")
                until(
                    lambda w=f"from v{version}", ms=marks: all(
                        w in s[m:] for s, m in zip(seen, ms, strict=True)
                    )
                )
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        for answers in seen:
            assert set(answers) <= {"from v1", "from v2"}
            assert switches(answers) == len(moves), answers
