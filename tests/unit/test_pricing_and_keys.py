"""Model prices and API keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeep.ingest.pricing import Price, PriceTable
from watchkeep.security.authz import Permission, permissions_of
from watchkeep.security.keys import KeyVerifier, StoredKey, hash_key, key_prefix, new_key


def test_prices_match_exactly_then_by_longest_prefix() -> None:
    table = PriceTable({"gpt-4o": Price(2.5, 10), "gpt-4o-mini": Price(0.15, 0.6)})
    assert table.lookup("gpt-4o") == Price(2.5, 10)
    assert table.lookup("GPT-4o-mini-2024-07-18") == Price(0.15, 0.6)
    assert table.lookup("openai/gpt-4o-2024-08-06") == Price(2.5, 10)
    assert table.lookup("llama") is None
    assert table.cost("gpt-4o", 1_000_000, None) == 2.5
    assert table.cost("gpt-4o", None, None) is None
    assert table.cost(None, 5, 5) is None


def test_user_price_file_overrides_and_extends(tmp_path: Path) -> None:
    override = tmp_path / "prices.yaml"
    override.write_text("gpt-4o: {input: 1, output: 1}\nmy-finetune: {input: 3, output: 4}\n")
    table = PriceTable.load(override)
    assert table.lookup("gpt-4o") == Price(1, 1)
    assert table.lookup("my-finetune-v2") == Price(3, 4)
    assert table.lookup("claude-3-5-haiku") is not None  # shipped entries stay
    override.write_text("broken: 3\n")
    with pytest.raises(ValueError, match="needs 'input' and 'output'"):
        PriceTable.load(override)


def test_keys_verify_cache_and_revocation() -> None:
    key, prefix, digest = new_key()
    assert key.startswith("wk_")
    assert prefix == key_prefix(key)
    assert digest == hash_key(key)
    assert key not in digest
    stored = {prefix: StoredKey(1, 7, "p", digest, "viewer", False)}
    lookups: list[str] = []

    def lookup(p: str) -> StoredKey | None:
        lookups.append(p)
        return stored.get(p)

    verifier = KeyVerifier(lookup, ttl=60)
    principal = verifier.verify(key)
    assert principal is not None
    assert principal.project_id == 7
    assert principal.can(Permission.TRACES_READ)
    assert not principal.can(Permission.TRACES_WRITE)
    assert verifier.verify(key) == principal
    assert len(lookups) == 1  # cached
    assert verifier.verify(key[:-1] + ("a" if key[-1] != "a" else "b")) is None
    assert verifier.verify("wk_short") is None
    assert verifier.verify("Bearer nonsense") is None
    stored[prefix] = StoredKey(1, 7, "p", digest, "viewer", True)
    assert verifier.verify(key) is not None  # still cached
    verifier.forget()
    assert verifier.verify(key) is None


def test_unknown_roles_have_no_permissions() -> None:
    assert permissions_of("root") == frozenset()
    assert Permission.PROJECT_ADMIN in permissions_of("admin")
