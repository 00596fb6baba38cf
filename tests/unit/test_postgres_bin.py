"""Which PostgreSQL build the tests and benchmarks run on (``devtools.postgres``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeep.devtools import postgres


def _fake_build(root: Path, configure: str) -> Path:
    """A ``bin`` directory with ``initdb``, ``pg_ctl`` and a ``pg_config`` printing ``configure``."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("initdb", "pg_ctl"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
    config = bin_dir / "pg_config"
    config.write_text(f'#!/bin/sh\necho "{configure}"\n')
    server = bin_dir / "postgres"
    server.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 18.6'\n")
    for program in (config, server):
        program.chmod(0o755)
    return bin_dir


def test_the_environment_names_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_build(tmp_path, "'--prefix=/x'")
    monkeypatch.setenv(postgres.BIN_ENV, str(bin_dir))
    assert postgres.find_bin_dir() == bin_dir
    cluster = postgres.TempPostgres()
    try:
        assert cluster.version() == "18.6"
    finally:
        cluster.stop()


def test_a_directory_without_the_programs_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.BIN_ENV, str(tmp_path))
    with pytest.raises(postgres.PostgresUnavailable, match="initdb"):
        postgres.find_bin_dir()


@pytest.mark.parametrize(
    ("configure", "expected"),
    [("'--prefix=/x' '--with-lz4' '--with-zstd'", "lz4"), ("'--prefix=/x' '--without-icu'", "pglz")],
)
def test_wal_compression_falls_back_where_the_build_lacks_lz4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configure: str, expected: str
) -> None:
    monkeypatch.setenv(postgres.BIN_ENV, str(_fake_build(tmp_path, configure)))
    cluster = postgres.TempPostgres(settings=postgres.TUNED_POSTGRES)
    try:
        assert cluster.settings["wal_compression"] == expected
        assert postgres.TUNED_POSTGRES["wal_compression"] == "lz4"  # the shared dict is untouched
    finally:
        cluster.stop()
