"""Fixtures of the monitoring integration tests: an app whose worker the test drives
(receivers and mailboxes come from tests/support/fixtures_monitor.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tests.support.monitor import LOOPBACK, MonitorApi, monitor_api

from watchkeep.config import Settings


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    with monitor_api(settings.model_copy(update={"egress_allow_networks": LOOPBACK}), database_url) as api:
        yield api


@pytest.fixture
def filler(mon: MonitorApi) -> Callable[..., None]:
    return mon.fill
