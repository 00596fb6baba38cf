"""``watchkeep registry``: register, list, versions, move, history, rollback, diff, export/import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.registry_cli import cli_env, ok_registry, run_registry

from watchkeep.cli.registry_commands import parse_pairs


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's database; returns a fresh project name."""
    return cli_env(database_url, tmp_path, monkeypatch, "reg")


_run = run_registry
_ok = ok_registry


def _fails(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code == 1, result.output
    return str(result.stderr)


def _models(project: str) -> None:
    for temperature in ("0.1", "0.2", "0.3"):
        _ok(
            "models", "register", "chat", "--backend", "openai", "--param", f"temperature={temperature}",
            "--param", "model=gpt-x", "--training-dataset", "qa@3", "--project", project,
        )  # fmt: skip


def _history(project: str, *extra: str) -> list[dict[str, Any]]:
    return list(json.loads(_ok("history", "chat", "--json", "--project", project, *extra)))


def test_model_register_move_history_and_rollback(env: str) -> None:
    _models(env)
    same = _ok("models", "register", "chat", "--backend", "openai", "--param", "temperature=0.1",
               "--param", "model=gpt-x", "--training-dataset", "qa@3", "--project", env)  # fmt: skip
    assert "chat v1 (unchanged" in same  # content-identical: no fourth version
    listing = _ok("list", "--project", env)
    assert "chat  versions=3  latest=v3" in listing
    _ok("move", "chat", "production", "1", "--reason", "first release", "--project", env, "--actor", "ana")
    _ok("move", "chat", "production", "2", "--reason", "better", "--project", env)
    _ok("move", "chat", "staging", "production", "--reason", "copy", "--project", env)  # an alias as target
    assert "v2" in _ok("versions", "chat", "--project", env).splitlines()[1]  # newest first: v3, then v2
    assert "[production, staging]" in _ok("versions", "chat", "--project", env)
    out = _ok("rollback", "chat", "--reason", "latency regression", "--project", env)
    assert "rolled back v2 -> v1" in out
    events = _history(env, "--alias", "production")
    assert [(e["from"], e["to"], e["kind"]) for e in events] == [
        (None, 1, "move"),
        (1, 2, "move"),
        (2, 1, "rollback"),
    ]
    assert events[0]["actor"] == "ana"
    assert events[2]["reason"] == "latency regression"
    assert {e["alias"] for e in _history(env)} == {"production", "staging"}
    table = _ok("history", "chat", "--project", env)
    assert "latency regression" in table
    assert "rollback" in table
    assert "staging" in table
    # v1 -> v2 -> back to v1 leaves nothing to roll back to (no bouncing to v2)
    assert "no earlier version" in _fails("rollback", "chat", "--project", env)
    assert "production=1" in _ok("list", "--kind", "model", "--project", env)
    diff = _ok("diff", "chat", "1", "3", "--project", env)
    assert "~ params: {" in diff
    assert "0.1" in diff
    assert "0.3" in diff


def test_errors_exit_1_with_a_message(env: str, tmp_path: Path) -> None:
    assert "no project" in _fails("list", "--project", env)
    _models(env)
    assert "no model or prompt named 'nope'" in _fails("versions", "nope", "--project", env)
    assert "no version 9" in _fails("move", "chat", "production", "9", "--reason", "x", "--project", env)
    assert "no alias 'production'" in _fails("rollback", "chat", "--project", env)
    assert "KEY=VALUE" in _fails(
        "models", "register", "chat", "--backend", "b", "--param", "oops", "--project", env
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("Hello {{ name ")
    assert "error:" in _fails("prompts", "register", "p", "--template", str(bad), "--project", env)
    assert "both a model and a prompt" in _prompt_named_like_model(env, tmp_path)


def _prompt_named_like_model(env: str, tmp_path: Path) -> str:
    text = tmp_path / "chat.txt"
    text.write_text("Hi {{ who }}")
    _ok("prompts", "register", "chat", "--template", str(text), "--project", env)
    assert "v3" in _ok("versions", "chat", "--kind", "model", "--project", env)
    return _fails("versions", "chat", "--project", env)


def _prompts(env: str, tmp_path: Path) -> None:
    first = tmp_path / "greet.txt"
    first.write_text("Hello {{ name }}.\nBe brief.\n")
    _ok("prompts", "register", "greet", "--template", str(first), "--setting", "temperature=0.2",
        "--message", "first", "--project", env)  # fmt: skip
    chat = tmp_path / "greet.yaml"
    chat.write_text(
        yaml.safe_dump(
            [
                {"role": "system", "content": "Hello {{ name }} from {{ place }}.\nBe brief.\n"},
                {"role": "user", "content": "{{ question }}"},
            ]
        )
    )
    out = _ok("prompts", "register", "greet", "--template", str(chat), "--setting", "temperature=0.5",
              "--setting", "max_tokens=64", "--message", "chat form", "--project", env)  # fmt: skip
    assert "greet v2 (new)" in out
    assert "name, place, question" in out


def test_prompt_register_and_diff(env: str, tmp_path: Path) -> None:
    _prompts(env, tmp_path)
    diff = _ok("diff", "greet", "1", "2", "--project", env)
    assert "-Hello {{ name }}." in diff
    assert "+Hello {{ name }} from {{ place }}." in diff
    assert "+[user]" in diff
    assert "+ variable place" in diff
    assert "+ variable question" in diff
    assert "~ setting temperature (changed): 0.2 -> 0.5" in diff
    assert "~ setting max_tokens (added): None -> 64" in diff
    assert "no change" in _ok("diff", "greet", "2", "2", "--project", env)
    versions = _ok("versions", "greet", "--project", env)
    assert "chat form" in versions
    assert "first" in versions


def test_export_import_round_trips_and_is_idempotent(env: str, tmp_path: Path) -> None:
    _models(env)
    _prompts(env, tmp_path)
    _ok("move", "chat", "production", "1", "--reason", "r1", "--project", env)
    _ok("move", "chat", "production", "3", "--reason", "r3", "--project", env)
    _ok("rollback", "chat", "--reason", "back", "--project", env)
    _ok("move", "greet", "staging", "2", "--reason", "try chat", "--project", env)
    out = tmp_path / "registry"
    assert "wrote 2 files" in _ok("export", str(out), "--project", env)
    doc = yaml.safe_load((out / "prompts" / "greet.yaml").read_text())
    assert doc["versions"][1]["template"][1] == {"role": "user", "content": "{{ question }}"}
    other = env + "-copy"
    first = _ok("import", str(out), "--project", other)
    assert "versions: 5 new, 0 already there; alias events appended: 4" in first
    assert _ok("list", "--project", other) == _ok("list", "--project", env)
    assert _ok("diff", "greet", "1", "2", "--project", other) == _ok(
        "diff", "greet", "1", "2", "--project", env
    )
    again = _run("import", str(out), "--project", other)
    assert again.exit_code == 0, again.output
    assert "versions: 0 new, 5 already there; alias events appended: 0" in again.stdout
    assert "kept model/chat@production" in again.stderr
    copied = [(e["alias"], e["from"], e["to"], e["kind"], e["reason"]) for e in _history(other)]
    source = [(e["alias"], e["from"], e["to"], e["kind"], e["reason"]) for e in _history(env)]
    assert copied == source
    reexport = tmp_path / "again"
    _ok("export", str(reexport), "--project", other)
    versions = yaml.safe_load((reexport / "models" / "chat.yaml").read_text())["versions"]
    assert [v["params"]["temperature"] for v in versions] == [0.1, 0.2, 0.3]


def test_import_refuses_a_malformed_file(env: str, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "x.yaml").write_text("format: 1\nkind: model\nname: x\nversions: [{backend: b}]\n")
    assert "every version needs its number" in _fails("import", str(folder), "--project", env)
    assert "no models/*.yaml" in _fails("import", str(tmp_path), "--project", env)


def test_parse_pairs_reads_values_as_yaml() -> None:
    assert parse_pairs(["t=0.2", "on=true", "name=gpt", "empty="], "--param") == {
        "t": 0.2,
        "on": True,
        "name": "gpt",
        "empty": "",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_pairs(["=3"], "--param")


def test_import_maps_versions_onto_the_targets_own_numbers(env: str, tmp_path: Path) -> None:
    _models(env)
    _ok("models", "register", "chat", "--backend", "vllm", "--parent", "2", "--project", env)
    _ok("move", "chat", "production", "4", "--reason", "vllm", "--project", env)
    out = tmp_path / "registry"
    _ok("export", str(out), "--project", env)
    other = env + "-busy"
    _ok("models", "register", "chat", "--backend", "local", "--project", other)  # v1 there is other content
    _ok("models", "register", "chat", "--backend", "openai", "--param", "temperature=0.2",
        "--param", "model=gpt-x", "--training-dataset", "qa@3", "--project", other)  # fmt: skip
    assert "versions: 3 new, 1 already there" in _ok("import", str(out), "--project", other)
    moved = _history(other)
    assert [(e["from"], e["to"]) for e in moved] == [(None, 5)]  # source v4 is the target's v5
    exported = tmp_path / "other"
    _ok("export", str(exported), "--project", other)
    versions = yaml.safe_load((exported / "models" / "chat.yaml").read_text())["versions"]
    assert versions[4]["backend"] == "vllm"
    assert versions[4]["parent"] == 2  # source parent v2 (temperature 0.2) is the target's v2
