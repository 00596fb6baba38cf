"""Fixtures for SDK unit tests: a local OTLP sink and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import watchkeep as wk
from watchkeep.sdk.client import Client, install
from watchkeep.sdk.testing import OtlpSink

API_KEY = "test-key"


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink(API_KEY) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "wkhome"


@pytest.fixture
def client(sink: OtlpSink, home: Path) -> Iterator[Client]:
    """An active client exporting to ``sink`` with a short interval; shut down afterwards."""
    active = wk.init(
        endpoint=sink.url, api_key=API_KEY, home=home, environment="test", release="r1", flush_interval=0.05
    )
    yield active
    active.shutdown(2)
    install({"enabled": False})
