"""Dataset versions in the store, on both databases: numbering, dedupe, resolve, items, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from tests.support.tenant import unique

from watchkeep.evals import dataset_repository
from watchkeep.evals.dataset_repository import DatasetNotFound, DatasetRepository
from watchkeep.evals.datasets import assign_splits, content_hash
from watchkeep.evals.model import DatasetItem
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _project(engine: Engine) -> int:
    return ProjectRepository(engine).get_or_create(unique("ds")).id


def _items(n: int, tag: str = "") -> list[DatasetItem]:
    return [
        DatasetItem(f"k{i}", {"q": f"question {i}{tag}"}, f"answer {i}", {"i": i}, trace_id=None)
        for i in range(n)
    ]


def test_versions_are_numbered_immutable_and_deduplicated(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    first, created = repo.create_version(
        project, "qa", _items(3), source={"kind": "file"}, message="first", created_by="ann", description="QA"
    )
    assert created
    assert (first.version, first.item_count, first.dataset_name) == (1, 3, "qa")
    assert first.content_hash == content_hash(_items(3))
    assert (first.source, first.message, first.created_by) == ({"kind": "file"}, "first", "ann")
    second, created = repo.create_version(project, "qa", _items(4))
    assert created
    assert second.version == 2
    # The same content as ANY earlier version is that version, and nothing is written.
    again, created = repo.create_version(project, "qa", _items(3))
    assert not created
    assert again == first
    assert [v.version for v in repo.versions(project, "qa")] == [2, 1]
    assert repo.items(project, first.id) == _items(3)


def test_items_keep_order_values_and_splits_with_windows(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    items = assign_splits(_items(50), {"train": 0.5, "test": 0.5}, seed=3)
    items[0] = DatasetItem("text", "plain string input", None, {}, "train", "ab" * 16)
    info, _ = repo.create_version(project, "splits", items)
    assert info.splits == {
        "train": sum(i.split == "train" for i in items),
        "test": sum(i.split == "test" for i in items),
    }
    assert repo.items(project, info.id) == items
    assert repo.items(project, info.id, limit=5, offset=10) == items[10:15]
    assert repo.items(project, info.id, split="test") == [i for i in items if i.split == "test"]
    assert (
        repo.items(project, info.id, split="test", limit=2, offset=1)
        == [i for i in items if i.split == "test"][1:3]
    )


def test_resolve_by_latest_number_and_hash_prefix(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    one, _ = repo.create_version(project, "r", _items(1))
    two, _ = repo.create_version(project, "r", _items(2))
    assert repo.resolve(project, "r") == two
    assert repo.resolve(project, "r", 1) == one
    assert repo.resolve(project, "r", "1") == one
    assert repo.resolve(project, "r", one.content_hash[:8]) == one
    assert repo.resolve(project, "r", two.content_hash.upper()) == two
    assert repo.version_by_id(project, one.id) == one
    for bad, message in (
        (3, "no version 3"),
        ("abc", "at least 8 hex"),
        ("zzzzzzzzzz", "at least 8 hex"),
        ("f" * 8 if not one.content_hash.startswith("f" * 8) else "0" * 8, "no version with hash"),
    ):
        with pytest.raises(DatasetNotFound, match=message):
            repo.resolve(project, "r", bad)
    with pytest.raises(DatasetNotFound, match="no dataset"):
        repo.resolve(project, "missing")


def test_an_ambiguous_hash_prefix_is_refused(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    infos = [repo.create_version(project, "amb", _items(n))[0] for n in range(1, 20)]
    by_first: dict[str, list[str]] = {}
    for info in infos:
        by_first.setdefault(info.content_hash[0], []).append(info.content_hash)
    shared = next(digit for digit, hashes in by_first.items() if len(hashes) > 1)  # 19 into 16
    # Eight shared digits would take ~65k versions: allow one digit to reach the same query.
    monkeypatch.setattr(dataset_repository, "MIN_HASH_PREFIX", 1)
    with pytest.raises(DatasetNotFound, match="several versions"):
        repo.resolve(project, "amb", shared)
    assert all(repo.resolve(project, "amb", info.content_hash[:8]) == info for info in infos)


def test_list_datasets_pages_by_name(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    for name in ("c", "a", "b"):
        repo.create_version(project, name, _items(1))
    repo.create_version(project, "b", _items(2))
    first = repo.list_datasets(project, limit=2)
    assert [d.name for d in first.items] == ["a", "b"]
    assert first.items[1].versions == 2
    assert first.items[1].latest is not None
    assert first.items[1].latest.version == 2
    assert first.next_cursor is not None
    rest = repo.list_datasets(project, limit=2, cursor=first.next_cursor)
    assert [d.name for d in rest.items] == ["c"]
    assert rest.next_cursor is None


def test_another_project_never_sees_a_dataset(engine: Engine) -> None:
    repo, a, b = DatasetRepository(engine), _project(engine), _project(engine)
    info, _ = repo.create_version(a, "private", _items(2))
    assert repo.list_datasets(b).items == []
    with pytest.raises(DatasetNotFound):
        repo.versions(b, "private")
    with pytest.raises(DatasetNotFound):
        repo.resolve(b, "private")
    with pytest.raises(DatasetNotFound):
        repo.version_by_id(b, info.id)
    assert repo.items(b, info.id) == []
    assert not repo.delete(b, "private")
    # The same name in project B is its own dataset with its own numbering.
    own, created = repo.create_version(b, "private", _items(2))
    assert created
    assert own.version == 1
    assert own.id != info.id
    assert repo.delete(a, "private")
    assert repo.items(a, info.id) == []
    assert repo.resolve(b, "private") == own


def test_bad_input_is_refused_and_nothing_is_written(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    for name in ("", " padded", "x" * 201, "tab\there"):
        with pytest.raises(ValueError, match="name"):
            repo.create_version(project, name, _items(1))
    with pytest.raises(ValueError, match="at least one item"):
        repo.create_version(project, "empty", [])
    with pytest.raises(ValueError, match="unique"):
        repo.create_version(project, "dup", [DatasetItem("k", "a"), DatasetItem("k", "b")])
    assert repo.list_datasets(project).items == []


def test_concurrent_imports_get_distinct_numbers(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    repo.create_version(project, "race", _items(1))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: repo.create_version(project, "race", _items(n + 2)), range(4)))
    assert all(created for _, created in results)
    assert sorted(info.version for info, _ in results) == [2, 3, 4, 5]


def test_a_large_import_is_stored_whole(engine: Engine) -> None:
    repo, project = DatasetRepository(engine), _project(engine)
    items = [DatasetItem(f"k{i}", f"q{i}", f"a{i}") for i in range(20_000)]
    info, _ = repo.create_version(project, "big", items)
    assert info.item_count == 20_000
    assert repo.items(project, info.id, limit=3, offset=19_998) == items[19_998:]
