"""Alert channels: HMAC-signed webhook, Slack-compatible webhook, Alertmanager, e-mail.

Each channel kind is a small config model plus a ``send``; a failed delivery is
retried briefly and then reported (never raised), so one dead channel cannot stop the
others or the worker. Webhook signatures follow the common ``t=<unix>,v1=<hex>``
scheme over ``"<t>.<body>"`` with HMAC-SHA256, so receivers can reject replays.

A tenant chooses where its channels point, so every destination follows the egress
policy (``security/egress.py``): on the URL or host when the channel is stored, and on
the address actually connected when it is used (a stored channel, a name that now
resolves inward). Each failure also gets a category, the only part non-admins see.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from watchkeep.monitor.spec import contains_nul
from watchkeep.security.egress import AddressPolicy, EgressRefused, guarded_httpx_client

SIGNATURE_HEADER = "X-Watchkeep-Signature"
RETRIES = 2


@dataclass(frozen=True, slots=True)
class Notification:
    """What every channel is told about a state change."""

    project_id: int
    monitor_id: int
    monitor: str
    kind: str  # firing, resolved, renotify, no_data
    state: str
    previous_state: str
    severity: str
    value: float | None
    message: str
    at_unix_nano: int
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "monitor_id": self.monitor_id,
            "monitor": self.monitor,
            "kind": self.kind,
            "state": self.state,
            "previous_state": self.previous_state,
            "severity": self.severity,
            "value": self.value,
            "message": self.message,
            "description": self.description,
            "at": _iso(self.at_unix_nano),
        }

    def title(self) -> str:
        return f"[{self.state}] {self.monitor} ({self.severity}, {self.kind})"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def check_egress(self, policy: AddressPolicy) -> None:
        """Raise ``EgressRefused`` if the destination is one ``policy`` refuses."""
        raise NotImplementedError


class _WebConfig(_Config):
    url: HttpUrl

    def check_egress(self, policy: AddressPolicy) -> None:
        policy.check_url(str(self.url))


class WebhookConfig(_WebConfig):
    secret: str | None = Field(default=None, min_length=16, description="HMAC-SHA256 key for the signature.")
    headers: dict[str, str] = Field(default_factory=dict)


class SlackConfig(_WebConfig):
    pass


class AlertmanagerConfig(_WebConfig):
    url: HttpUrl = Field(description="Alertmanager base URL, e.g. http://alertmanager:9093")
    labels: dict[str, str] = Field(default_factory=dict)


class EmailConfig(_Config):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: str | None = None
    starttls: bool = False

    def check_egress(self, policy: AddressPolicy) -> None:
        policy.check_host(self.host)


CONFIGS: dict[str, type[_Config]] = {
    "webhook": WebhookConfig,
    "slack": SlackConfig,
    "alertmanager": AlertmanagerConfig,
    "email": EmailConfig,
}
ChannelKind = Literal["webhook", "slack", "alertmanager", "email"]


def validate_config(kind: str, config: dict[str, Any], policy: AddressPolicy) -> dict[str, Any]:
    """The config checked against its kind's model and its destination against ``policy``
    (raises ``ValueError``; ``EgressRefused`` is one, its message says what to allow)."""
    if contains_nul(config):
        raise ValueError("text fields may not contain NUL characters")
    model = CONFIGS.get(kind)
    if model is None:
        raise ValueError(f"unknown channel kind {kind!r}; known: {', '.join(CONFIGS)}")
    checked = model.model_validate(config)
    try:
        checked.check_egress(policy)
    except EgressRefused as exc:
        raise EgressRefused(f"channel destination refused: {exc}") from None
    return checked.model_dump(mode="json", by_alias=True, exclude_none=True)


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


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (httpx wraps ssl and socket errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_category(exc: BaseException) -> str:
    """Why a delivery failed, in words that reveal nothing of the destination: the raw
    message can hold the URL (and a token in it), an internal address or a server banner."""
    chain = list(_chain(exc))
    if any(isinstance(e, EgressRefused) or str(e).startswith("egress refused") for e in chain):
        return "egress refused"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code // 100}xx"
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain):
        return "TLS error"
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return "timeout"
    refused = (httpx.ConnectError, ConnectionError, smtplib.SMTPConnectError, smtplib.SMTPRecipientsRefused)
    if any(isinstance(e, refused) for e in chain):
        return "refused"
    return "error"


class _GuardedSMTP(smtplib.SMTP):
    """smtplib connecting only to addresses the egress policy allows."""

    def __init__(self, policy: AddressPolicy, host: str, port: int, timeout: float) -> None:
        self._policy = policy
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._policy.connect(host, port, timeout)


def _smtp_tls_context(verify: bool) -> ssl.SSLContext:
    """STARTTLS context: certificates and names checked unless the operator turned it off."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ChannelSender:
    """Delivers notifications through ``policy``; one HTTP client shared by all web channels."""

    def __init__(self, policy: AddressPolicy, *, timeout: float = 10.0, verify_smtp_tls: bool = True) -> None:
        self._policy = policy
        self._http = guarded_httpx_client(policy, timeout)
        self._timeout = timeout
        self._smtp_tls = _smtp_tls_context(verify_smtp_tls)

    def close(self) -> None:
        self._http.close()

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
                detail = getattr(self, f"_send_{kind}")(config, note)
                return {"ok": True, "detail": detail, "category": None, "attempts": attempts}
            except Exception as exc:
                last = exc
                if failure_category(exc) == "egress refused":
                    break  # the policy will not change its mind in a second
        assert last is not None
        detail = f"{type(last).__name__}: {last}"[:500]
        return {"ok": False, "detail": detail, "category": failure_category(last), "attempts": attempts}

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        response = self._http.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        response.raise_for_status()
        return f"HTTP {response.status_code}"

    def _send_webhook(self, config: dict[str, Any], note: Notification) -> str:
        cfg = WebhookConfig.model_validate(config)
        body = orjson.dumps(note.to_json())
        headers = dict(cfg.headers)
        if cfg.secret:
            headers[SIGNATURE_HEADER] = sign(cfg.secret, body, int(time.time()))
        return self._post(str(cfg.url), body, headers)

    def _send_slack(self, config: dict[str, Any], note: Notification) -> str:
        cfg = SlackConfig.model_validate(config)
        icon = {"ALERT": ":red_circle:", "WARNING": ":large_orange_circle:", "OK": ":large_green_circle:"}
        text = f"{icon.get(note.state, ':white_circle:')} *{note.title()}*\n{note.message}"
        return self._post(str(cfg.url), orjson.dumps({"text": text}), {})

    def _send_alertmanager(self, config: dict[str, Any], note: Notification) -> str:
        cfg = AlertmanagerConfig.model_validate(config)
        alert: dict[str, Any] = {
            "labels": {
                "alertname": note.monitor,
                "severity": note.severity,
                "project_id": str(note.project_id),
                "source": "watchkeep",
                **cfg.labels,
            },
            "annotations": {"summary": note.title(), "description": note.message},
            "startsAt": _iso(note.at_unix_nano),
        }
        if note.kind == "resolved":
            alert["endsAt"] = _iso(note.at_unix_nano)
        url = str(cfg.url).rstrip("/") + "/api/v2/alerts"
        return self._post(url, orjson.dumps([alert]), {})

    def _send_email(self, config: dict[str, Any], note: Notification) -> str:
        cfg = EmailConfig.model_validate(config)
        msg = EmailMessage()
        msg["Subject"] = note.title()
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(cfg.to)
        msg.set_content(
            f"{note.message}\n\n{orjson.dumps(note.to_json(), option=orjson.OPT_INDENT_2).decode()}"
        )
        with _GuardedSMTP(self._policy, cfg.host, cfg.port, self._timeout) as smtp:
            if cfg.starttls:
                smtp.starttls(context=self._smtp_tls)
            if cfg.username and cfg.password:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(msg)
        return f"sent to {len(cfg.to)} recipient(s)"
