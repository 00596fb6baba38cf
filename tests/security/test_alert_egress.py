"""Alert channels cannot be aimed inward: webhook, Slack, Alertmanager and SMTP destinations
follow the egress address policy when a channel is created and again at delivery, and
STARTTLS to an SMTP host checks its certificate unless the operator turns that off."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.monitor import (
    LOOPBACK,
    Mailbox,
    MonitorApi,
    Receiver,
    fire,
    monitor_api,
    running_mailbox,
)
from watchkeep.config import Settings

INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://localhost:8700/hook",
    "http://[::1]/hook",
]
WEB_KINDS = ["webhook", "slack", "alertmanager"]


def email(host: str, port: int = 25, starttls: bool = False) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "from": "wk@example.com",
        "to": ["oncall@example.com"],
        "starttls": starttls,
    }


@pytest.fixture
def guarded(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    """An app with the default policy: nothing internal is allow-listed."""
    with monitor_api(settings, database_url) as api:
        yield api


@pytest.mark.parametrize("kind", WEB_KINDS)
def test_a_channel_to_a_local_receiver_is_refused_when_created(
    guarded: MonitorApi, receiver: Receiver, kind: str
) -> None:
    channel = {"name": "inward", "kind": kind, "config": {"url": f"{receiver.url}/hook"}}
    response = guarded.client.post("/api/v1/alert-channels", json=channel, headers=guarded.auth)
    assert response.status_code == 422
    assert "loopback" in response.json()["error"]["message"]
    assert guarded.client.get("/api/v1/alert-channels", headers=guarded.auth).json()["items"] == []


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_urls_are_refused_when_created(guarded: MonitorApi, url: str) -> None:
    channel = {"name": "inward", "kind": "webhook", "config": {"url": url}}
    response = guarded.client.post("/api/v1/alert-channels", json=channel, headers=guarded.auth)
    assert response.status_code == 422
    assert "WATCHKEEP_EGRESS_ALLOW_NETWORKS" in response.json()["error"]["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "192.168.1.1"])
def test_an_internal_smtp_host_is_refused_when_created(guarded: MonitorApi, host: str) -> None:
    channel = {"name": "mail", "kind": "email", "config": email(host)}
    response = guarded.client.post("/api/v1/alert-channels", json=channel, headers=guarded.auth)
    assert response.status_code == 422


def test_channels_declared_in_yaml_are_checked_too(guarded: MonitorApi) -> None:
    body = b"""
channels:
  - {name: meta, kind: webhook, config: {url: "http://169.254.169.254/latest/meta-data/"}}
monitors: []
"""
    headers = {**guarded.auth, "Content-Type": "application/yaml"}
    response = guarded.client.post("/api/v1/monitors/apply", content=body, headers=headers)
    assert response.status_code == 422
    assert guarded.client.get("/api/v1/alert-channels", headers=guarded.auth).json()["items"] == []


def test_a_stored_web_channel_is_not_delivered_to_loopback(guarded: MonitorApi, receiver: Receiver) -> None:
    """A URL stored before the policy (or with a wider one) is checked again when it is called."""
    repo = guarded.services.monitoring.channels
    for kind in WEB_KINDS:
        repo.upsert(guarded.project_id, kind, kind, {"url": f"{receiver.url}/{kind}"})
    repo.upsert(
        guarded.project_id,
        "by-name",
        "webhook",
        {"url": f"{receiver.url.replace('127.0.0.1', 'localhost')}/n"},
    )
    deliveries = fire(guarded, [*WEB_KINDS, "by-name"])
    assert receiver.requests == []
    assert len(deliveries) == 4
    assert all(not d["ok"] and d["category"] == "egress refused" for d in deliveries)


def test_a_stored_smtp_host_on_loopback_is_not_delivered(
    guarded: MonitorApi, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    guarded.services.monitoring.channels.upsert(guarded.project_id, "mail", "email", email("127.0.0.1", port))
    [delivery] = fire(guarded, ["mail"])
    assert box.messages == []
    assert (delivery["ok"], delivery["category"]) == (False, "egress refused")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server TLS context with a self-signed certificate for 127.0.0.1."""
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("verify", [True, False])
def test_starttls_checks_the_certificate_unless_the_operator_says_not_to(
    settings: Settings, database_url: str, self_signed: ssl.SSLContext, verify: bool
) -> None:
    allowed = settings.model_copy(update={"egress_allow_networks": LOOPBACK, "smtp_verify_tls": verify})
    with (
        running_mailbox(tls_context=self_signed, require_starttls=True) as (box, port),
        monitor_api(allowed, database_url) as mon,
    ):
        channel = {"name": "mail", "kind": "email", "config": email("127.0.0.1", port, starttls=True)}
        assert mon.client.post("/api/v1/alert-channels", json=channel, headers=mon.auth).status_code == 201
        [delivery] = fire(mon, ["mail"])
    if verify:  # a self-signed certificate: a man in the middle would read the alert and the password
        assert box.messages == []
        assert (delivery["ok"], delivery["category"]) == (False, "TLS error")
    else:
        assert delivery["ok"]
        assert len(box.messages) == 1
