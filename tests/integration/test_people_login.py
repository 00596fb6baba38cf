"""Console login: one refusal for every failure, lockout, and sessions stored hashed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.support.people import PASSWORD, People, people_on
from watchkeep.security.people import REFUSAL, LoginRefused
from watchkeep.store.tables import user_sessions, users


@pytest.fixture
def people(database_url: str) -> Iterator[People]:
    with people_on(database_url, lockout_after=3, lockout_minutes=10) as made:
        yield made


def refusal(people: People, email: str, password: str) -> str:
    with pytest.raises(LoginRefused) as refused:
        people.service.login(email, password, user_agent="test", address="127.0.0.1")
    return refused.value.message


def test_every_failure_gets_the_same_refusal(people: People) -> None:
    user = people.user("same")
    disabled = people.user("off")
    people.service.disable_user(disabled.id)
    messages = {
        refusal(people, "nobody-here@example.com", PASSWORD),  # unknown address
        refusal(people, user.email, "wrong password, long"),  # wrong password
        refusal(people, disabled.email, PASSWORD),  # disabled, right password
        refusal(people, "x" * 400 + "@example.com", PASSWORD),  # absurd address
    }
    people.repo.set_locked_until(user.id, people.clock.now + 10**12)
    messages.add(refusal(people, user.email, PASSWORD))  # locked, right password
    assert messages == {REFUSAL}
    assert "exist" not in REFUSAL
    assert "locked" not in REFUSAL


def test_lockout_after_repeated_failures_then_unlock_after_the_time(people: People) -> None:
    user = people.user("lock")
    for _ in range(3):
        refusal(people, user.email, "not the password at all")
    # Locked: even the right password is refused, and the failure does not extend the lock.
    refusal(people, user.email, PASSWORD)
    people.clock.advance(9 * 60)
    refusal(people, user.email, PASSWORD)
    people.clock.advance(61)
    token, session = people.service.login(user.email, PASSWORD, user_agent=None, address=None)
    assert session.user == user
    assert token
    found = people.repo.credentials(user.email)
    assert found is not None
    assert (found.failed_logins, found.locked_until_unix_nano) == (0, None)


def test_a_success_resets_the_failure_count(people: People) -> None:
    user = people.user("reset")
    for _ in range(2):
        refusal(people, user.email, "not the password at all")
    people.service.login(user.email.upper(), PASSWORD, user_agent=None, address=None)  # any case
    for _ in range(2):
        refusal(people, user.email, "not the password at all")
    people.service.login(user.email, PASSWORD, user_agent=None, address=None)  # still not locked


def test_sessions_are_stored_hashed_expire_and_slide(people: People) -> None:
    user = people.user("sess")
    token, session = people.service.login(user.email, PASSWORD, user_agent="ua", address="10.0.0.1")
    with people.engine.connect() as conn:
        rows = conn.execute(select(user_sessions).where(user_sessions.c.user_id == user.id)).all()
    assert len(rows) == 1
    assert token not in {str(v) for v in rows[0]}  # only the digest is kept
    assert rows[0].token_hash != token
    assert len(rows[0].token_hash) == 64
    assert session.csrf_token
    assert session.csrf_token != token

    seen = people.service.session_user(token)
    assert seen is not None
    assert seen.user == user
    assert seen.csrf_token == session.csrf_token
    assert people.service.session_user(token + "x") is None

    # Used after an hour of a two-hour window: the end moves to two hours past now.
    people.clock.advance(3600)
    slid = people.service.session_user(token)
    assert slid is not None
    assert slid.expires_at_unix_nano == people.clock.now + 2 * 3600 * 10**9
    # Within the minute the row is not written again.
    people.clock.advance(30)
    assert people.service.session_user(token).expires_at_unix_nano == slid.expires_at_unix_nano  # type: ignore[union-attr]
    # Idle past its end: gone, and purged by the next login.
    people.clock.advance(2 * 3600)
    assert people.service.session_user(token) is None
    people.service.login(user.email, PASSWORD, user_agent=None, address=None)
    with people.engine.connect() as conn:
        hashes = conn.execute(
            select(user_sessions.c.token_hash).where(user_sessions.c.user_id == user.id)
        ).all()
    assert len(hashes) == 1
    assert hashes[0].token_hash != rows[0].token_hash


def test_logout_and_logout_everywhere(people: People) -> None:
    user = people.user("out")
    other = people.user("other")
    tokens = [people.service.login(user.email, PASSWORD, user_agent=None, address=None)[0] for _ in range(3)]
    kept, _ = people.service.login(other.email, PASSWORD, user_agent=None, address=None)
    people.service.logout(tokens[0])
    assert people.service.session_user(tokens[0]) is None
    assert people.service.session_user(tokens[1]) is not None
    assert people.service.logout_everywhere(user.id) == 2
    assert all(people.service.session_user(t) is None for t in tokens)
    assert people.service.session_user(kept) is not None  # another user's session lives on


def test_disabling_ends_sessions_and_set_password_ends_them_too(people: People) -> None:
    user = people.user("dis")
    token, _ = people.service.login(user.email, PASSWORD, user_agent=None, address=None)
    people.service.set_password(user.id, "a brand new passphrase")
    assert people.service.session_user(token) is None
    refusal(people, user.email, PASSWORD)
    token, _ = people.service.login(user.email, "a brand new passphrase", user_agent=None, address=None)
    people.service.disable_user(user.id)
    assert people.service.session_user(token) is None


def test_an_old_hash_is_upgraded_on_login(people: People) -> None:
    from argon2 import PasswordHasher, Type

    user = people.user("rehash")
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID).hash(PASSWORD)
    people.repo.set_password_hash(user.id, old)
    people.service.login(user.email, PASSWORD, user_agent=None, address=None)
    with people.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.id == user.id)).scalar_one()
    assert stored != old
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
