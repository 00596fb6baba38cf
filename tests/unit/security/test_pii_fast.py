"""The PII fast path: triggers that prove clean text clean, windows that lose nothing, and
redaction in the decode workers under each export's own project policy."""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import re
from pathlib import Path

import pytest

from watchkeep.config import Settings
from watchkeep.devtools.pii_corpus import build
from watchkeep.ingest.decode_pool import DecodePool, prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.sdk import pii_triggers, redact
from watchkeep.sdk.redact import SMALL_TEXT, find_pii, pii_hits, redact_text
from watchkeep.security.pii import PiiService, PortablePolicy
from watchkeep.store.privacy_repository import StoredPrivacy

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "MIIEowIBAAKCAQEA7bq98yJ3kLm0pQ\n" * 40
    + "-----END RSA PRIVATE KEY-----"
)


def full(text: str) -> list[redact.Finding]:
    """Every detector over the whole text: what the fast path must equal."""
    return redact._detect(text, "US")


def test_fast_path_finds_exactly_what_the_full_detectors_find_on_the_corpus() -> None:
    texts = [str(example["text"]) for example in build()]
    for text in texts:
        assert find_pii(text) == full(text), text
    # many examples in one text: windows are merged, joined and mapped back
    joined = " filler words between them ".join(texts[:40])
    assert len(joined) > SMALL_TEXT  # the linear-time engine's side too
    assert find_pii(joined) == full(joined)


@pytest.mark.parametrize(
    "text",
    [
        "Order 20240315-1234 arrived damaged (photo 2024-03-15 12:30), see the notes.",
        "I am sorry. A replacement for order 20240315 is on its way, version 2.14.1.",
        "You are a helpful support assistant for an online shop, in English and Deutsch.",
        "Bestellung 12345678 vom 15.03.2024 um 09:41, Artikel 4711.",
    ],
)
def test_clean_prose_with_numbers_triggers_no_window(text: str) -> None:
    assert redact._windows(text, "US") == []


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("x" * 200 + " mail " + "a" * 90 + "@example.com" + " tail " + "y" * 200, "email"),
        ("note " + "z" * 300 + " " + PRIVATE_KEY + " end", "secret"),
        ("call +49 30 901820 or " + "q" * 120, "phone"),
        ("IBAN GB82 WEST 1234 5698 7654 32 and card 4111 1111 1111 1111 " * 3, "iban"),
        ("server at 10.0.0.7 and fe80::1ff:fe23:4567:890a", "ip"),
    ],
)
def test_values_longer_than_the_margin_are_found_whole(text: str, entity: str) -> None:
    found = find_pii(text)
    assert found == full(text)
    assert entity in {f.entity for f in found}


def test_json_with_escapes_takes_the_parsed_path() -> None:
    escaped = json.dumps({"a": "line\n4111 1111 1111 1111", "b": "bob\u0040example.com"}, ensure_ascii=True)
    assert "@" in escaped  # \u0040 is not escaped by json; force the escape by hand
    sneaky = escaped.replace("@", "\\u0040")
    assert json.loads(redact_text(sneaky)) == {"a": "line\n[CARD]", "b": "[EMAIL]"}
    clean = json.dumps([{"role": "user", "content": "order 20240315 on 2024-03-15 12:30"}])
    assert redact_text(clean) is clean  # nothing triggered: returned untouched, not re-encoded


class Repo:
    def __init__(self, stored: dict[int, dict[str, str]]) -> None:
        self.stored = stored

    def get(self, project_id: int) -> StoredPrivacy:
        return StoredPrivacy(project_id, dict(self.stored.get(project_id, {})))


def pii_service(tmp_path: Path, stored: dict[int, dict[str, str]], **kw: object) -> PiiService:
    settings = Settings(home=tmp_path, pii_hash_key="k", **kw)  # type: ignore[arg-type]
    return PiiService(Repo(stored), settings)  # type: ignore[arg-type]


def test_portable_policy_pickles_and_redacts_like_the_service(tmp_path: Path) -> None:
    pii = pii_service(tmp_path, {2: {"email": "hash"}})
    rows = [(2, "t", "s", "bob@example.com and 4111 1111 1111 1111", '"ok"', 5)]
    portable = pii.portable(2)
    assert portable is not None
    copy = pickle.loads(pickle.dumps(portable))
    assert isinstance(copy, PortablePolicy)
    assert copy.redact_payloads(rows) == pii.redact_payloads(rows)
    assert copy.redact_payloads(rows)[0][3].startswith("[EMAIL:")
    assert pii_service(tmp_path, {}, pii_redaction=False).portable(1) is None
    assert pii_service(tmp_path, {1: dict.fromkeys(redact.ENTITIES, "keep")}).portable(1) is None


def otlp_body(spans: int, text: str) -> bytes:
    chat = json.dumps([{"role": "user", "content": text}])
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": []},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": f"{i + 1:032x}",
                                    "spanId": f"{i + 1:016x}",
                                    "name": "chat m",
                                    "startTimeUnixNano": "1700000000000000000",
                                    "endTimeUnixNano": "1700000001000000000",
                                    "attributes": [
                                        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                        {"key": "gen_ai.input.messages", "value": {"stringValue": chat}},
                                    ],
                                }
                                for i in range(spans)
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


def test_prepare_redacts_under_the_policy_it_is_given(tmp_path: Path) -> None:
    body = otlp_body(3, "mail bob@example.com")
    pii = pii_service(tmp_path, {1: {"email": "keep"}})
    kept = prepare(1, body, Encoding.JSON, 0, None, redaction=pii.portable(1))
    masked = prepare(2, body, Encoding.JSON, 0, None, redaction=pii.portable(2))
    assert kept.redacted
    assert masked.redacted
    assert all("bob@example.com" in str(r[3]) for r in kept.batch.payloads)
    assert masked.batch.payloads
    assert all("[EMAIL]" in str(r[3]) for r in masked.batch.payloads)
    assert not prepare(2, body, Encoding.JSON, 0, None).redacted


def test_the_decode_workers_redact_each_project_under_its_own_policy(tmp_path: Path) -> None:
    body = otlp_body(400, "mail bob@example.com please")  # over the inline limit: a worker
    pii = pii_service(tmp_path, {1: {"email": "keep"}})
    pool = DecodePool(1, None)
    assert pool.offloads(body)
    assert not pool.offloads(otlp_body(1, "x"))
    try:
        kept = asyncio.run(pool.prepare(1, body, Encoding.JSON, 0, redaction=pii.portable(1)))
        masked = asyncio.run(pool.prepare(2, body, Encoding.JSON, 0, redaction=pii.portable(2)))
        small = asyncio.run(
            pool.prepare(2, otlp_body(1, "bob@example.com"), Encoding.JSON, 0, redaction=pii.portable(2))
        )
    finally:
        pool.close()
    assert kept.redacted
    assert masked.redacted
    assert all("bob@example.com" in str(r[3]) for r in kept.batch.payloads)
    assert len(masked.batch.payloads) == 400
    assert all("[EMAIL]" in str(r[3]) and "bob@" not in str(r[3]) for r in masked.batch.payloads)
    assert not small.redacted  # decoded inline: the service redacts it in a thread


def test_gating_by_the_pattern_set_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [str(example["text"]) for example in build()]
    texts.append(" filler words between them ".join(texts[:40]))
    gated = [redact._detect(t, "US") for t in texts]
    monkeypatch.setattr(redact, "_matching", lambda text: _Every())  # every detector runs
    assert [redact._detect(t, "US") for t in texts] == gated


class _Every:
    def __contains__(self, item: object) -> bool:
        return True


def test_re2_called_directly_matches_like_the_stdlib_engine() -> None:
    texts = [str(example["text"]) for example in build() if str(example["text"]).isascii()]
    for pattern in redact._GATED:
        for text in texts:
            assert list(pattern.spans(text)) == [list(m.regs) for m in pattern._small.finditer(text)], (
                pattern.source,
                text,
            )


@pytest.mark.parametrize(
    ("text", "triggers"),
    [
        ("photo 2024-03-15 12:30 and 15.03.2024 09:41", False),  # a date and its hour: no phone
        ("call 202-555-0143 today", True),
        ("call (202) 555-0143 today", True),
        ("call 1 202 555 0143 today", True),
        ("at (2024-03-15 12 maybe", True),  # behind "(": could be a number
        ("ids 2024031512 and 20240315-12", True),  # ten digits without the date's separators
    ],
)
def test_a_date_and_its_hour_is_no_trigger_but_ten_digits_are(text: str, triggers: bool) -> None:
    assert pii_triggers.triggered(text, "US") is triggers


def test_pii_hits_is_false_only_for_texts_redaction_leaves_alone() -> None:
    texts = [str(example["text"]) for example in build()]
    for text, hit in zip(texts, pii_hits(texts), strict=True):
        assert hit == pii_triggers.triggered(text, "US")  # one joined pass, as each alone
        if not hit:
            assert redact_text(text) is text
            assert find_pii(text) == []
    labelled = [str(e["text"]) for e in build() if e["spans"]]
    assert all(pii_hits(["nothing here", t]) == [False, True] for t in labelled)
    assert pii_hits(["order 20240315 on 2024-03-15 12:30", '["a", {"b": "version 2.14.1"}]']) == [
        False,
        False,
    ]
    assert pii_hits(['{"a": "bob\\u0040example.com"}']) == [True]  # escapes: cannot be proven clean
    assert redact_text('"mail bob@example.com"', screened=True) == '"mail [EMAIL]"'


def test_json_values_are_redacted_in_place_only_where_they_hit() -> None:
    value = {
        "a": ["plain", {"b": "bob@example.com"}],
        "c": "nothing",
        "d": 3,
        "e": "card 4111 1111 1111 1111",
    }
    out = json.loads(redact_text(json.dumps(value)))
    assert out == {"a": ["plain", {"b": "[EMAIL]"}], "c": "nothing", "d": 3, "e": "card [CARD]"}


def test_clean_rows_are_returned_as_they_are(tmp_path: Path) -> None:
    pii = pii_service(tmp_path, {})
    clean = (1, "t", "s", json.dumps([{"role": "user", "content": "order 2024-03-15 12:30"}]), '"ok"', 5)
    dirty = (1, "t", "s", '"mail bob@example.com"', None, 5)
    out = pii.redact_payloads([clean, dirty])
    assert out[0] is clean
    assert out[1][3] == '"mail [EMAIL]"'


def test_the_date_exception_is_exactly_a_date_and_its_hour() -> None:
    """Ten separated digits match the NANP trigger unless they are exactly a date and hour."""
    but_date = re.compile(pii_triggers.ten_digits_but_a_date_time(), re.ASCII)
    any_ten = re.compile(r"\d(?:[ \-.()/]{0,3}\d){9}", re.ASCII)
    date_time = pii_triggers.DATE_TIME
    rng = random.Random(7)
    seps = ["", "", "", " ", "-", ".", "/", "(", ")", "  ", "- ", "-/", "..."]
    shaped = ["2024-03-15 12", "15.03.2024 09", "2024/03/15 23", "2024-03-15  12", "2024-0315 12"]
    samples = shaped + [
        "".join(rng.choice("0123456789") + (rng.choice(seps) if i < 9 else "") for i in range(10))
        for _ in range(5000)
    ]
    for s in samples:
        expected = bool(any_ten.fullmatch(s)) and not date_time.fullmatch(s)
        assert bool(but_date.fullmatch(s)) is expected, s


def test_without_re2s_own_matcher_the_wrapper_finds_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [str(example["text"]) for example in build()]
    texts.append(" filler words between them ".join(texts[:40]))
    direct = [find_pii(t) for t in texts]
    for pattern in (*redact._GATED, pii_triggers.TRIGGER_NANP, pii_triggers.TRIGGER_ANY):
        monkeypatch.setattr(pattern, "_raw", None)  # a google-re2 without its private names
    assert [find_pii(t) for t in texts] == direct
