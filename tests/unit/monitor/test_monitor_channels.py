"""The channel registry: one typed class per kind, no string dispatch, failures reported."""

from __future__ import annotations

from typing import get_args

import pytest

from watchkeep.monitor.channels import (
    CHANNELS,
    ChannelKind,
    ChannelSender,
    Notification,
    channel_for,
    validate_config,
)
from watchkeep.security.egress import AddressPolicy

NOTE = Notification(1, 2, "latency", "firing", "ALERT", "OK", "critical", 3.5, "p95 over 2s", 10**18)


def test_every_declared_kind_has_its_class_and_nothing_else() -> None:
    assert set(CHANNELS) == set(get_args(ChannelKind))
    for kind, cls in CHANNELS.items():
        assert cls.kind == kind


def test_a_config_is_parsed_by_its_kinds_model() -> None:
    channel = channel_for("slack", {"url": "https://hooks.example.invalid/x"})
    assert type(channel) is CHANNELS["slack"]
    assert str(channel.config.model_dump()["url"]) == "https://hooks.example.invalid/x"


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown channel kind 'pager'; known: webhook, slack"):
        validate_config("pager", {}, AddressPolicy())


def test_an_internal_destination_is_reported_not_raised() -> None:
    sender = ChannelSender(AddressPolicy(), timeout=1.0)
    try:
        outcome = sender.send("webhook", {"url": "http://127.0.0.1:9/hook"}, NOTE)
    finally:
        sender.close()
    assert outcome["ok"] is False
    assert outcome["category"] == "egress refused"
    assert outcome["attempts"] == 1
