"""SDK settings: explicit arguments win over ``WATCHKEEP_*`` environment variables.

Parsing never raises: a malformed variable is reported with a warning and its default
is used, because a typo in a deployment manifest must not take the application down.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger("watchkeep.sdk")

Redactor = Callable[[str, str], str]
"""``redact(attribute_key, text) -> text``: applied to every string attribute value."""

_T = TypeVar("_T")


def _redactor(choice: Redactor | bool) -> Redactor | None:
    """``True``: the built-in PII redactor (imported only then: it loads phonenumbers)."""
    if choice is True:
        from watchkeep.sdk.redact import PiiRedactor

        return PiiRedactor()
    return None if choice is False else choice


ENV_PREFIX = "WATCHKEEP_"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the client needs; immutable so the export thread can read it freely."""

    endpoint: str = "http://127.0.0.1:8700"
    api_key: str | None = None
    environment: str | None = None
    release: str | None = None
    service_name: str = "unknown_service"
    sample_rate: float = 1.0
    capture_content: bool = True
    redact: Redactor | None = None
    enabled: bool = True
    set_global: bool = False
    home: Path = field(default_factory=lambda: Path.home() / ".watchkeep")
    spool_max_bytes: int = 256 * 1024 * 1024
    queue_size: int = 8192
    batch_size: int = 512
    flush_interval: float = 1.0
    export_timeout: float = 10.0
    shutdown_timeout: float = 5.0
    max_payload_chars: int = 32_768

    @property
    def spool_root(self) -> Path:
        """The folder every destination's spool lives under."""
        return self.home / "spool"

    @property
    def spool_dir(self) -> Path:
        """This destination's own spool: another endpoint or key never reads it."""
        return self.spool_root / destination_id(self.endpoint, self.api_key)

    @property
    def active(self) -> bool:
        """Tracing runs only when enabled and a key is present (no key: warn, no-op)."""
        return self.enabled and bool(self.api_key)


def destination_id(endpoint: str, api_key: str | None) -> str:
    """A digest naming where spooled data goes (endpoint and key, never the key in clear)."""
    material = f"watchkeep-spool-v1\0{endpoint.rstrip('/')}\0{api_key or ''}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def _parse(name: str, raw: str, convert: Callable[[str], _T], default: _T) -> _T:
    try:
        return convert(raw)
    except (TypeError, ValueError):
        logger.warning("watchkeep: ignoring %s=%r (not valid); using %r", name, raw, default)
        return default


def _to_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _to_rate(raw: str) -> float:
    rate = float(raw)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(raw)
    return rate


def _positive(convert: Callable[[str], _T]) -> Callable[[str], _T]:
    def parse(raw: str) -> _T:
        value = convert(raw)
        if not value > 0:  # type: ignore[operator]
            raise ValueError(raw)
        return value

    return parse


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "endpoint": str,
    "api_key": str,
    "environment": str,
    "release": str,
    "service_name": str,
    "sample_rate": _to_rate,
    "capture_content": _to_bool,
    "enabled": _to_bool,
    "set_global": _to_bool,
    "home": Path,
    "spool_max_bytes": _positive(int),
    "queue_size": _positive(int),
    "batch_size": _positive(int),
    "flush_interval": _positive(float),
    "export_timeout": _positive(float),
    "shutdown_timeout": _positive(float),
    "max_payload_chars": _positive(int),
}


def _default_service_name() -> str:
    main = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return Path(main).stem or "unknown_service"


def load_config(overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """Build a Config from keyword arguments, then ``WATCHKEEP_<NAME>`` variables, then defaults.

    Unknown keyword names are warned about and ignored rather than raised.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    defaults = Config()
    for name, convert in _CONVERTERS.items():
        if overrides.get(name) is not None:
            # Explicit arguments are validated like variables: a wrong type warns.
            values[name] = _parse(name, str(overrides[name]), convert, getattr(defaults, name))
            continue
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None and name == "service_name":
            raw = env.get("OTEL_SERVICE_NAME")
        if raw is not None and raw != "":
            values[name] = _parse(ENV_PREFIX + name.upper(), raw, convert, getattr(defaults, name))
    if "service_name" not in values:
        values["service_name"] = _default_service_name()
    if overrides.get("redact") is not None:
        values["redact"] = _redactor(overrides["redact"])
    unknown = set(overrides) - set(_CONVERTERS) - {"redact"}
    if unknown:
        logger.warning("watchkeep: ignoring unknown init() arguments: %s", sorted(unknown))
    if "endpoint" in values:
        values["endpoint"] = str(values["endpoint"]).rstrip("/")
    if "sample_rate" in values and not 0.0 <= float(values["sample_rate"]) <= 1.0:
        logger.warning("watchkeep: sample_rate must be within [0, 1]; using 1.0")
        values["sample_rate"] = 1.0
    return Config(**values)
