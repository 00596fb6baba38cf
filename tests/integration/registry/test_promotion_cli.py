"""``watchkeep registry policy|promote|gate``: the same gates as the API, from the operator's seat."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.registry_cli import cli_env, ok_registry, run_registry

from watchkeep.cli.promotion_commands import install, parse_gate
from watchkeep.cli.registry_commands import registry_app
from watchkeep.evals.dataset_repository import DatasetRepository
from watchkeep.evals.model import DatasetItem, ItemResult, Score
from watchkeep.evals.run_repository import RunRepository
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

install(registry_app)
N_ITEMS = 30


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's database; returns a fresh project name."""
    return cli_env(database_url, tmp_path, monkeypatch, "prom")


_run = run_registry
_ok = ok_registry


def seed_run(database_url: str, project: str, label: str, passing: int) -> None:
    engine = make_engine(database_url)
    try:
        found = ProjectRepository(engine).find(project)
        assert found is not None
        items = [DatasetItem(key=f"i{k}", input=f"q{k}") for k in range(N_ITEMS)]
        version, _ = DatasetRepository(engine).create_version(found.id, "qa", items)
        runs = RunRepository(engine)
        run = runs.create_run(
            found.id,
            name=label,
            dataset_version_id=version.id,
            target={},
            target_version=label,
            config={},
            config_hash=label,
            seed=0,
            cases_total=N_ITEMS,
        )
        passed = [k < passing for k in range(N_ITEMS)]
        scores = [{"exact": Score(passed=p, value=float(p))} for p in passed]
        results = [ItemResult(f"i{k}", 0, "", None, None, "a", scores[k]) for k in range(N_ITEMS)]
        runs.add_results(found.id, run.id, results)
        runs.finish_run(found.id, run.id, status="completed", aggregates={})
    finally:
        engine.dispose()


def test_policy_promote_gate_and_force(env: str, database_url: str) -> None:
    for t in ("0.1", "0.2", "0.3"):
        _ok(
            "models",
            "register",
            "bot",
            "--backend",
            "openai",
            "--param",
            f"temperature={t}",
            "--project",
            env,
        )
    _ok("move", "bot", "production", "1", "--reason", "first", "--project", env)
    _ok("policy", "set", "bot", "--gate", "qa:exact", "--alpha", "0.1", "--project", env)
    _ok("policy", "set", "bot", "--alias", "staging", "--gate", "smoke", "--project", env)
    shown = _ok("policy", "show", "bot", "--project", env)
    assert "bot@staging" in shown
    assert "bot@production" in shown
    shown = _ok("policy", "show", "bot", "--alias", "production", "--project", env)
    assert "bot@staging" not in shown
    assert "qa: evaluators exact, alpha 0.1, max drop 0" in shown
    seed_run(database_url, env, "model:bot@1", 20)
    seed_run(database_url, env, "model:bot@2", 28)
    seed_run(database_url, env, "model:bot@3", 2)

    assert "qa: pass" in _ok("gate", "bot", "--to", "2", "--project", env)
    refused = _run("promote", "bot", "--to", "3", "--project", env)
    assert refused.exit_code == 1
    assert "refused" in refused.stdout
    assert "regression" in refused.stdout
    promoted = _ok("promote", "bot", "--to", "2", "--project", env)
    assert "promote: bot@production v1 -> v2 (gates passed: qa" in promoted
    assert _run("promote", "bot", "--to", "3", "--force", "--project", env).exit_code == 1  # no reason
    forced = _ok("promote", "bot", "--to", "3", "--force", "--reason", "hotfix", "--project", env)
    assert forced.startswith("  qa: regression")
    assert "forced: bot@production v2 -> v3" in forced
    _ok("policy", "delete", "bot", "--project", env)
    assert _run("policy", "show", "bot", "--alias", "production", "--project", env).exit_code == 1
    assert "bot@production" not in _ok("policy", "show", "bot", "--project", env)
    assert "not gated" in _ok("gate", "bot", "--to", "1", "--project", env)


def test_gate_option_parsing() -> None:
    gate = parse_gate("qa@3:exact, judge", 0.01, 0.02)
    assert (gate.dataset, gate.evaluators, gate.alpha, gate.max_drop) == (
        "qa@3",
        ("exact", "judge"),
        0.01,
        0.02,
    )
    with pytest.raises(ValueError, match="alpha"):
        parse_gate("qa", 1.5, 0.0)


def test_move_refuses_a_gated_alias(env: str) -> None:
    p = ("--project", env)
    for i in range(2):
        _ok("models", "register", "gated", "--backend", "mock", "--param", f"temperature={i}", *p)
    _ok("move", "gated", "production", "1", "--reason", "first", *p)
    _ok("policy", "set", "gated", "--alias", "production", "--gate", "qa", *p)
    refused = _run("move", "gated", "production", "2", "--reason", "around the gate", *p)
    assert refused.exit_code == 1
    assert "gated by a promotion policy" in refused.output
    history = _ok("history", "gated", "--alias", "production", *p)
    assert "around the gate" not in history
    assert "first" in history
