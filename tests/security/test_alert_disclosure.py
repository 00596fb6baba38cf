"""What an alert channel holds (URLs with tokens, hosts, recipients) and what its failed
deliveries said are shown to the project's admins only; other keys see the channel's
name and kind and a category of each failure."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from tests.support.monitor import (
    LOOPBACK,
    MonitorApi,
    Receiver,
    fire,
    monitor_api,
    running_receiver,
)
from watchkeep.config import Settings
from watchkeep.monitor.channels import failure_category
from watchkeep.security.egress import EgressRefused

TOKEN = "T0KEN-in-the-url-0123456789"


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    with monitor_api(settings.model_copy(update={"egress_allow_networks": LOOPBACK}), database_url) as api:
        yield api


@pytest.fixture
def failing() -> Iterator[Receiver]:
    with running_receiver(status=500) as r:
        yield r


def test_non_admins_see_a_failure_category_not_the_raw_error(mon: MonitorApi, failing: Receiver) -> None:
    channel = {"name": "hook", "kind": "webhook", "config": {"url": f"{failing.url}/hook?token={TOKEN}"}}
    assert mon.client.post("/api/v1/alert-channels", json=channel, headers=mon.auth).status_code == 201
    fire(mon, ["hook"])
    assert len(failing.requests) == 3  # tried, retried, given up
    for role in ("member", "viewer"):
        shown = mon.client.get("/api/v1/alerts", headers=mon.auth_for(role))
        assert shown.status_code == 200
        [delivery] = shown.json()["items"][0]["deliveries"]
        assert (delivery["ok"], delivery["detail"], delivery["category"]) == (False, "HTTP 5xx", "HTTP 5xx")
        assert TOKEN not in shown.text
        assert "127.0.0.1" not in shown.text
    [admin_view] = mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"][0]["deliveries"]
    assert "500" in admin_view["detail"]
    assert admin_view["category"] == "HTTP 5xx"


def test_non_admins_see_a_channels_name_and_kind_not_where_it_goes(mon: MonitorApi) -> None:
    channels = [
        {"name": "hook", "kind": "slack", "config": {"url": f"https://hooks.example.com/services/{TOKEN}"}},
        {
            "name": "mail",
            "kind": "email",
            "config": {
                "host": "smtp.example.com",
                "from": "wk@example.com",
                "to": ["oncall@example.com"],
                "username": "wk",
                "password": "smtp-password-1",
            },
        },
    ]
    for channel in channels:
        assert mon.client.post("/api/v1/alert-channels", json=channel, headers=mon.auth).status_code == 201
    for role in ("member", "viewer"):
        shown = mon.client.get("/api/v1/alert-channels", headers=mon.auth_for(role))
        assert shown.status_code == 200
        assert [(c["name"], c["kind"]) for c in shown.json()["items"]] == [
            ("hook", "slack"),
            ("mail", "email"),
        ]
        for secret in (
            TOKEN,
            "hooks.example.com",
            "smtp.example.com",
            "oncall@example.com",
            "smtp-password-1",
        ):
            assert secret not in shown.text
    admin = mon.client.get("/api/v1/alert-channels", headers=mon.auth).json()["items"]
    assert TOKEN in admin[0]["config"]["url"]
    assert admin[1]["config"]["host"] == "smtp.example.com"
    assert admin[1]["config"]["password"] == "***"  # write-only, even for admins


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", f"https://hooks.example.com/{TOKEN}")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(code, request=request))


def _wrapped(inner: BaseException, outer: Exception) -> Exception:
    try:
        raise outer from inner
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (httpx.ReadTimeout("timed out"), "timeout"),
        (TimeoutError("timed out"), "timeout"),
        (ConnectionRefusedError(111, "Connection refused"), "refused"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "refused"),
        (_status(503), "HTTP 5xx"),
        (_status(404), "HTTP 4xx"),
        (EgressRefused("10.0.0.1 is a private or reserved address"), "egress refused"),
        (OSError("egress refused: 127.0.0.1 is a loopback address"), "egress refused"),
        (_wrapped(ssl.SSLCertVerificationError("self-signed"), httpx.ConnectError("tls")), "TLS error"),
        (RuntimeError(f"anything else, even {TOKEN}"), "error"),
    ],
)
def test_failure_categories(error: Exception, category: str) -> None:
    assert failure_category(error) == category
