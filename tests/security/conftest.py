"""Fixtures shared with the monitoring tests: a loopback webhook receiver and SMTP mailbox."""

from tests.integration.monitor.conftest import mailbox, receiver

__all__ = ["mailbox", "receiver"]
