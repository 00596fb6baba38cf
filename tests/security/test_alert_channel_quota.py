"""A project cannot create alert channels without bound: ``quota_alert_channels`` caps them,
through the channels API and through YAML monitor files alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.monitor import MonitorApi, monitor_api
from watchkeep.config import Settings


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    with monitor_api(settings.model_copy(update={"quota_alert_channels": 2}), database_url) as api:
        yield api


def channel(name: str) -> dict[str, object]:
    return {"name": name, "kind": "slack", "config": {"url": f"https://hooks.example.com/{name}"}}


def test_the_channel_quota_holds_for_the_api_and_yaml(mon: MonitorApi) -> None:
    for name in ("a", "b", "a"):  # replacing a channel by name does not count twice
        assert (
            mon.client.post("/api/v1/alert-channels", json=channel(name), headers=mon.auth).status_code == 201
        )
    over = mon.client.post("/api/v1/alert-channels", json=channel("c"), headers=mon.auth)
    assert over.status_code == 422
    assert over.json()["error"]["code"] == "quota_exceeded"
    assert "2" in over.json()["error"]["message"]

    yaml = {**mon.auth, "Content-Type": "application/yaml"}
    again = b"channels:\n  - {name: b, kind: slack, config: {url: 'https://hooks.example.com/b2'}}\nmonitors: []\n"
    assert mon.client.post("/api/v1/monitors/apply", content=again, headers=yaml).status_code == 200
    more = (
        b"channels:\n  - {name: d, kind: slack, config: {url: 'https://hooks.example.com/d'}}\nmonitors: []\n"
    )
    refused = mon.client.post("/api/v1/monitors/apply", content=more, headers=yaml)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "quota_exceeded"
    names = [c["name"] for c in mon.client.get("/api/v1/alert-channels", headers=mon.auth).json()["items"]]
    assert names == ["a", "b"]
