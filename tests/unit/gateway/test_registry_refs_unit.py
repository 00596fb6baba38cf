"""Registry references as the gateway sees them: the version-to-deployment mapping, prompt
bindings, one lookup per reference per load, and the bounded routes of calls by reference."""

from __future__ import annotations

import asyncio

import pytest

from watchkeep.gateway.config import DeploymentSpec, GatewayConfig, RouteSpec
from watchkeep.gateway.refs import PromptBinding, RefError, ResolvedModel
from watchkeep.gateway.route_sync import Resolution
from watchkeep.gateway.routing import ADHOC_PER_PROJECT, LoadedRoute, RouteTable
from watchkeep.registry.gateway_refs import RegistryPrompt, model_deployment
from watchkeep.registry.prompts import PromptContent, PromptError, compile_prompt

REF = DeploymentSpec(name="a", backend="registry", model="bot@production", weight=3, timeout_s=7)


def test_a_model_version_becomes_the_route_deployment() -> None:
    spec = model_deployment("mock", {"mock": {"reply": "hi"}, "model": "up"}, REF, "bot@2")
    assert (spec.name, spec.weight, spec.timeout_s, spec.version) == ("a", 3, 7, "bot@2")
    assert (spec.backend, spec.model, spec.mock.reply) == ("mock", "up", "hi")


@pytest.mark.parametrize(
    ("backend", "params", "why"),
    [
        ("openai", {}, "backend 'openai' cannot be served"),
        ("mock", {"weight": 9}, "params weight are not deployment fields"),
        ("mock", {"reply": "x"}, "params reply are not deployment fields"),
        ("openai_compatible", {"base_url": "ftp://x"}, "not a valid deployment"),
    ],
)
def test_a_version_that_is_not_a_deployment_is_refused(
    backend: str, params: dict[str, object], why: str
) -> None:
    with pytest.raises(RefError, match=why):
        model_deployment(backend, params, REF, "bot@2")


def _binding(version: int = 1) -> RegistryPrompt:
    content = PromptContent.of(
        [{"role": "system", "content": "Answer {{ who }} briefly."}],
        {"temperature": 0, "max_tokens": 5, "stream": True},
    )
    return RegistryPrompt("greet", version, content.model_settings, compile_prompt(content))


def test_a_prompt_renders_before_the_request_with_its_settings_as_defaults() -> None:
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 50,
        "prompt_variables": {"who": "Ada"},
    }
    sent = _binding().apply(body)
    assert sent["messages"] == [
        {"role": "system", "content": "Answer Ada briefly."},
        {"role": "user", "content": "hi"},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0, 50)  # the request's own value wins
    assert "prompt_variables" not in sent
    assert "stream" not in sent


def test_variables_are_data_not_template() -> None:
    sent = _binding().apply({"messages": [], "prompt_variables": {"who": "{{ ''.__class__.__mro__ }}"}})
    assert sent["messages"][0]["content"] == "Answer {{ ''.__class__.__mro__ }} briefly."


@pytest.mark.parametrize(
    ("variables", "named"), [({}, "who"), ({"who": "x", "other": 1}, "other"), (["x"], "prompt_variables")]
)
def test_bad_variables_are_named(variables: object, named: str) -> None:
    with pytest.raises(PromptError, match=named):
        _binding().apply({"messages": [], "prompt_variables": variables})


class CountingResolver:
    def __init__(self) -> None:
        self.models: list[tuple[int, str]] = []
        self.prompts: list[tuple[int, str]] = []

    def model(self, project_id: int, ref: str, deployment: DeploymentSpec) -> ResolvedModel:
        self.models.append((project_id, ref))
        if ref.endswith("@missing"):
            raise RefError(f"model has no alias {ref}")
        spec = model_deployment("mock", {}, deployment, ref.replace("production", "2"))
        return ResolvedModel("bot", 2, spec)

    def prompt(self, project_id: int, ref: str) -> PromptBinding:
        self.prompts.append((project_id, ref))
        return _binding()


def _route(name: str, *deployments: DeploymentSpec, prompt: str | None = None) -> RouteSpec:
    return RouteSpec(name=name, deployments=list(deployments), prompt=prompt)


def test_one_load_looks_each_reference_up_once_and_keeps_each_deployment() -> None:
    resolver = CountingResolver()
    resolution = Resolution(resolver)
    other = REF.model_copy(update={"name": "b", "weight": 1})
    loaded = [
        resolution.route(1, _route("r1", REF, other, prompt="greet@production")),
        resolution.route(1, _route("r2", REF, prompt="greet@production")),
        resolution.route(2, _route("r3", REF)),
    ]
    assert resolver.models == [(1, "bot@production"), (2, "bot@production")]
    assert resolver.prompts == [(1, "greet@production")]
    first = loaded[0]
    assert first.spec.deployments[0].backend == "registry"  # shown as stored
    assert [(d.name, d.weight, d.version) for d in first.served.deployments] == [
        ("a", 3, "bot@2"),
        ("b", 1, "bot@2"),
    ]
    assert first.served.prompt is None
    assert first.prompt is not None
    with pytest.raises(RefError, match=r"route 'r4': .*no alias"):
        resolution.route(1, _route("r4", REF.model_copy(update={"model": "bot@missing"})))
    with pytest.raises(RefError, match="registry is not available"):
        Resolution(None).route(1, _route("r5", REF))


def test_routes_of_calls_by_reference_are_bounded_and_dropped_on_reload() -> None:
    async def run() -> None:
        table = RouteTable(GatewayConfig())
        resolution = Resolution(CountingResolver())
        for n in range(ADHOC_PER_PROJECT + 1):
            ref = f"bot@{n + 1}"
            spec = _route(ref, DeploymentSpec(name="bot", backend="registry", model=ref))
            table.add_adhoc(7, resolution.route(7, spec))
            table.adhoc(7, "bot@1")  # recently used: kept
        assert table.adhoc(7, "bot@1") is not None
        assert table.adhoc(7, "bot@2") is None  # the least recently used went
        assert table.adhoc(8, "bot@1") is None  # per project
        plain = _route("x", DeploymentSpec(name="a", backend="mock"))
        table.replace_project_routes({7: [LoadedRoute(plain, plain)]})
        assert table.adhoc(7, "bot@1") is None
        await table.aclose()

    asyncio.run(run())
