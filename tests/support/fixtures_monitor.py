"""Fixtures for every directory (registered by ``pytest_plugins`` in tests/conftest.py):
a loopback webhook receiver and SMTP mailbox, used by the monitoring and security tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.monitor import Mailbox, Receiver, running_mailbox, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with running_mailbox() as box:
        yield box
