"""Server-side PII protection: per-project actions, a keyed hash and the redaction of writes.

Detection is ``watchkeep.sdk.redact`` (one implementation for client and server; the
server may import the SDK, never the reverse). This module adds what only the server
has: each project's actions from ``privacy_settings`` (cached a few seconds, so ingest
does not read the table per export), the hash key, optional Presidio for names and places,
and helpers that redact what ingest, the gateway, scores and datasets are about to store.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, Protocol, TypeVar

from watchkeep.config import Settings
from watchkeep.sdk.redact import (
    ACTIONS,
    ENTITIES,
    Action,
    Hasher,
    default_hasher,
    pii_hits,
    redact_text,
)
from watchkeep.store.privacy_repository import PrivacySettingsRepository
from watchkeep.store.rows import SPAN_COLUMNS

__all__ = [
    "CACHE_SECONDS",
    "PRESIDIO_ENTITIES",
    "PiiPolicy",
    "PiiService",
    "PortablePolicy",
    "parse_actions",
    "parse_regions",
]


class _DatasetItem(Protocol):
    @property
    def input(self) -> Any: ...

    @property
    def expected(self) -> Any: ...

    @property
    def metadata(self) -> Any: ...


_log = logging.getLogger(__name__)
_Item = TypeVar("_Item", bound=_DatasetItem)

CACHE_SECONDS = 5.0
STALE_RETRY_SECONDS = 1.0
"""While the store cannot be read, a project's last policy is used again for this long."""
STALE_WARN_SECONDS = 60.0
"""An outage is logged when it starts, then at most this often per project, and at its end."""
DEFAULT_REGIONS = ("US",)
MAX_REGIONS = 8
"""Each region costs a phone pass over triggered text: a bounded list keeps ingest cheap."""
_REGIONS_KEY = "phone_regions"  # beside the actions in the stored ``pii`` JSON
PRESIDIO_ENTITIES = {"person": "PERSON", "location": "LOCATION"}
_KEY_FILE = "pii_hash.key"


def parse_actions(raw: Mapping[str, Any]) -> dict[str, Action]:
    """Validated ``{entity: action}``; raises ``ValueError`` naming what is wrong."""
    known = (*ENTITIES, *PRESIDIO_ENTITIES)
    out: dict[str, Action] = {}
    for entity, action in raw.items():
        if entity not in known:
            raise ValueError(f"unknown PII entity {entity!r} (known: {', '.join(known)})")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} for {entity} (one of: {', '.join(ACTIONS)})")
        out[entity] = action
    return out


def parse_regions(raw: Any) -> tuple[str, ...]:
    """Validated phone regions (ISO 3166 codes ``phonenumbers`` knows, 1 to
    ``MAX_REGIONS``, no repeats); raises ``ValueError`` naming what is wrong."""
    if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= MAX_REGIONS:
        raise ValueError(f"phone_regions must be a list of 1 to {MAX_REGIONS} region codes")
    known = _supported_regions()
    for region in raw:
        if not isinstance(region, str) or region not in known:
            raise ValueError(f"unknown phone region {region!r} (ISO 3166 codes such as US, DE, FR)")
    if len(set(raw)) != len(raw):
        raise ValueError("phone_regions repeats a region")
    return tuple(raw)


def _supported_regions() -> frozenset[str]:
    try:
        import phonenumbers
    except ImportError:  # pragma: no cover - the server always installs it
        return frozenset(DEFAULT_REGIONS)
    return frozenset(phonenumbers.SUPPORTED_REGIONS)


def default_actions() -> dict[str, Action]:
    """What a project without stored settings gets: every structured entity masked."""
    return dict.fromkeys(ENTITIES, "mask")


def hash_key(settings: Settings) -> bytes:
    """The HMAC key: ``pii_hash_key``, else derived from the encryption key, else a key file."""
    if settings.pii_hash_key is not None:
        return settings.pii_hash_key.get_secret_value().encode()
    if settings.encryption_key is not None:
        master = base64.b64decode(settings.encryption_key.get_secret_value())
        return hmac.new(master, b"watchkeep pii hash key", hashlib.sha256).digest()
    path = settings.home / _KEY_FILE
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        try:  # created once, readable by the owner only; a racing process keeps the winner's
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text().strip().encode()


class PiiPolicy:
    """One project's actions, applied to texts and JSON-able values."""

    def __init__(
        self,
        actions: Mapping[str, Action],
        hasher: Hasher,
        presidio: Any | None = None,
        regions: tuple[str, ...] = DEFAULT_REGIONS,
    ) -> None:
        self.actions = dict(actions)
        self.regions = regions
        self._hasher = hasher
        self._presidio = presidio
        self.active = any(a != "keep" for a in self.actions.values())

    def text(self, value: str) -> str:
        """``value`` redacted (JSON text stays valid JSON)."""
        if not self.active or not value:
            return value
        out = redact_text(value, self.actions, self._hasher, self.regions)
        if self._presidio is not None:
            out = self._names(out)
        return out

    def changes(self, values: Sequence[Any]) -> dict[int, str]:
        """The strings among ``values`` that redaction changes, by position, each redacted as
        ``text`` would, after one trigger pass over them all (most batches hold none)."""
        if not self.active:
            return {}
        if self._presidio is not None:  # names have no trigger: every string is redacted
            redacted = {i: self.text(v) for i, v in enumerate(values) if v and isinstance(v, str)}
        else:
            found = pii_hits([v for v in values if v and isinstance(v, str)], self.regions)
            if True not in found:
                return {}
            hit = iter(found)
            redacted = {
                i: self._screened(v) for i, v in enumerate(values) if v and isinstance(v, str) and next(hit)
            }
        return {i: v for i, v in redacted.items() if v != values[i]}

    def _screened(self, value: str) -> str:
        return redact_text(value, self.actions, self._hasher, self.regions, screened=True)

    def value(self, value: Any) -> Any:
        """Strings anywhere inside dicts and lists redacted; other values unchanged."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def _names(self, text: str) -> str:
        wanted = {
            PRESIDIO_ENTITIES[e]: e for e, a in self.actions.items() if e in PRESIDIO_ENTITIES and a != "keep"
        }
        if not wanted:
            return text
        analyzer: Any = self._presidio
        results = analyzer.analyze(text=text, entities=list(wanted), language="en")
        for r in sorted(results, key=lambda r: r.start, reverse=True):
            entity = wanted[r.entity_type]
            label = entity.upper()
            if self.actions[entity] == "drop":
                return "[REDACTED]"
            tag = (
                f"[{label}:{self._hasher(entity, text[r.start : r.end])}]"
                if self.actions[entity] == "hash"
                else f"[{label}]"
            )
            text = text[: r.start] + tag + text[r.end :]
        return text


def _payload_rows(rows: list[tuple[Any, ...]], policy: PiiPolicy) -> list[tuple[Any, ...]]:
    """Payload rows ``(project, trace, span, input, output, ...)`` with both texts redacted,
    after one trigger pass over the whole batch (a clean row comes back as it is)."""
    changed = policy.changes([t for r in rows for t in (r[3], r[4])])
    if not changed:
        return rows
    out = list(rows)
    for n in {i // 2 for i in changed}:
        r = rows[n]
        out[n] = (*r[:3], changed.get(2 * n, r[3]), changed.get(2 * n + 1, r[4]), *r[5:])
    return out


# The free-text cells of a span row an application fills: its status message (exception
# text), its leftover attributes and its kept events (both JSON text, redacted value by value).
_SPAN_TEXT_AT = tuple(SPAN_COLUMNS.index(c) for c in ("status_message", "attributes", "events"))
_span_texts = itemgetter(*_SPAN_TEXT_AT)


def _span_rows(rows: list[tuple[Any, ...]], policy: PiiPolicy) -> list[tuple[Any, ...]]:
    """Span rows (in ``SPAN_COLUMNS`` order) with their free-text cells redacted, after one
    trigger pass over the whole batch's cells (a clean row comes back as it is)."""
    width = len(_SPAN_TEXT_AT)
    changed = policy.changes([c for r in rows for c in _span_texts(r)])
    if not changed:
        return rows
    out = list(rows)
    for n in {i // width for i in changed}:
        cells = list(rows[n])
        for k, at in enumerate(_SPAN_TEXT_AT):
            cells[at] = changed.get(n * width + k, cells[at])
        out[n] = tuple(cells)
    return out


@lru_cache(maxsize=64)
def _policy_for(actions: tuple[tuple[str, Action], ...], key: bytes, regions: tuple[str, ...]) -> PiiPolicy:
    return PiiPolicy(dict(actions), default_hasher(key), regions=regions)


@dataclass(frozen=True, slots=True)
class PortablePolicy:
    """One project's structured-entity policy as plain data, so it pickles to the decode
    workers and redaction runs there, in parallel and off the server's GIL."""

    actions: tuple[tuple[str, Action], ...]
    key: bytes
    regions: tuple[str, ...] = DEFAULT_REGIONS

    def redact_payloads(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows of this policy's project, redacted as ``PiiService.redact_payloads`` would."""
        return _payload_rows(rows, _policy_for(self.actions, self.key, self.regions))

    def redact_spans(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Span rows of this policy's project, redacted as ``PiiService.redact_spans`` would."""
        return _span_rows(rows, _policy_for(self.actions, self.key, self.regions))


def _presidio_analyzer() -> Any | None:
    try:
        from presidio_analyzer import AnalyzerEngine  # type: ignore[import-not-found]
    except ImportError:
        return None
    return AnalyzerEngine()


class PolicyUnavailable(RuntimeError):
    """A project's settings could not be read (the store is away) and no earlier policy is
    cached: its spans must wait (spooled or refused), never be stored unredacted."""


class PiiService:
    """Each project's ``PiiPolicy``, read through a short per-project cache."""

    def __init__(
        self,
        repository: PrivacySettingsRepository,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._enabled = settings.pii_redaction
        self._settings = settings
        self._hasher: Hasher | None = None
        self._key_bytes: bytes | None = None
        self._presidio = _presidio_analyzer() if settings.pii_presidio else None
        self._clock = clock
        self._cache: dict[int, tuple[float, PiiPolicy | None]] = {}
        self._next_warning: dict[int, float] = {}  # projects whose policy cannot be read now
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when ``pii_redaction`` is off server-wide."""
        return self._enabled

    def actions(self, project_id: int) -> dict[str, Action]:
        """The project's effective actions (the defaults overlaid by what it stored)."""
        return self._settings_of(project_id)[0]

    def regions(self, project_id: int) -> tuple[str, ...]:
        """The project's phone regions (default ``("US",)``)."""
        return self._settings_of(project_id)[1]

    def _settings_of(self, project_id: int) -> tuple[dict[str, Action], tuple[str, ...]]:
        """The project's actions and regions, from one read of its stored settings."""
        stored = dict(self._repository.get(project_id).pii)
        regions = stored.pop(_REGIONS_KEY, None)
        actions = {**default_actions(), **parse_actions(stored)}
        return actions, DEFAULT_REGIONS if regions is None else parse_regions(regions)

    def policy(self, project_id: int) -> PiiPolicy | None:
        """The project's policy, or ``None`` when nothing is to be redacted."""
        if not self._enabled:
            return None
        now = self._clock()
        with self._lock:
            hit = self._cache.get(project_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            actions, regions = self._settings_of(project_id)
        except Exception as exc:  # the store is away: the policy in force a moment ago still is
            if hit is None:
                raise PolicyUnavailable(f"project {project_id}'s PII policy cannot be read: {exc}") from exc
            with self._lock:
                self._cache[project_id] = (now + STALE_RETRY_SECONDS, hit[1])
                warn = self._next_warning.get(project_id, now) <= now
                if warn:
                    self._next_warning[project_id] = now + STALE_WARN_SECONDS
            if warn:
                _log.warning(
                    "project %d's PII policy cannot be read (%s); its last one stays in force",
                    project_id,
                    exc,
                )
            return hit[1]
        policy: PiiPolicy | None = PiiPolicy(actions, self._hash(), self._presidio, regions)
        if policy is not None and not policy.active:
            policy = None
        with self._lock:
            self._cache[project_id] = (now + CACHE_SECONDS, policy)
            recovered = self._next_warning.pop(project_id, None) is not None
        if recovered:
            _log.info("project %d's PII policy can be read again", project_id)
        return policy

    def update(
        self, project_id: int, raw: Mapping[str, Any], actor: str, regions: Any | None = None
    ) -> dict[str, Action]:
        """Store the project's actions and, when given, its phone regions (both validated;
        regions not given stay as stored) and drop its cached policy."""
        actions = parse_actions(raw)
        kept = (
            parse_regions(regions)
            if regions is not None
            else self._repository.get(project_id).pii.get(_REGIONS_KEY)
        )
        stored: dict[str, Any] = dict(actions) if kept is None else {**actions, _REGIONS_KEY: list(kept)}
        self._repository.put(project_id, actor=actor, pii=stored)
        with self._lock:
            self._cache.pop(project_id, None)
        return {**default_actions(), **actions}

    def text(self, project_id: int, value: str | None) -> str | None:
        """``value`` redacted under the project's policy."""
        policy = self.policy(project_id)
        return value if policy is None or value is None else policy.text(value)

    def value(self, project_id: int, value: Any) -> Any:
        """Every string inside ``value`` redacted under the project's policy."""
        policy = self.policy(project_id)
        return value if policy is None else policy.value(value)

    def redact_items(self, project_id: int, items: Sequence[_Item]) -> list[_Item]:
        """Dataset items (dataclasses with ``input``, ``expected`` and ``metadata``) with every
        string inside those fields redacted: what the API and ``watchkeep datasets import``
        store alike."""
        policy = self.policy(project_id)
        if policy is None:
            return list(items)
        return [
            dataclasses.replace(  # type: ignore[type-var]
                i,
                input=policy.value(i.input),
                expected=policy.value(i.expected),
                metadata=policy.value(i.metadata),
            )
            for i in items
        ]

    def portable(self, project_id: int) -> PortablePolicy | None:
        """The project's policy as picklable data; ``None`` when nothing is to be redacted
        or when Presidio is on (its analyser stays in the server process)."""
        policy = self.policy(project_id)
        if policy is None or self._presidio is not None:
            return None
        return PortablePolicy(tuple(sorted(policy.actions.items())), self._key(), policy.regions)

    def redact_payloads(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Span payload rows ``(project, trace, span, input, output, ...)``, each redacted
        under its own project's policy (a batch may mix projects)."""
        return self._by_project(rows, _payload_rows)

    def redact_spans(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Span rows (``SPAN_COLUMNS`` order, project id first): status message, leftover
        attributes and kept events redacted under each row's project's policy."""
        return self._by_project(rows, _span_rows)

    def _by_project(
        self,
        rows: list[tuple[Any, ...]],
        redact: Callable[[list[tuple[Any, ...]], PiiPolicy], list[tuple[Any, ...]]],
    ) -> list[tuple[Any, ...]]:
        """``rows`` redacted a run of one project's rows at a time (one trigger pass a run)."""
        if not self._enabled:
            return rows
        out: list[tuple[Any, ...]] = []
        start = 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or rows[end][0] != rows[start][0]:
                policy = self.policy(rows[start][0])
                group = rows[start:end]
                out.extend(group if policy is None else redact(group, policy))
                start = end
        return out

    def _key(self) -> bytes:
        if self._key_bytes is None:
            self._key_bytes = hash_key(self._settings)
        return self._key_bytes

    def _hash(self) -> Hasher:
        if self._hasher is None:
            self._hasher = default_hasher(self._key())
        return self._hasher
