"""The audit chain's per-entry judgement, without a database: each kind of tampering is
told apart by the entry's own hash, its link to the previous entry and its seq."""

from __future__ import annotations

from dataclasses import replace

from watchkeep.security.audit import GENESIS, AuditEntry, _check, _content, _plain, entry_hash


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        draft = AuditEntry(
            seq, seq * 10, 1, "cli", "key.create", f"key:{seq}", None, {"n": seq}, None, prev, ""
        )
        entry = replace(draft, hash=entry_hash(prev, _content(draft)))
        entries.append(entry)
        prev = entry.hash
    return entries


def forge(entry: AuditEntry, **changes: object) -> AuditEntry:
    draft = replace(entry, **changes)  # type: ignore[arg-type]
    return replace(draft, hash=entry_hash(draft.prev_hash, _content(draft)))


def test_an_intact_chain_has_no_problem() -> None:
    a, b, c = chain(3)
    assert [_check(None, a), _check(a, b), _check(b, c)] == [None, None, None]


def test_the_hash_covers_every_field_and_the_previous_hash() -> None:
    (a,) = chain(1)
    for field, value in [
        ("seq", 2),
        ("at_ns", 11),
        ("project_id", None),
        ("actor", "x"),
        ("after", {"n": 2}),
    ]:
        assert entry_hash(a.prev_hash, _content(replace(a, **{field: value}))) != a.hash  # type: ignore[arg-type]
    assert entry_hash("1" * 64, _content(a)) != a.hash


def test_each_kind_of_tampering_is_named() -> None:
    a, b, c = chain(3)
    assert _check(a, replace(b, actor="mallory")) == "entry 2 was edited: its hash does not match its content"
    assert _check(a, c) == "an entry between 1 and 3 was removed"
    assert _check(None, b) == "the entries before 2 were removed"
    assert _check(b, forge(c, prev_hash=a.hash)) == (
        "entry 3 was inserted: it does not chain on entry 2 (or entry 2 was rewritten together with its hash)"
    )
    assert _check(c, forge(c, seq=7, prev_hash=c.hash)) == (
        "entry 7 was inserted: it chains on entry 3 but its seq does not follow it"
    )


def test_values_are_hashed_as_they_read_back_from_json() -> None:
    assert _plain({1: "a", "b": [1, 2.5, None]}) == {"1": "a", "b": [1, 2.5, None]}
    assert _plain(None) is None
