"""The e-mail channel: SMTP (optionally STARTTLS and login) to the addresses the policy allows."""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage

import orjson
from pydantic import Field

from watchkeep.monitor.channels.base import Channel, ChannelConfig, Notification, Transport
from watchkeep.security.egress import AddressPolicy


class EmailConfig(ChannelConfig):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: str | None = None
    starttls: bool = False

    def check_egress(self, policy: AddressPolicy) -> None:
        policy.check_host(self.host)


class _GuardedSMTP(smtplib.SMTP):
    """smtplib connecting only to addresses the egress policy allows."""

    def __init__(self, policy: AddressPolicy, host: str, port: int, timeout: float) -> None:
        self._policy = policy
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._policy.connect(host, port, timeout)


class EmailChannel(Channel[EmailConfig]):
    """The notification's message and its JSON, mailed to every recipient."""

    kind = "email"
    Config = EmailConfig

    def send(self, note: Notification, transport: Transport) -> str:
        cfg = self.config
        msg = EmailMessage()
        msg["Subject"] = note.title()
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(cfg.to)
        msg.set_content(
            f"{note.message}\n\n{orjson.dumps(note.to_json(), option=orjson.OPT_INDENT_2).decode()}"
        )
        with _GuardedSMTP(transport.policy, cfg.host, cfg.port, transport.timeout) as smtp:
            if cfg.starttls:
                smtp.starttls(context=transport.smtp_tls)
            if cfg.username and cfg.password:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(msg)
        return f"sent to {len(cfg.to)} recipient(s)"
