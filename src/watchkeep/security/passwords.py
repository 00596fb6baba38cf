"""Console passwords: argon2id hashes and the password policy.

People choose low-entropy secrets, so unlike API keys (random, SHA-256) their passwords
get a slow, memory-hard hash: argon2id with OWASP's second recommended parameter set
(19 MiB of memory, 2 passes, 1 lane; RFC 9106 allows it for memory-constrained servers),
16-byte salt, 32-byte tag. A hash made with older parameters is upgraded on the next
successful login (``needs_rehash``). ``dummy_verify`` spends the same time on an unknown
e-mail address, so the login's timing does not tell which accounts exist.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
MIN_LENGTH = 12
MAX_LENGTH = 1024  # bounds the hashing work a login form can ask for

_HASHER = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_KIB,
    parallelism=PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (``$argon2id$...``), salted afresh."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; False for a malformed hash too."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with other parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(24))


def dummy_verify(password: str) -> None:
    """Spend a verification's time on nothing (for an unknown or unusable account)."""
    verify_password(_dummy_hash(), password)


def generate_password() -> str:
    """A strong random password (about 144 bits), for accounts made without one."""
    return secrets.token_urlsafe(18)


def password_problems(password: str, email: str) -> list[str]:
    """Why ``password`` may not be used by the account ``email``; empty when it may."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"the password must be at most {MAX_LENGTH} characters long")
    local = email.strip().lower().partition("@")[0]
    lowered = password.lower()
    # A one- or two-letter name would forbid half of all passwords: those only may not equal it.
    if local and (lowered == local or (len(local) >= 3 and local in lowered)):
        problems.append("the password must not contain the e-mail address's name")
    return problems
