"""The batch trigger pass of ingest redaction: one RE2 search over a whole export's texts
(JSON with its common escapes searched in its source) proves clean texts clean, and a
text it calls clean is one that redaction leaves alone."""

from __future__ import annotations

import json
from pathlib import Path

from watchkeep.config import Settings
from watchkeep.devtools.pii_corpus import build
from watchkeep.sdk import pii_triggers
from watchkeep.sdk.redact import pii_hits, redact_text
from watchkeep.security.pii import PiiService, PortablePolicy, default_actions
from watchkeep.store.privacy_repository import StoredPrivacy
from watchkeep.store.rows import SPAN_COLUMNS


def _corpus() -> list[str]:
    return [str(example["text"]) for example in build()]


def _strings(value: object) -> list[str]:
    """Every string value inside parsed JSON, nested JSON text included as text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _as_payloads(text: str) -> list[str]:
    """``text`` as ingest stores it: in chat messages (escaped quotes), as lines of a
    message (``\\n``, ``\\t``), nested as JSON text inside JSON (``\\\\``, ``\\\\n``)."""
    lines = f"first line\n{text}\tend"
    messages = json.dumps([{"role": "user", "content": lines}])
    return [
        json.dumps([{"role": "user", "content": text}]),
        json.dumps({"content": lines}),
        json.dumps({"messages": messages, "note": 'say "hi"'}),
        json.dumps({"messages": json.dumps({"inner": messages})}),
    ]


def test_json_with_common_escapes_is_proven_clean_only_when_redaction_leaves_it() -> None:
    texts = [p for t in _corpus() for p in _as_payloads(t)]
    for payload, hit in zip(texts, pii_hits(texts), strict=True):
        if not hit:  # no value triggers alone, so the parsed path would change nothing
            assert not any(pii_triggers.triggered(v, "US") for v in _strings(json.loads(payload))), payload
            assert redact_text(payload, screened=True) is payload
    labelled = [t for t, e in zip(_corpus(), build(), strict=True) if e["spans"]]
    for text in labelled:  # every escaped form of a text with PII is searched further
        assert all(pii_hits(_as_payloads(text))), text


def test_escapes_cannot_hide_or_forge_a_number() -> None:
    glued = json.dumps({"a": "call\n2025550143 now"})  # \n then digits: a bounded number
    assert "\\n2025550143" in glued
    assert pii_hits([glued]) == [True]
    assert "[PHONE]" in redact_text(glued)
    clean = json.dumps({"a": 'he said "order 20240315" on 2024-03-15 12:30\n\tthanks'})
    assert pii_hits([clean]) == [False]
    assert pii_hits([json.dumps({"a": "x\r\ny"})]) == [True]  # a rare escape: parsed


def test_one_pass_over_a_batch_names_the_texts_each_alone_would() -> None:
    texts = [p for t in _corpus()[:80] for p in (t, *_as_payloads(t))]
    texts[3:3] = ["naïve café ☕ " * 30, '{"a": "ünïcödé \\"quoted\\" 2024-03-15 12:30"}']
    assert pii_hits(texts) == [pii_hits([t])[0] for t in texts]


class _Defaults:
    def get(self, project_id: int) -> StoredPrivacy:
        return StoredPrivacy(project_id)


def test_a_batch_of_rows_is_redacted_as_row_by_row_and_clean_rows_stay(tmp_path: Path) -> None:
    service = PiiService(_Defaults(), Settings(home=tmp_path, pii_hash_key="k"))  # type: ignore[arg-type]
    portable = PortablePolicy(tuple(sorted(default_actions().items())), b"k")
    texts = _corpus()[:60]
    payloads = [
        (1, f"{i:032x}", f"{i:016x}", _as_payloads(t)[i % 4], json.dumps(t) if i % 3 else None, i)
        for i, t in enumerate(texts)
    ]
    out = portable.redact_payloads(payloads)
    assert out == service.redact_payloads(payloads)
    assert out == [service.redact_payloads([r])[0] for r in payloads]
    for before, after in zip(payloads, out, strict=True):
        if not any(pii_hits([c for c in before[3:5] if c])):
            assert after is before
    assert any(a != b for a, b in zip(out, payloads, strict=True))

    width = len(SPAN_COLUMNS)
    at = {c: SPAN_COLUMNS.index(c) for c in ("status_message", "attributes", "events")}
    spans = []
    for i, t in enumerate(texts):
        row: list[object] = [1, *([None] * (width - 1))]
        row[at["status_message"]] = t if i % 2 else None
        row[at["attributes"]] = json.dumps({"note": t, "temperature": 0.2})
        row[at["events"]] = 7 if i % 5 == 0 else None  # not text: passed as it is
        spans.append(tuple(row))
    redacted = portable.redact_spans(spans)
    assert redacted == service.redact_spans(spans)
    assert redacted == [service.redact_spans([r])[0] for r in spans]
    assert any(a is b for a, b in zip(redacted, spans, strict=True))
    assert any(a != b for a, b in zip(redacted, spans, strict=True))
