"""What every alert channel shares: the notification, the transport and the ``Channel`` base.

A channel kind is a small class like an evaluator: a ``kind`` name, a pydantic ``Config``
model (validated when the channel is stored and again when it is used), the egress check
of its destination and a ``send`` that delivers through the shared ``Transport``.
"""

from __future__ import annotations

import smtplib
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

import httpx
from pydantic import BaseModel, ConfigDict

from watchkeep.security.egress import AddressPolicy, EgressRefused, guarded_httpx_client


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
    renotify_ns: int | None = None  # when a still-firing monitor notifies again (None: never)

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
            "at": iso(self.at_unix_nano),
        }

    def title(self) -> str:
        return f"[{self.state}] {self.monitor} ({self.severity}, {self.kind})"


def iso(ns: int) -> str:
    """``ns`` (Unix nanoseconds) as an ISO 8601 UTC timestamp ending in ``Z``."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


class ChannelConfig(BaseModel):
    """A channel kind's configuration; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    @abstractmethod
    def check_egress(self, policy: AddressPolicy) -> None:
        """Raise ``EgressRefused`` if the destination is one ``policy`` refuses."""


def _smtp_tls_context(verify: bool) -> ssl.SSLContext:
    """STARTTLS context: certificates and names checked unless the operator turned it off."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Transport:
    """The connections channels deliver through, every one under the egress ``policy``:
    one HTTP client shared by the web channels, SMTP settings for e-mail."""

    def __init__(self, policy: AddressPolicy, *, timeout: float = 10.0, verify_smtp_tls: bool = True) -> None:
        self.policy = policy
        self.timeout = timeout
        self.smtp_tls = _smtp_tls_context(verify_smtp_tls)
        self._http = guarded_httpx_client(policy, timeout)

    def post_json(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        """POST a JSON ``body``; the outcome in words, raising on a non-2xx answer."""
        response = self._http.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        response.raise_for_status()
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        self._http.close()


C = TypeVar("C", bound=ChannelConfig)


class Channel(ABC, Generic[C]):
    """Base class: subclasses set ``kind``, ``Config`` and ``send``."""

    kind: ClassVar[str]
    Config: ClassVar[type[ChannelConfig]]

    def __init__(self, config: C) -> None:
        self.config = config

    @classmethod
    def parse(cls, config: dict[str, Any]) -> Channel[Any]:
        """The channel for a stored or submitted ``config`` (raises pydantic's ``ValidationError``)."""
        return cls(cast("C", cls.Config.model_validate(config)))

    def check_egress(self, policy: AddressPolicy) -> None:
        """Raise ``EgressRefused`` if ``policy`` refuses this channel's destination."""
        self.config.check_egress(policy)

    @abstractmethod
    def send(self, note: Notification, transport: Transport) -> str:
        """Deliver ``note``; the outcome in words (raises on failure)."""


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
