"""The HTTP channels: HMAC-signed webhook, Slack-compatible webhook, Alertmanager.

Webhook signatures follow the common ``t=<unix>,v1=<hex>`` scheme over ``"<t>.<body>"``
with HMAC-SHA256, so receivers can reject replays (``verify`` is their check).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson
from pydantic import Field, HttpUrl

from watchkeep.monitor.channels.base import Channel, ChannelConfig, Notification, Transport, iso
from watchkeep.security.egress import AddressPolicy

SIGNATURE_HEADER = "X-Watchkeep-Signature"
RENOTIFY_PERIODS_VALID = 2  # a firing alert sent to Alertmanager outlives one missed renotify


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` recently enough (for receivers)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


class WebConfig(ChannelConfig):
    """A channel whose destination is a URL."""

    url: HttpUrl

    def check_egress(self, policy: AddressPolicy) -> None:
        policy.check_url(str(self.url))


class WebhookConfig(WebConfig):
    secret: str | None = Field(default=None, min_length=16, description="HMAC-SHA256 key for the signature.")
    headers: dict[str, str] = Field(default_factory=dict)


class SlackConfig(WebConfig):
    pass


class AlertmanagerConfig(WebConfig):
    url: HttpUrl = Field(description="Alertmanager base URL, e.g. http://alertmanager:9093")
    labels: dict[str, str] = Field(default_factory=dict)


class WebhookChannel(Channel[WebhookConfig]):
    """The notification as JSON, signed when the channel has a secret."""

    kind = "webhook"
    Config = WebhookConfig

    def send(self, note: Notification, transport: Transport) -> str:
        body = orjson.dumps(note.to_json())
        headers = dict(self.config.headers)
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body, int(time.time()))
        return transport.post_json(str(self.config.url), body, headers)


_SLACK_ICONS = {"ALERT": ":red_circle:", "WARNING": ":large_orange_circle:", "OK": ":large_green_circle:"}


class SlackChannel(Channel[SlackConfig]):
    """A one-message text for a Slack-compatible incoming webhook."""

    kind = "slack"
    Config = SlackConfig

    def send(self, note: Notification, transport: Transport) -> str:
        text = f"{_SLACK_ICONS.get(note.state, ':white_circle:')} *{note.title()}*\n{note.message}"
        return transport.post_json(str(self.config.url), orjson.dumps({"text": text}), {})


class AlertmanagerChannel(Channel[AlertmanagerConfig]):
    """One alert posted to Alertmanager's v2 API (with ``endsAt`` when it resolved).

    Alertmanager resolves an alert by itself ``resolve_timeout`` (5 minutes) after the last
    post unless ``endsAt`` says otherwise, while a firing monitor only posts again every
    ``renotify``: a firing alert's ``endsAt`` is therefore two renotify periods ahead, so it
    stays active until the next renotification (or the resolution) arrives.
    """

    kind = "alertmanager"
    Config = AlertmanagerConfig

    def send(self, note: Notification, transport: Transport) -> str:
        alert: dict[str, Any] = {
            "labels": {
                "alertname": note.monitor,
                "severity": note.severity,
                "project_id": str(note.project_id),
                "source": "watchkeep",
                **self.config.labels,
            },
            "annotations": {"summary": note.title(), "description": note.message},
            "startsAt": iso(note.at_unix_nano),
        }
        if note.kind == "resolved":
            alert["endsAt"] = iso(note.at_unix_nano)
        elif note.renotify_ns is not None:
            alert["endsAt"] = iso(note.at_unix_nano + RENOTIFY_PERIODS_VALID * note.renotify_ns)
        url = str(self.config.url).rstrip("/") + "/api/v2/alerts"
        return transport.post_json(url, orjson.dumps([alert]), {})
