"""Alert channels: HMAC-signed webhook, Slack-compatible webhook, Alertmanager, e-mail.

Each kind is a small ``Channel`` class (``base.py``) in ``CHANNELS``; a failed delivery is
retried briefly and then reported (never raised), so one dead channel cannot stop the
others or the worker.

A tenant chooses where its channels point, so every destination follows the egress
policy (``security/egress.py``): on the URL or host when the channel is stored, and on
the address actually connected when it is used (a stored channel, a name that now
resolves inward). Each failure also gets a category, the only part non-admins see.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from watchkeep.monitor.channels.base import (
    Channel,
    ChannelConfig,
    Notification,
    Transport,
    failure_category,
)
from watchkeep.monitor.channels.mail import EmailChannel, EmailConfig
from watchkeep.monitor.channels.web import (
    SIGNATURE_HEADER,
    AlertmanagerChannel,
    AlertmanagerConfig,
    SlackChannel,
    SlackConfig,
    WebhookChannel,
    WebhookConfig,
    sign,
    verify,
)
from watchkeep.monitor.spec import contains_nul
from watchkeep.security.egress import AddressPolicy, EgressRefused

__all__ = [
    "CHANNELS",
    "RETRIES",
    "SIGNATURE_HEADER",
    "AlertmanagerConfig",
    "Channel",
    "ChannelConfig",
    "ChannelKind",
    "ChannelSender",
    "EmailConfig",
    "Notification",
    "SlackConfig",
    "Transport",
    "WebhookConfig",
    "channel_for",
    "failure_category",
    "sign",
    "validate_config",
    "verify",
]

RETRIES = 2
CHANNELS: dict[str, type[Channel[Any]]] = {
    c.kind: c for c in (WebhookChannel, SlackChannel, AlertmanagerChannel, EmailChannel)
}
ChannelKind = Literal["webhook", "slack", "alertmanager", "email"]


def channel_for(kind: str, config: dict[str, Any]) -> Channel[Any]:
    """The channel of ``kind`` with ``config`` (raises ``ValueError`` for an unknown kind
    or an invalid config: pydantic's ``ValidationError`` is one)."""
    cls = CHANNELS.get(kind)
    if cls is None:
        raise ValueError(f"unknown channel kind {kind!r}; known: {', '.join(CHANNELS)}")
    return cls.parse(config)


def validate_config(kind: str, config: dict[str, Any], policy: AddressPolicy) -> dict[str, Any]:
    """The config checked against its kind's model and its destination against ``policy``
    (raises ``ValueError``; ``EgressRefused`` is one, its message says what to allow)."""
    if contains_nul(config):
        raise ValueError("text fields may not contain NUL characters")
    channel = channel_for(kind, config)
    try:
        channel.check_egress(policy)
    except EgressRefused as exc:
        raise EgressRefused(f"channel destination refused: {exc}") from None
    dumped: dict[str, Any] = channel.config.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


class ChannelSender:
    """Delivers notifications through ``policy``; one transport shared by all channels."""

    def __init__(self, policy: AddressPolicy, *, timeout: float = 10.0, verify_smtp_tls: bool = True) -> None:
        self._transport = Transport(policy, timeout=timeout, verify_smtp_tls=verify_smtp_tls)

    def close(self) -> None:
        self._transport.close()

    def send(self, kind: str, config: dict[str, Any], note: Notification) -> dict[str, Any]:
        """Deliver ``note``; returns ``{"ok", "detail", "category", "attempts"}`` (never raises).

        ``detail`` is the raw outcome (for admins), ``category`` the failure's kind (None on success).
        """
        last: Exception | None = None
        attempts = 0
        while attempts <= RETRIES:
            if attempts:
                time.sleep(0.2 * attempts)
            attempts += 1
            try:
                detail = channel_for(kind, config).send(note, self._transport)
                return {"ok": True, "detail": detail, "category": None, "attempts": attempts}
            except Exception as exc:
                last = exc
                if failure_category(exc) == "egress refused":
                    break  # the policy will not change its mind in a second
        assert last is not None
        detail = f"{type(last).__name__}: {last}"[:500]
        return {"ok": False, "detail": detail, "category": failure_category(last), "attempts": attempts}
