"""The registry in the store, on both databases: numbering, dedupe, resolution, alias events,
rollback, concurrent writers and project isolation."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, select
from tests.support.tenant import unique

from watchkeep.registry.aliases import AliasError, NoRollbackTarget
from watchkeep.registry.prompts import PromptError
from watchkeep.registry.repository import NotRegistered, RegistryRepository
from watchkeep.registry.versions import InvalidName, PromptVersion, content_digest, template_json
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.registry_tables import alias_events

DIGEST = "a" * 64


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _project(engine: Engine) -> int:
    return ProjectRepository(engine).get_or_create(unique("reg")).id


def _models(repo: RegistryRepository, project: int, name: str, n: int) -> None:
    for i in range(n):
        repo.register_model(project, name, backend="mock", params={"temperature": i / 10})


def test_model_versions_are_numbered_stored_whole_and_deduplicated(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    first, created = repo.register_model(
        project,
        "clf",
        backend="embedded",
        params={"threshold": 0.5},
        artifact_uri="s3://models/clf/1",
        artifact_digest=f"sha256:{DIGEST}",
        metadata={"team": "risk"},
        training_dataset="qa@3",
        eval_runs=[7, 9],
        created_by="ann",
    )
    assert created
    assert first.version == 1
    second, created = repo.register_model(
        project, "clf", backend="embedded", params={"threshold": 0.6}, parent=1
    )
    assert created
    assert second.version == 2
    assert second.parent == 1
    # Same defining content, different metadata and author: the existing version, nothing written.
    again, created = repo.register_model(
        project,
        "clf",
        backend="embedded",
        params={"threshold": 0.5},
        artifact_uri="s3://models/clf/1",
        artifact_digest=DIGEST,
        metadata={"team": "other"},
        training_dataset="qa@3",
        created_by="bob",
    )
    assert not created
    assert again == first
    stored = repo.model_versions(project, "clf")
    assert [v.version for v in stored] == [2, 1]
    assert stored[1] == first
    assert dict(stored[1].metadata) == {"team": "risk"}
    assert stored[1].eval_runs == (7, 9)
    assert stored[1].created_by == "ann"
    assert stored[1].created_at_ns > 0


def test_prompt_templates_are_compiled_and_their_variables_recorded(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    text, created = repo.register_prompt(
        project,
        "greet",
        template="Hello {{ name }} about {{ topic }}",
        model_settings={"temperature": 0.2},
        message="v1",
    )
    assert created
    assert text.variables == ("name", "topic")
    assert text.message == "v1"
    chat, created = repo.register_prompt(
        project,
        "greet",
        template=[{"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "{{ q }}"}],
    )
    assert created
    assert chat.version == 2
    assert chat.template == (("system", "Be {{ tone }}"), ("user", "{{ q }}"))
    assert chat.variables == ("q", "tone")
    assert repo.prompt(project, "greet", 2) == chat
    assert repo.prompt(project, "greet", 1).template == "Hello {{ name }} about {{ topic }}"
    # The message is not content: re-registering the chat template with a new message reuses v2.
    same, created = repo.register_prompt(
        project,
        "greet",
        template=[{"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "{{ q }}"}],
        message="again",
    )
    assert not created
    assert same.version == 2


def test_bad_registrations_are_refused_and_nothing_is_written(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    with pytest.raises(PromptError, match="line 1"):
        repo.register_prompt(project, "broken", template="{{ oops ")
    with pytest.raises(PromptError, match="role"):
        repo.register_prompt(project, "broken", template=[{"role": "wizard", "content": "x"}])
    with pytest.raises(InvalidName):
        repo.register_model(project, "../etc", backend="mock")
    with pytest.raises(ValueError, match="parent"):
        repo.register_model(project, "m", backend="mock", parent=1)
    with pytest.raises(ValueError, match="backend"):
        repo.register_model(project, "m", backend=" ")
    assert repo.names(project, "model") == []
    assert repo.names(project, "prompt") == []


def test_missing_names_versions_and_aliases_raise_not_registered(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    with pytest.raises(NotRegistered, match="model 'ghost' is not registered"):
        repo.model(project, "ghost")
    with pytest.raises(NotRegistered):
        repo.prompt_versions(project, "ghost")
    with pytest.raises(NotRegistered):
        repo.events(project, "model", "ghost")
    _models(repo, project, "m", 2)
    with pytest.raises(NotRegistered, match="no version 3"):
        repo.model(project, "m", 3)
    with pytest.raises(NotRegistered, match="no alias 'production'"):
        repo.model(project, "m", "production")
    with pytest.raises(NotRegistered, match="no version 9"):
        repo.move_alias(project, "model", "m", "production", 9, actor="ann")
    with pytest.raises(NotRegistered):  # a prompt of that name does not exist
        repo.move_alias(project, "prompt", "m", "production", 1, actor="ann")
    assert repo.events(project, "model", "m") == []


def test_aliases_resolve_through_the_event_log(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    _models(repo, project, "m", 3)
    assert repo.model(project, "m").version == 3
    assert repo.model(project, "m", "2").version == 2
    assert repo.model(project, "m", "latest").version == 3
    repo.move_alias(project, "model", "m", "production", 1, actor="ann", reason="first release")
    repo.move_alias(project, "model", "m", "staging", 3, actor="bob")
    repo.move_alias(project, "model", "m", "production", 2, actor="ann", event_kind="promote")
    assert repo.model(project, "m", "production").version == 2
    assert repo.aliases(project, "model", "m") == {"production": 2, "staging": 3}
    removed = repo.move_alias(project, "model", "m", "staging", None, actor="bob", reason="retired")
    assert removed.kind == "remove"
    assert removed.from_version == 3
    assert repo.aliases(project, "model", "m") == {"production": 2}
    events = repo.events(project, "model", "m", "production")
    assert [(e.from_version, e.to_version, e.kind, e.seq) for e in events] == [
        (None, 1, "move", 1),
        (1, 2, "promote", 2),
    ]
    assert events[0].actor == "ann"
    assert events[0].reason == "first release"
    assert len(repo.events(project, "model", "m")) == 4
    with pytest.raises(AliasError, match="already points"):
        repo.move_alias(project, "model", "m", "production", 2, actor="ann")
    with pytest.raises(InvalidName):
        repo.move_alias(project, "model", "m", "Prod", 1, actor="ann")


def test_rollback_appends_an_event_back_to_the_previous_version(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    repo.register_prompt(project, "p", template="one {{ x }}")
    repo.register_prompt(project, "p", template="two {{ x }}")
    repo.register_prompt(project, "p", template="three {{ x }}")
    for version in (1, 2, 3):
        repo.move_alias(project, "prompt", "p", "production", version, actor="ann")
    back = repo.rollback(project, "prompt", "p", "production", actor="ops", reason="regression")
    assert (back.from_version, back.to_version, back.kind) == (3, 2, "rollback")
    auto = repo.rollback(project, "prompt", "p", "production", actor="canary", automatic=True)
    assert (auto.to_version, auto.kind) == (1, "auto_rollback")
    assert repo.prompt(project, "p", "production").version == 1
    with pytest.raises(NoRollbackTarget):
        repo.rollback(project, "prompt", "p", "production", actor="ops")
    with pytest.raises(NotRegistered, match="no alias 'canary'"):
        repo.rollback(project, "prompt", "p", "canary", actor="ops")
    history = repo.events(project, "prompt", "p")
    assert [e.seq for e in history] == [1, 2, 3, 4, 5]
    assert [e.at_ns for e in history] == sorted(e.at_ns for e in history)


def test_names_summarise_versions_and_aliases(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    _models(repo, project, "beta", 2)
    _models(repo, project, "alpha", 1)
    repo.move_alias(project, "model", "beta", "production", 1, actor="ann")
    summaries = repo.names(project, "model")
    assert [(s.name, s.versions, s.latest, s.aliases) for s in summaries] == [
        ("alpha", 1, 1, {}),
        ("beta", 2, 2, {"production": 1}),
    ]
    beta = summaries[1]
    assert beta.kind == "model"
    assert beta.updated_at_ns >= repo.model(project, "beta").created_at_ns
    assert repo.names(project, "prompt") == []
    with pytest.raises(ValueError, match="kind"):
        repo.names(project, "dataset")  # type: ignore[arg-type]


def test_projects_never_see_each_others_names(engine: Engine) -> None:
    repo, a, b = RegistryRepository(engine), _project(engine), _project(engine)
    _models(repo, a, "shared", 2)
    repo.move_alias(a, "model", "shared", "production", 2, actor="ann")
    assert repo.names(b, "model") == []
    for call in (
        lambda: repo.model(b, "shared"),
        lambda: repo.model_versions(b, "shared"),
        lambda: repo.aliases(b, "model", "shared"),
        lambda: repo.move_alias(b, "model", "shared", "production", 1, actor="eve"),
        lambda: repo.rollback(b, "model", "shared", "production", actor="eve"),
    ):
        with pytest.raises(NotRegistered):
            call()
    # B registers the same name and content independently: its own version 1, its own aliases.
    mine, created = repo.register_model(b, "shared", backend="mock", params={"temperature": 0.0})
    assert created
    assert mine.version == 1
    assert repo.aliases(b, "model", "shared") == {}
    assert repo.model(a, "shared", "production").version == 2


def test_concurrent_registrations_get_distinct_numbers(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    _models(repo, project, "race", 1)
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda n: repo.register_model(project, "race", backend="mock", params={"n": n}), range(4)
            )
        )
    assert all(created for _, created in results)
    assert sorted(v.version for v, _ in results) == [2, 3, 4, 5]


def test_concurrent_moves_are_replanned_and_all_land_in_one_consistent_log(engine: Engine) -> None:
    repo, project = RegistryRepository(engine), _project(engine)
    _models(repo, project, "m", 4)
    repo.move_alias(project, "model", "m", "production", 1, actor="seed")
    targets = [2, 3, 4, 2]

    def move(i: int) -> int | None:
        try:
            return repo.move_alias(project, "model", "m", "production", targets[i], actor=f"w{i}").to_version
        except AliasError:  # re-planned onto a state that already points there
            return None

    with ThreadPoolExecutor(4) as pool:  # each round one writer wins, so 4 writers need at most 4 tries
        landed = [v for v in pool.map(move, range(4)) if v is not None]
    log = repo.events(project, "model", "m", "production")  # consistency is checked on read
    assert [e.seq for e in log] == list(range(1, len(landed) + 2))
    assert sorted(e.to_version or 0 for e in log[1:]) == sorted(landed)
    assert len(landed) >= 3  # only the duplicate target 2 may be refused, and only once
    assert repo.model(project, "m", "production").version == log[-1].to_version
    with engine.connect() as conn:
        stored = conn.execute(
            select(alias_events.c.seq)
            .where(alias_events.c.project_id == project)
            .order_by(alias_events.c.seq)
        ).scalars()
        assert list(stored) == [e.seq for e in log]


def test_a_move_planned_on_a_stale_log_is_replanned_not_lost(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, other, project = RegistryRepository(engine), RegistryRepository(engine), _project(engine)
    _models(repo, project, "m", 3)
    repo.move_alias(project, "model", "m", "production", 1, actor="seed")
    read = RegistryRepository._events
    calls: list[int] = []

    def stale_read(self: RegistryRepository, conn: Any, *args: Any) -> Any:
        events = read(self, conn, *args)
        if self is repo and not calls:  # another writer moves the alias right after our read
            calls.append(1)
            other.move_alias(project, "model", "m", "production", 2, actor="other")
        return events

    monkeypatch.setattr(RegistryRepository, "_events", stale_read)
    event = repo.move_alias(project, "model", "m", "production", 3, actor="me", reason="after other")
    assert (event.from_version, event.to_version, event.seq) == (2, 3, 3)
    log = repo.events(project, "model", "m", "production")
    assert [(e.actor, e.to_version) for e in log] == [("seed", 1), ("other", 2), ("me", 3)]


def test_prompt_version_keeps_chat_templates_as_pairs_and_refuses_malformed_ones() -> None:
    messages: Any = [{"role": "user", "content": "{{ q }}"}]  # accepted, stored as pairs
    chat = PromptVersion("p", 1, messages, ("q",))
    assert chat.template == (("user", "{{ q }}"),)
    assert template_json(chat.template) == [{"role": "user", "content": "{{ q }}"}]
    assert content_digest(chat) == content_digest(PromptVersion("p", 2, (("user", "{{ q }}"),), ("q",)))
    assert content_digest(chat) != content_digest(PromptVersion("p", 3, "{{ q }}", ("q",)))
    for bad in ([], [{"role": "user"}], [("user", 3)], 3):
        with pytest.raises(ValueError, match="template must be a string"):
            PromptVersion("p", 1, bad)  # type: ignore[arg-type]
