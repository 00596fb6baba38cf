"""PII detection and redaction: validators, actions, JSON safety, the corpus and the policy cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import orjson
import pytest

from watchkeep.config import Settings
from watchkeep.devtools.pii_corpus import build, evaluate
from watchkeep.sdk.redact import (
    MAX_SCAN_CHARS,
    PiiRedactor,
    default_hasher,
    find_pii,
    redact_text,
)
from watchkeep.security.pii import PiiPolicy, PiiService, PolicyUnavailable, hash_key, parse_actions
from watchkeep.store.privacy_repository import StoredPrivacy

CORPUS = Path(__file__).parents[2] / "data" / "pii_corpus.jsonl"


def entities(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 ok", [("card", "4111 1111 1111 1111")]),
        ("card 4111 1111 1111 1112 fails Luhn", []),
        ("iban DE89 3704 0044 0532 0130 00 then", [("iban", "DE89 3704 0044 0532 0130 00")]),
        ("iban DE89 3704 0044 0532 0130 01 bad", []),
        ("ssn 123-45-6789", [("ssn", "123-45-6789")]),
        ("ssn 666-45-6789 and 900-12-3456 and 123-00-4567", []),
        ("from 192.168.1.20 today", [("ip", "192.168.1.20")]),
        ("version 10.0.19041.1 and 1.2.3.4.5 and 300.1.1.1", []),
        ("v6 2001:db8::8a2e:370:7334 x", [("ip", "2001:db8::8a2e:370:7334")]),
        ("std::vector a[::2] 12:30:45 00:1a:2b:3c:4d:5e", []),
        (
            "eth 0x52908400098527886E0F7030069857D2E4169EE7",
            [("crypto", "0x52908400098527886E0F7030069857D2E4169EE7")],
        ),
        ("btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", [("crypto", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")]),
        ("btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 bad checksum", []),
        ("tx 0x" + "ab" * 32, []),
        ("AKIAIOSFODNN7EXAMPLE", [("secret", "AKIAIOSFODNN7EXAMPLE")]),
        ("call +49 30 901820 now", [("phone", "+49 30 901820")]),
        ("order 20240315 shipped 2024-03-15", []),
    ],
)
def test_detectors_validate_what_the_patterns_find(text: str, expected: list[tuple[str, str]]) -> None:
    assert entities(text) == expected


def test_a_jwt_needs_a_json_header_and_a_bearer_token_is_masked_alone() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"
    assert redact_text(f"Authorization: Bearer {jwt}") == "Authorization: Bearer [SECRET]"
    assert entities("eyJub3Rqc29u.abcdefgh.abcdefgh") == []


def test_json_stays_valid_json_with_escapes_around_the_value() -> None:
    text = json.dumps({"messages": [{"content": 'say "hi"\nto bob@example.com\\'}], "n": 3})
    out = redact_text(text)
    assert json.loads(out) == {"messages": [{"content": 'say "hi"\nto [EMAIL]\\'}], "n": 3}


def test_text_without_findings_is_returned_unchanged() -> None:
    text = '{ "a" :  "no pii here" }'
    assert redact_text(text) is text


def test_actions_mask_hash_drop_keep() -> None:
    hasher = default_hasher(b"k")
    text = "a bob@example.com b bob@example.com c eve@example.com"
    hashed = redact_text(text, {"email": "hash"}, hasher)
    tags = [t for t in hashed.split() if t.startswith("[EMAIL:")]
    assert tags[0] == tags[1] != tags[2]  # equal values group, others differ
    assert redact_text(text, {"email": "keep"}) == text
    assert redact_text(text, {"email": "drop"}) == "[REDACTED]"
    assert redact_text(json.dumps({"x": text}), {"email": "drop"}) == "[REDACTED]"
    assert default_hasher(b"other")("email", "bob@example.com") != hasher("email", "bob@example.com")


def test_an_oversized_string_fails_closed() -> None:
    assert redact_text("x" * (MAX_SCAN_CHARS + 1)) == "[REDACTED]"


def test_sdk_redactor_skips_identifiers_and_rejects_unknown_entities() -> None:
    redactor = PiiRedactor()
    assert redactor("gen_ai.prompt", "mail bob@example.com") == "mail [EMAIL]"
    assert redactor("user.id", "bob@example.com") == "bob@example.com"
    with pytest.raises(ValueError, match="unknown PII entities"):
        PiiRedactor({"names": "mask"})


def test_corpus_is_the_generator_output_and_large_enough() -> None:
    lines = [orjson.loads(line) for line in CORPUS.read_bytes().splitlines()]
    assert lines == build()
    assert len(lines) >= 300
    assert {e["lang"] for e in lines} >= {"en", "de", "fr", "es", "ja"}
    assert {e["format"] for e in lines} >= {"free", "json", "log", "code", "negative"}


def test_corpus_precision_and_recall_per_entity() -> None:
    tallies = evaluate(build(), find_pii)
    for entity, tally in tallies.items():
        assert tally.labels >= 30, entity
        assert tally.recall >= 0.98, (entity, tally)
        assert tally.precision >= 0.95, (entity, tally)


def test_parse_actions_names_what_is_wrong() -> None:
    assert parse_actions({"email": "hash", "person": "mask"}) == {"email": "hash", "person": "mask"}
    with pytest.raises(ValueError, match="unknown PII entity 'names'"):
        parse_actions({"names": "mask"})
    with pytest.raises(ValueError, match="unknown action 'blur'"):
        parse_actions({"email": "blur"})


class FakeRepo:
    def __init__(self) -> None:
        self.stored: dict[int, dict[str, str]] = {}
        self.reads = 0
        self.down = False

    def get(self, project_id: int) -> StoredPrivacy:
        self.reads += 1
        if self.down:
            raise ConnectionError("the store is away")
        return StoredPrivacy(project_id, dict(self.stored.get(project_id, {})))

    def put(self, project_id: int, *, actor: str, pii: dict[str, str]) -> None:
        self.stored[project_id] = pii


def service(tmp_path: Path, clock: list[float], **kw: object) -> tuple[PiiService, FakeRepo]:
    repo = FakeRepo()
    settings = Settings(home=tmp_path, **kw)  # type: ignore[arg-type]
    return PiiService(repo, settings, clock=lambda: clock[0]), repo  # type: ignore[arg-type]


def test_policy_is_cached_per_project_and_update_invalidates(tmp_path: Path) -> None:
    clock = [0.0]
    pii, repo = service(tmp_path, clock)
    assert pii.text(1, "bob@example.com") == "[EMAIL]"
    assert pii.text(1, "eve@example.com") == "[EMAIL]"
    assert repo.reads == 1
    repo.stored[1] = {"email": "keep"}  # written by another process: seen after the TTL
    assert pii.text(1, "bob@example.com") == "[EMAIL]"
    clock[0] = 6.0
    assert pii.text(1, "bob@example.com") == "bob@example.com"
    assert pii.text(2, "bob@example.com") == "[EMAIL]"  # another project keeps its own
    pii.update(2, {"email": "drop"}, "alice")
    assert pii.text(2, "x bob@example.com") == "[REDACTED]"


def test_while_the_store_is_away_the_last_policy_stays_in_force_and_none_is_never_guessed(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    pii, repo = service(tmp_path, clock)
    repo.stored[1] = {"email": "drop"}
    assert pii.text(1, "x bob@example.com") == "[REDACTED]"
    repo.down = True
    clock[0] = 60.0  # long past the cache: the read fails, the known policy is used again
    assert pii.text(1, "x bob@example.com") == "[REDACTED]"
    reads = repo.reads
    assert pii.text(1, "x bob@example.com") == "[REDACTED]"
    assert repo.reads == reads  # ... and retried after a second, not on every call
    with pytest.raises(PolicyUnavailable):  # a project never read: no default stands in for it
        pii.text(2, "bob@example.com")
    repo.down = False
    clock[0] = 62.0
    repo.stored[1] = {"email": "keep"}
    assert pii.text(1, "bob@example.com") == "bob@example.com"


def test_an_outage_is_logged_when_it_starts_once_a_minute_and_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    pii, repo = service(tmp_path, clock)
    assert pii.text(1, "x bob@example.com") == "x [EMAIL]"
    repo.down = True
    caplog.set_level(logging.INFO, logger="watchkeep.security.pii")
    for second in range(10, 130):  # two minutes of retries, one a second
        clock[0] = float(second)
        assert pii.text(1, "x bob@example.com") == "x [EMAIL]"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # at the start and a minute later, not 120 times
    assert "project 1" in warnings[0].getMessage()
    repo.down = False
    clock[0] = 131.0
    assert pii.text(1, "x bob@example.com") == "x [EMAIL]"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "project 1's PII policy can be read again"
    ]
    repo.down = True  # a new outage warns again at once
    clock[0] = 140.0
    pii.text(1, "x bob@example.com")
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_payload_rows_use_each_rows_project(tmp_path: Path) -> None:
    pii, repo = service(tmp_path, [0.0])
    repo.stored[2] = {"email": "keep"}
    rows = [(1, "t", "s", '"bob@example.com"', None, 5), (2, "t", "s", "bob@example.com", "ok", 5)]
    assert pii.redact_payloads(rows) == [(1, "t", "s", '"[EMAIL]"', None, 5), rows[1]]


def test_switched_off_server_wide(tmp_path: Path) -> None:
    pii, repo = service(tmp_path, [0.0], pii_redaction=False)
    assert pii.text(1, "bob@example.com") == "bob@example.com"
    assert repo.reads == 0


def test_presidio_stays_off_when_not_installed(tmp_path: Path) -> None:
    pii, _ = service(tmp_path, [0.0], pii_presidio=True)
    policy = pii.policy(1)
    assert policy is not None
    assert (
        policy.text("Angela Merkel lives in Berlin, bob@example.com")
        == "Angela Merkel lives in Berlin, [EMAIL]"
    )


def test_hash_key_file_is_created_once_owner_only(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = hash_key(settings)
    assert hash_key(settings) == first
    assert (tmp_path / "pii_hash.key").stat().st_mode & 0o777 == 0o600
    keyed = Settings(home=tmp_path, pii_hash_key="secret")  # type: ignore[arg-type]
    assert hash_key(keyed) == b"secret"


def test_policy_redacts_nested_values() -> None:
    policy = PiiPolicy({"email": "mask"}, default_hasher(b"k"))
    value = {"a": ["bob@example.com", 3, {"b": "x 4111111111111111"}]}
    assert policy.value(value) == {"a": ["[EMAIL]", 3, {"b": "x [CARD]"}]}
