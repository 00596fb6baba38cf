"""``watchkeep eval``: exit codes 0/1/2, reports, resume, the example config, list/show/compare."""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import eval_run_targets
from tests.support.eval_run_targets import python_target, write_config, write_dataset
from tests.support.gateway import mock_upstream_args, process
from tests.support.servers import free_port
from typer.testing import CliRunner

from watchkeep.cli.eval_commands import eval_app
from watchkeep.config import Settings
from watchkeep.evals.config import load_config
from watchkeep.evals.run_repository import RunRepository
from watchkeep.evals.service import EvalService
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "evals"
CORRECT = python_target(eval_run_targets.correct)
WRONG = python_target(eval_run_targets.wrong_share)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(mock_upstream_args(port), ready_url=f"{url}/_stats"):
        yield url


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's database and home; returns a fresh project name."""
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("WATCHKEEP_HOME", str(tmp_path / "home"))
    return f"evals-{uuid.uuid4().hex[:8]}"


def _run(*args: str) -> Any:
    return CliRunner().invoke(eval_app, list(args))


def _run_id(output: str) -> int:
    return int(json.loads(output.strip().splitlines()[0])["id"])


def _configs(tmp_path: Path, n: int = 30) -> tuple[Path, Path]:
    write_dataset(tmp_path / "numbers.jsonl", n)
    good = write_config(tmp_path / "good.yaml", target=CORRECT, dataset_file="numbers.jsonl")
    bad = write_config(tmp_path / "bad.yaml", target=WRONG, dataset_file="numbers.jsonl", name="candidate")
    return good, bad


def test_gate_passes_with_exit_0_and_writes_the_three_reports(env: str, tmp_path: Path) -> None:
    good, _ = _configs(tmp_path)
    baseline = _run("run", str(good), "--project", env)
    assert baseline.exit_code == 0, baseline.output
    base_id = _run_id(baseline.stdout)
    out = tmp_path / "out"
    again = _run(
        "run", str(good), "--project", env, "--baseline", str(base_id), "--gate", "--output", str(out)
    )
    assert again.exit_code == 0, again.output
    assert _run_id(again.stdout) != base_id  # a completed run is not resumed: a new one
    assert "verdict: pass" in again.stdout
    report = json.loads((out / "report.json").read_text())
    assert report  # the reports area owns its shape; it holds the run
    suites = ET.parse(out / "junit.xml").getroot()
    assert suites.tag in {"testsuites", "testsuite"}
    html = (out / "report.html").read_text()
    assert "<html" in html.lower()
    for attr in ("src=", "href="):
        for chunk in html.split(attr)[1:]:
            assert not chunk.lstrip("\"'").startswith(("http:", "https:", "//")), chunk[:80]


def test_injected_regression_exits_1_and_compare_shows_it(env: str, tmp_path: Path) -> None:
    good, bad = _configs(tmp_path)
    base_id = _run_id(_run("run", str(good), "--project", env).stdout)
    candidate = _run("run", str(bad), "--project", env, "--baseline", str(base_id), "--gate")
    assert candidate.exit_code == 1, candidate.output
    assert "REGRESSION" in candidate.stdout
    assert "verdict: regression" in candidate.stdout
    cand_id = _run_id(candidate.stdout)
    # without --gate the same regression is reported but does not fail the command
    assert _run("run", str(bad), "--project", env, "--baseline", str(base_id)).exit_code == 0
    compared = _run("compare", str(base_id), str(cand_id), "--project", env, "--json")
    assert compared.exit_code == 1
    data = json.loads(compared.stdout)
    assert data["verdict"] == "regression"
    assert data["mcnemar"]["b"] == 10  # a third of 30 items turned from pass to fail
    assert data["mcnemar"]["c"] == 0
    shown = json.loads(_run("show", str(cand_id), "--project", env).stdout)
    assert shown["status"] == "completed"
    assert shown["gate"]["verdict"] == "regression"
    listed = [json.loads(line) for line in _run("list", "--project", env).stdout.splitlines()]
    assert {r["id"] for r in listed} >= {base_id, cand_id}


def test_threshold_failure_exits_1(env: str, tmp_path: Path) -> None:
    write_dataset(tmp_path / "numbers.jsonl", 12)
    config = write_config(
        tmp_path / "t.yaml",
        target=WRONG,
        dataset_file="numbers.jsonl",
        gate={"thresholds": {"pass_rate": 0.9}},
    )
    result = _run("run", str(config), "--project", env, "--gate")
    assert result.exit_code == 1, result.output
    assert "pass_rate" in result.output


def test_unknown_evaluator_exits_2_with_a_suggestion(env: str, tmp_path: Path) -> None:
    write_dataset(tmp_path / "numbers.jsonl", 3)
    config = write_config(
        tmp_path / "c.yaml", target=CORRECT, dataset_file="numbers.jsonl", evaluators=[{"name": "exact_mach"}]
    )
    result = _run("run", str(config), "--project", env)
    assert result.exit_code == 2
    assert "did you mean exact_match" in result.output
    assert _run("list", "--project", env).stdout == ""  # nothing was started


def test_missing_dataset_and_bad_config_exit_2(env: str, tmp_path: Path) -> None:
    missing_file = write_config(tmp_path / "m.yaml", target=CORRECT, dataset_file="nope.jsonl")
    result = _run("run", str(missing_file), "--project", env)
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output
    no_dataset = tmp_path / "n.yaml"
    no_dataset.write_text(json.dumps({"name": "x", "dataset": {"name": "never-imported"}, "target": CORRECT}))
    result = _run("run", str(no_dataset), "--project", env)
    assert result.exit_code == 2
    assert "never-imported" in result.output
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\ntarget: {kind: python, callable: 'a:b'}\nrepeets: 3\n")
    result = _run("run", str(typo), "--project", env)
    assert result.exit_code == 2
    assert "repeets" in result.output


def test_a_bad_encryption_key_exits_2_with_one_line(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(tmp_path / "numbers.jsonl", 3)
    config = write_config(tmp_path / "k.yaml", target=CORRECT, dataset_file="numbers.jsonl")
    monkeypatch.setenv("WATCHKEEP_ENCRYPTION_KEY", "not-a-key")
    result = _run("run", str(config), "--project", env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("error: encryption key: not valid base64")


def test_unreachable_target_exits_2(env: str, tmp_path: Path) -> None:
    write_dataset(tmp_path / "numbers.jsonl", 4)
    dead = {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "m"}
    config = write_config(
        tmp_path / "d.yaml", target=dead, dataset_file="numbers.jsonl", retries=0, timeout_s=5
    )
    result = _run("run", str(config), "--project", env, "--gate")
    assert result.exit_code == 2, result.output
    shown = json.loads(_run("show", str(_run_id(result.stdout)), "--project", env).stdout)
    assert shown["status"] == "failed"
    assert shown["cases_failed"] == 4


def test_the_mock_example_config_runs(env: str, tmp_path: Path, upstream: str) -> None:
    data = yaml.safe_load((EXAMPLES / "mock.yaml").read_text())
    data["target"]["base_url"] = f"{upstream}/v1"
    data["dataset"]["file"] = str(EXAMPLES / "questions.jsonl")
    config = tmp_path / "mock.yaml"
    config.write_text(json.dumps(data))
    out = tmp_path / "out"
    result = _run("run", str(config), "--project", env, "--gate", "--output", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary["cases"] == "120/120"  # 30 items x 2 repeats x (original + whitespace)
    assert summary["failed"] == 0
    assert (out / "junit.xml").is_file()


def test_examples_validate() -> None:
    for name in ("embedded.yaml", "adversarial.yaml", "mock.yaml"):
        config = load_config(EXAMPLES / name)
        assert config.name
    assert sum(1 for _ in (EXAMPLES / "questions.jsonl").open()) == 30


def test_resume_after_an_interruption_continues_the_same_run_and_calls_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    write_dataset(tmp_path / "numbers.jsonl", 40)
    path = write_config(
        tmp_path / "r.yaml",
        target=python_target(eval_run_targets.counting),
        dataset_file="numbers.jsonl",
        concurrency=2,
        cache=False,  # so only the stored results can spare a call
        name=f"resume-{uuid.uuid4().hex[:6]}",
    )
    config = load_config(path)
    engine = make_engine(database_url)
    project_id = ProjectRepository(engine).get_or_create(f"resume-{uuid.uuid4().hex[:8]}").id
    service = EvalService(engine, Settings(home=tmp_path, database_url=database_url))
    eval_run_targets.CALLS.clear()

    async def interrupted() -> None:
        enough = asyncio.Event()
        eval_run_targets.ON_CALL[:] = [lambda: enough.set() if len(eval_run_targets.CALLS) >= 12 else None]
        task = asyncio.create_task(service.run(config, project_id, base_dir=tmp_path))
        await enough.wait()
        eval_run_targets.ON_CALL.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    repo = RunRepository(engine)
    (run,) = repo.list_runs(project_id).items
    assert run.status == "interrupted"
    stored = repo.done_keys(project_id, run.id)
    assert 0 < len(stored) < 40
    first_calls = list(eval_run_targets.CALLS)
    outcome = asyncio.run(service.run(config, project_id, base_dir=tmp_path))
    assert outcome.resumed
    assert outcome.run.id == run.id
    assert outcome.run.status == "completed"
    assert outcome.run.cases_done == 40
    later = eval_run_targets.CALLS[len(first_calls) :]
    stored_questions = {f"What is {int(k[0][1:])} plus zero?" for k in stored}
    assert not stored_questions & set(later)  # nothing already stored was asked again
    assert len(repo.all_results(project_id, run.id)) == 40
    engine.dispose()


def test_a_python_target_next_to_the_config_is_importable(env: str, tmp_path: Path) -> None:
    module = f"wk_local_target_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import re\n\ndef answer(messages, params):\n"
        "    return re.findall(r'\\d+', messages[-1]['content'])[0]\n",
        encoding="utf-8",
    )
    write_dataset(tmp_path / "numbers.jsonl", 5)
    config = write_config(
        tmp_path / "local.yaml",
        target={"kind": "python", "callable": f"{module}:answer"},
        dataset_file="numbers.jsonl",
    )
    result = _run("run", str(config), "--project", env, "--no-progress")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[0])
    assert (summary["cases"], summary["pass_rate"]) == ("5/5", 1.0)
