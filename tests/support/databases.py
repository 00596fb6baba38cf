"""Which databases a run tests on: ``pytest --db sqlite|postgres|both`` (default both)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

CHOICES = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=sorted(CHOICES),
        default="both",
        help="databases that database_url tests run on (default: both; sqlite starts no PostgreSQL)",
    )


def chosen(config: pytest.Config) -> tuple[str, ...]:
    """The databases of this run, in a stable order."""
    return CHOICES[str(config.getoption("--db"))]


def params(config: pytest.Config) -> list[object]:
    """``database_url`` parameters; the PostgreSQL one carries the ``postgres`` marker, so
    ``-m "not postgres"`` deselects it."""
    return [
        pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
        for name in chosen(config)
    ]


def fresh_database_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    """An empty, unmigrated database of ``database_url``'s kind (for migration tests); skips
    where PostgreSQL is a given server rather than a throwaway cluster to create one in."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    pg = request.getfixturevalue("postgres")
    if isinstance(pg, str):
        pytest.skip("needs a throwaway PostgreSQL cluster to create a database in")
    return str(pg.create_database(f"m_{uuid.uuid4().hex[:12]}"))
