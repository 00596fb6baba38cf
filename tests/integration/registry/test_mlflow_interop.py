"""MLflow Model Registry interop against a real ``mlflow server`` (sqlite store, loopback):
import, export, idempotent re-runs, the round trip, and the CLI's errors.

The server comes from ``.venv-mlflow`` (``make install``), ``WATCHKEEP_MLFLOW_BIN`` or PATH;
the module is skipped only when no ``mlflow`` executable is found.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from tests.support.servers import free_port
from tests.support.tenant import unique
from typer.testing import CliRunner

from watchkeep.cli.mlflow_commands import mlflow_app
from watchkeep.registry.mlflow_client import MlflowRegistry, tag_dict
from watchkeep.registry.mlflow_interop import (
    DEFAULT_BACKEND,
    IMPORT_ACTOR,
    export_to_mlflow,
    import_from_mlflow,
)
from watchkeep.registry.repository import RegistryRepository
from watchkeep.registry.versions import content_digest
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

ROOT = Path(__file__).resolve().parents[3]
STARTUP_SECONDS = 180


def _mlflow_bin() -> str | None:
    for candidate in (os.environ.get("WATCHKEEP_MLFLOW_BIN"), str(ROOT / ".venv-mlflow" / "bin" / "mlflow")):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("mlflow")


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a free loopback port, stopped (its whole process group) after."""
    binary = _mlflow_bin()
    if binary is None:  # `make test` builds it, so a missing server is a broken setup, not a skip
        pytest.fail("no mlflow server executable: run `make install` (it builds .venv-mlflow)")
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job worker processes
    log = (home / "server.log").open("wb")
    # fmt: off
    proc = subprocess.Popen(
        [binary, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}", "--default-artifact-root", str(home / "art")],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    # fmt: on
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy in {STARTUP_SECONDS}s")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def mlflow(mlflow_uri: str) -> Iterator[MlflowRegistry]:
    with MlflowRegistry(mlflow_uri) as client:
        yield client


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _project(engine: Engine) -> int:
    return ProjectRepository(engine).get_or_create(unique("mlf")).id


def _seed_mlflow(mlflow: MlflowRegistry, name: str) -> None:
    mlflow.create_registered_model(name, description="from a notebook", tags={"team": "search"})
    mlflow.create_model_version(name, source="s3://models/a", description="first", tags={"stage": "dev"})
    mlflow.create_model_version(
        name, source="s3://models/b", description="", tags={"watchkeep.backend": "mock"}
    )
    mlflow.create_model_version(name, source="s3://models/c", description="", tags={})
    mlflow.set_alias(name, "staging", "3")
    mlflow.set_alias(name, "prod", "2")
    mlflow.set_alias(name, "Champion", "1")  # MLflow allows capitals; our aliases do not


def test_import_versions_tags_and_aliases_then_reimport_changes_nothing(
    engine: Engine, mlflow: MlflowRegistry
) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    name = unique("clf")
    _seed_mlflow(mlflow, name)

    report = import_from_mlflow(repo, project, mlflow, name=name)
    assert (report.versions_created, report.versions_reused, report.aliases_moved) == (3, 0, 2)
    assert any("Champion" in s for s in report.skipped)
    versions = {v.version: v for v in repo.model_versions(project, name)}
    assert versions[1].backend == DEFAULT_BACKEND
    assert versions[2].backend == "mock"
    assert [versions[n].artifact_uri for n in (1, 2, 3)] == [
        "s3://models/a",
        "s3://models/b",
        "s3://models/c",
    ]
    assert versions[1].metadata["mlflow_version"] == 1
    assert versions[1].metadata["mlflow_tags"] == {"stage": "dev"}
    assert versions[1].metadata["mlflow_description"] == "first"
    assert "mlflow_tags" not in versions[2].metadata  # only watchkeep.* tags, which became fields
    assert repo.aliases(project, "model", name) == {"prod": 2, "staging": 3}
    events = repo.events(project, "model", name)
    assert [(e.alias, e.to_version) for e in events] == [("prod", 2), ("staging", 3)]  # version order
    assert {e.actor for e in events} == {IMPORT_ACTOR}
    assert all(e.reason == f"imported from MLflow {mlflow.base_url}" for e in events)

    again = import_from_mlflow(repo, project, mlflow, name=name)
    assert (again.versions_created, again.versions_reused, again.aliases_moved) == (0, 3, 0)
    assert again.aliases_unchanged == 2
    assert len(repo.events(project, "model", name)) == 2

    mlflow.set_alias(name, "prod", "3")
    moved = import_from_mlflow(repo, project, mlflow, name=name)
    assert moved.aliases_moved == 1
    last = repo.events(project, "model", name)[-1]
    assert (last.alias, last.from_version, last.to_version) == ("prod", 2, 3)


def _register_ours(repo: RegistryRepository, project: int, name: str) -> None:
    repo.register_model(
        project, name, backend="openai_compatible", params={"model": "gpt-x", "temperature": 0.2},
        artifact_uri="hf://org/model", artifact_digest="b" * 64, training_dataset="qa@3",
        metadata={"owner": "ml-team", "notes": ["a", 1]},
    )  # fmt: skip
    repo.register_model(project, name, backend="mock", params={"temperature": 0.5})
    for alias, version in (("prod", 1), ("canary", 2), ("prod", 2), ("canary", None)):
        repo.move_alias(project, "model", name, alias, version, actor="alice", reason="test")


def test_export_is_idempotent_keeps_history_in_a_tag_and_round_trips(
    engine: Engine, mlflow: MlflowRegistry
) -> None:
    repo, source, target = RegistryRepository(engine), _project(engine), _project(engine)
    name = unique("chat")
    _register_ours(repo, source, name)

    report = export_to_mlflow(repo, source, mlflow, name=name)
    assert (report.versions_created, report.aliases_moved) == (2, 1)
    theirs = mlflow.model_versions(name)
    assert [mv["source"] for mv in theirs] == ["hf://org/model", f"watchkeep://{name}/2"]
    tags = tag_dict(theirs[0])
    assert tags["watchkeep.backend"] == "openai_compatible"
    assert tags["watchkeep.content_digest"] == content_digest(repo.model(source, name, 1))
    model = mlflow.registered_model(name)
    assert model is not None
    assert {a["alias"]: a["version"] for a in model["aliases"]} == {"prod": "2"}  # canary was removed
    assert '"canary"' in tag_dict(model)["watchkeep.alias_history"]

    again = export_to_mlflow(repo, source, mlflow, name=name)
    assert (again.versions_created, again.versions_reused, again.aliases_moved) == (0, 2, 0)
    assert len(mlflow.model_versions(name)) == 2

    imported = import_from_mlflow(repo, target, mlflow, name=name)
    assert imported.versions_created == 2
    ours = {v.version: content_digest(v) for v in repo.model_versions(source, name)}
    back = {v.version: content_digest(v) for v in repo.model_versions(target, name)}
    assert back == ours
    assert repo.model(target, name, 1).metadata["owner"] == "ml-team"
    assert repo.aliases(target, "model", name) == repo.aliases(source, "model", name) == {"prod": 2}


def test_export_sends_only_the_callers_project(engine: Engine, mlflow: MlflowRegistry) -> None:
    repo, mine, other = RegistryRepository(engine), _project(engine), _project(engine)
    secret = unique("secret")
    repo.register_model(other, secret, backend="mock")
    repo.register_model(mine, unique("open"), backend="mock")
    export_to_mlflow(repo, mine, mlflow)
    assert mlflow.registered_model(secret) is None


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("WATCHKEEP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    return unique("mlfcli")


def test_cli_import_export_and_errors(cli_env: str, mlflow: MlflowRegistry, engine: Engine) -> None:
    name = unique("cli")
    _seed_mlflow(mlflow, name)
    runner = CliRunner()
    ok = runner.invoke(mlflow_app, ["import", "--uri", mlflow.base_url, "--name", name, "--project", cli_env])
    assert ok.exit_code == 0, ok.output
    assert "versions: 3 new, 0 already there; aliases: 2 moved" in ok.stdout
    assert "skipped" in ok.stderr
    assert "Champion" in ok.stderr
    out = runner.invoke(
        mlflow_app, ["export", "--uri", mlflow.base_url, "--name", name, "--project", cli_env]
    )
    assert out.exit_code == 0, out.output
    # versions imported from this server are found again: nothing is duplicated back
    assert "versions: 0 new, 3 already there; aliases: 0 moved, 2 unchanged" in out.stdout

    missing = runner.invoke(
        mlflow_app, ["import", "--uri", mlflow.base_url, "--name", "nope-x", "--project", cli_env]
    )
    assert missing.exit_code == 1
    assert "has no registered model 'nope-x'" in missing.stderr
    bad = runner.invoke(mlflow_app, ["import", "--uri", "ftp://x", "--project", cli_env])
    assert bad.exit_code == 1
    assert "must be http(s)" in bad.stderr
    down = runner.invoke(
        mlflow_app, ["import", "--uri", f"http://127.0.0.1:{free_port()}", "--project", cli_env]
    )
    assert down.exit_code == 1
    assert "cannot be reached" in down.stderr


def test_import_skips_what_our_rules_refuse_and_says_why(engine: Engine, mlflow: MlflowRegistry) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    spaced, broken = f"has space {unique('m')}", unique("broken")
    mlflow.create_registered_model(spaced, description="", tags={})
    mlflow.create_model_version(spaced, source="s3://x/1", description="", tags={})
    mlflow.create_registered_model(broken, description="", tags={})
    mlflow.create_model_version(broken, source="s3://x/2", description="", tags={"watchkeep.params": "{nope"})
    mlflow.create_model_version(broken, source="s3://x/3", description="", tags={"watchkeep.metadata": "[1]"})
    mlflow.create_model_version(broken, source="s3://x/4", description="", tags={})
    mlflow.set_alias(broken, "prod", "1")

    report = import_from_mlflow(repo, project, mlflow)
    skipped = "\n".join(report.skipped)
    assert f"{spaced}: model name" in skipped
    assert f"{broken}@1: tag watchkeep.params is not JSON" in skipped
    assert f"{broken}@2: tag watchkeep.metadata must be a JSON object" in skipped
    assert f"{broken}@prod: version 1 was not imported" in skipped
    assert [v.artifact_uri for v in repo.model_versions(project, broken)] == ["s3://x/4"]
    assert repo.aliases(project, "model", broken) == {}
    assert spaced not in {s.name for s in repo.names(project, "model")}
