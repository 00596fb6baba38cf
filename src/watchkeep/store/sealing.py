"""The store's side of encryption at rest: what it calls, never how it is done.

The store may not import ``security`` (layers), so writers and readers take a ``Sealer``
from the wiring (``security.crypto.Keyring`` is one); None keeps values in plaintext.
The associated data names the row a value belongs to, so a sealed value copied into
another project's row, or into another column, no longer opens.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeGuard

SEALED_PREFIX = "wkenc:"
# Alert channel settings that are credentials, sealed inside the channel's JSON config.
SECRET_CHANNEL_FIELDS = ("secret", "password")


class Sealer(Protocol):
    """Seals text for storage and opens it again (legacy plaintext opens as it is)."""

    def seal(self, text: str, aad: bytes) -> str: ...

    def open(self, text: str, aad: bytes) -> str: ...


def row_aad(table: str, column: str, project_id: int) -> bytes:
    """The associated data of one stored value: table, column and project."""
    return f"watchkeep:{table}.{column}:{int(project_id)}".encode()


def is_sealed(value: object) -> TypeGuard[str]:
    """Whether a stored value is a sealed (encrypted) string."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_text(sealer: Sealer | None, text: str | None, aad: bytes) -> str | None:
    """``text`` sealed (None and no sealer leave it as it is)."""
    if sealer is None or text is None:
        return text
    return sealer.seal(text, aad)


def seal_payload_rows(sealer: Sealer, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``span_payloads`` rows (``PAYLOAD_COLUMNS`` order) with input and output sealed, each
    bound to its project and column. Decode workers call it (off the serial writer); the
    writer calls it for batches that arrive unsealed (``WriteBatch.sealed``)."""
    return [
        (
            r[0],
            r[1],
            r[2],
            None if r[3] is None else sealer.seal(r[3], row_aad("span_payloads", "input", r[0])),
            None if r[4] is None else sealer.seal(r[4], row_aad("span_payloads", "output", r[0])),
            *r[5:],
        )
        for r in rows
    ]


def open_text(sealer: Sealer | None, text: str | None, aad: bytes) -> str | None:
    """The plaintext of a stored text value; a sealed value without a sealer is an error."""
    if text is None or not is_sealed(text):
        return text
    if sealer is None:
        raise ValueError("a stored value is encrypted but no encryption key is configured")
    return sealer.open(text, aad)


def seal_json(sealer: Sealer | None, value: Any, aad: bytes) -> Any:
    """A JSON value sealed as one string (its JSON text encrypted); None stays None."""
    if sealer is None or value is None:
        return value
    return sealer.seal(json.dumps(value, separators=(",", ":"), ensure_ascii=False), aad)


def open_json(sealer: Sealer | None, value: Any, aad: bytes) -> Any:
    """The JSON value a stored one holds (unsealed values as they are)."""
    if not is_sealed(value):
        return value
    return json.loads(open_text(sealer, value, aad) or "null")
