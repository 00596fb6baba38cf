"""The datasets and evaluation-runs methods of ``Client`` and ``AsyncClient``.

Each method is one request description (``Call``) built by ``_EvalCalls``; the two mixins
only send it, synchronously or not, through the client's own ``_get`` and ``_walk``. The
list methods are lazy iterators: dataset items page by offset, results by id, datasets
and runs by keyset cursor, all normalised to ``Page.next_cursor`` so one walker serves all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from watchkeep.client.eval_models import (
    Dataset,
    DatasetItem,
    DatasetVersion,
    EvalResult,
    EvalRun,
    RunComparison,
)
from watchkeep.client.models import Page

T = TypeVar("T")
Params = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One GET: path, parameters and how to read the JSON answer."""

    path: str
    params: Params
    parse: Callable[[Any], T]


Walk = Callable[[str | None], Call[Page[T]]]


def _name(name: str) -> str:
    if not name or "/" in name:
        raise ValueError("a dataset name is 1 to 200 characters without '/'")
    return quote(name, safe="")


def _check(value: int, low: int, high: int, what: str) -> None:
    if not low <= value <= high:
        raise ValueError(f"{what} must be {low} to {high}")


class _EvalCalls:
    """The request of every method, shared by the sync and async mixins."""

    @staticmethod
    def datasets(page_size: int) -> Walk[Dataset]:
        _check(page_size, 1, 200, "page_size")

        def make(cursor: str | None) -> Call[Page[Dataset]]:
            params = [("limit", str(page_size))] + ([("cursor", cursor)] if cursor else [])
            return Call("/api/v1/datasets", params, _page(Dataset.from_json, "next_cursor"))

        return make

    @staticmethod
    def dataset(name: str) -> Call[Dataset]:
        return Call(f"/api/v1/datasets/{_name(name)}", [], Dataset.from_json)

    @staticmethod
    def versions(name: str) -> Call[list[DatasetVersion]]:
        return Call(
            f"/api/v1/datasets/{_name(name)}/versions",
            [],
            lambda data: [DatasetVersion.from_json(v) for v in data["items"]],
        )

    @staticmethod
    def version(name: str, version: int | str) -> Call[DatasetVersion]:
        return Call(f"/api/v1/datasets/{_name(name)}/versions/{version}", [], DatasetVersion.from_json)

    @staticmethod
    def items(name: str, version: int | str, split: str | None, page_size: int) -> Walk[DatasetItem]:
        _check(page_size, 1, 1000, "page_size")
        path = f"/api/v1/datasets/{_name(name)}/versions/{version}/items"

        def make(cursor: str | None) -> Call[Page[DatasetItem]]:
            offset = int(cursor or 0)
            params = [("limit", str(page_size)), ("offset", str(offset))] + (
                [("split", split)] if split else []
            )

            def parse(data: Any) -> Page[DatasetItem]:
                items = tuple(DatasetItem.from_json(i) for i in data["items"])
                return Page(items, str(offset + len(items)) if len(items) == page_size else None)

            return Call(path, params, parse)

        return make

    @staticmethod
    def runs(dataset: str | None, status: str | None, page_size: int) -> Walk[EvalRun]:
        _check(page_size, 1, 200, "page_size")
        filters = [(k, v) for k, v in (("dataset", dataset), ("status", status)) if v is not None]

        def make(cursor: str | None) -> Call[Page[EvalRun]]:
            params = filters + [("limit", str(page_size))] + ([("cursor", cursor)] if cursor else [])
            return Call("/api/v1/eval-runs", params, _page(EvalRun.from_json, "next_cursor"))

        return make

    @staticmethod
    def run(run_id: int) -> Call[EvalRun]:
        return Call(f"/api/v1/eval-runs/{int(run_id)}", [], EvalRun.from_json)

    @staticmethod
    def results(run_id: int, failed_only: bool, item_key: str | None, page_size: int) -> Walk[EvalResult]:
        _check(page_size, 1, 500, "page_size")
        base = [("limit", str(page_size)), ("failed_only", str(failed_only).lower())]
        base += [("item_key", item_key)] if item_key else []

        def make(cursor: str | None) -> Call[Page[EvalResult]]:
            params = base + ([("after", cursor)] if cursor else [])
            return Call(
                f"/api/v1/eval-runs/{int(run_id)}/results", params, _page(EvalResult.from_json, "next_after")
            )

        return make

    @staticmethod
    def compare(
        baseline: int, candidate: int, alpha: float | None, max_drop: float | None
    ) -> Call[RunComparison]:
        params = [("baseline", str(int(baseline)))]
        params += [(k, str(v)) for k, v in (("alpha", alpha), ("max_drop", max_drop)) if v is not None]
        return Call(f"/api/v1/eval-runs/{int(candidate)}/compare", params, RunComparison.from_json)


def _page(item: Callable[[dict[str, Any]], T], cursor_key: str) -> Callable[[Any], Page[T]]:
    def parse(data: Any) -> Page[T]:
        following = data.get(cursor_key)
        return Page(tuple(item(i) for i in data["items"]), str(following) if following is not None else None)

    return parse


class EvalMethods(ABC):
    """Datasets and runs for ``Client`` (it provides ``_get`` and ``_walk``)."""

    @abstractmethod
    def _get(self, call: Call[T]) -> T:
        """One request, parsed by ``call`` (``Client``'s)."""

    @abstractmethod
    def _walk(self, make: Walk[T]) -> Iterator[T]:
        """Every item of a paged listing (``Client``'s)."""

    def datasets(self, *, page_size: int = 200) -> Iterator[Dataset]:
        """Every dataset of the project by name, each with its latest version."""
        return self._walk(_EvalCalls.datasets(page_size))

    def dataset(self, name: str) -> Dataset:
        """One dataset (``NotFound`` if not in the project)."""
        return self._get(_EvalCalls.dataset(name))

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of a dataset, newest first."""
        return self._get(_EvalCalls.versions(name))

    def dataset_version(self, name: str, version: int | str = "latest") -> DatasetVersion:
        """A version by number, ``latest`` or content-hash prefix."""
        return self._get(_EvalCalls.version(name, version))

    def dataset_items(
        self, name: str, version: int | str = "latest", *, split: str | None = None, page_size: int = 1000
    ) -> Iterator[DatasetItem]:
        """A version's items in order (optionally one split), a page at a time."""
        return self._walk(_EvalCalls.items(name, version, split, page_size))

    def eval_runs(
        self, *, dataset: str | None = None, status: str | None = None, page_size: int = 200
    ) -> Iterator[EvalRun]:
        """The project's runs, newest first (of one dataset, in one status)."""
        return self._walk(_EvalCalls.runs(dataset, status, page_size))

    def eval_run(self, run_id: int) -> EvalRun:
        """One run (``NotFound`` if not in the project)."""
        return self._get(_EvalCalls.run(run_id))

    def eval_results(
        self, run_id: int, *, failed_only: bool = False, item_key: str | None = None, page_size: int = 500
    ) -> Iterator[EvalResult]:
        """A run's per-item results in id order, fetched a page at a time."""
        return self._walk(_EvalCalls.results(run_id, failed_only, item_key, page_size))

    def compare_runs(
        self, baseline: int, candidate: int, *, alpha: float | None = None, max_drop: float | None = None
    ) -> RunComparison:
        """Candidate against baseline with the candidate's gate (``alpha``, ``max_drop`` override it)."""
        return self._get(_EvalCalls.compare(baseline, candidate, alpha, max_drop))


class AsyncEvalMethods(ABC):
    """The same for ``AsyncClient``: ``await`` the lookups, ``async for`` the iterators."""

    @abstractmethod
    async def _get(self, call: Call[T]) -> T:
        """One request, parsed by ``call`` (``AsyncClient``'s)."""

    @abstractmethod
    def _walk(self, make: Walk[T]) -> AsyncIterator[T]:
        """Every item of a paged listing (``AsyncClient``'s)."""

    def datasets(self, *, page_size: int = 200) -> AsyncIterator[Dataset]:
        return self._walk(_EvalCalls.datasets(page_size))

    async def dataset(self, name: str) -> Dataset:
        return await self._get(_EvalCalls.dataset(name))

    async def dataset_versions(self, name: str) -> list[DatasetVersion]:
        return await self._get(_EvalCalls.versions(name))

    async def dataset_version(self, name: str, version: int | str = "latest") -> DatasetVersion:
        return await self._get(_EvalCalls.version(name, version))

    def dataset_items(
        self, name: str, version: int | str = "latest", *, split: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[DatasetItem]:
        return self._walk(_EvalCalls.items(name, version, split, page_size))

    def eval_runs(
        self, *, dataset: str | None = None, status: str | None = None, page_size: int = 200
    ) -> AsyncIterator[EvalRun]:
        return self._walk(_EvalCalls.runs(dataset, status, page_size))

    async def eval_run(self, run_id: int) -> EvalRun:
        return await self._get(_EvalCalls.run(run_id))

    def eval_results(
        self, run_id: int, *, failed_only: bool = False, item_key: str | None = None, page_size: int = 500
    ) -> AsyncIterator[EvalResult]:
        return self._walk(_EvalCalls.results(run_id, failed_only, item_key, page_size))

    async def compare_runs(
        self, baseline: int, candidate: int, *, alpha: float | None = None, max_drop: float | None = None
    ) -> RunComparison:
        return await self._get(_EvalCalls.compare(baseline, candidate, alpha, max_drop))
