"""Console passwords: argon2id hashes, verification, rehashing and the policy."""

from __future__ import annotations

from argon2 import PasswordHasher, Type

from watchkeep.security import passwords


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first = passwords.hash_password("a long enough secret")
    second = passwords.hash_password("a long enough secret")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second  # a fresh salt each time
    assert passwords.verify_password(first, "a long enough secret")
    assert not passwords.verify_password(first, "a long enough secreT")
    assert not passwords.needs_rehash(first)


def test_malformed_hashes_and_oversized_passwords_do_not_verify() -> None:
    assert not passwords.verify_password("not a hash", "whatever it is")
    assert not passwords.verify_password("$argon2id$v=19$m=19456,t=2,p=1$broken", "whatever it is")
    big = "x" * (passwords.MAX_LENGTH + 1)
    assert not passwords.verify_password(passwords.hash_password("x" * 20), big)
    assert passwords.needs_rehash("not a hash")
    passwords.dummy_verify("anything")  # runs a verification against a throwaway hash


def test_weaker_parameters_need_a_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID).hash("old parameters!!")
    assert passwords.verify_password(old, "old parameters!!")
    assert passwords.needs_rehash(old)


def test_policy_messages() -> None:
    assert passwords.password_problems("short", "ann@example.com") == [
        "the password must be at least 12 characters long"
    ]
    assert passwords.password_problems("y" * 1025, "ann@example.com") == [
        "the password must be at most 1024 characters long"
    ]
    assert passwords.password_problems("my name is Alice-99!", "alice@example.com") == [
        "the password must not contain the e-mail address's name"
    ]
    assert passwords.password_problems("verylongname", "VeryLongName@example.com") != []
    assert passwords.password_problems("a long enough secret", "ann@example.com") == []
    # A very short name only may not be the password; it may appear inside one.
    assert passwords.password_problems("a long enough secret", "a@example.com") == []
    generated = passwords.generate_password()
    assert len(generated) >= 20
    assert passwords.password_problems(generated, "ann@example.com") == []
