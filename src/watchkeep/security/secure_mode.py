"""Production checks of WATCHKEEP_SECURE=1: the server refuses to start while any fails.

One list of problems, so each hardening feature adds its own check here and the operator
sees every missing piece at once rather than one per restart.
"""

from __future__ import annotations

from watchkeep.config import Settings
from watchkeep.security.crypto import EncryptionKeyError, keyring_from_settings
from watchkeep.security.oidc import settings_problems as oidc_settings_problems


class InsecureConfiguration(RuntimeError):
    """WATCHKEEP_SECURE=1 with settings that fail its checks."""


def secure_mode_problems(settings: Settings) -> list[str]:
    """What keeps ``settings`` from secure mode (empty: nothing). Checked whatever ``secure`` is."""
    problems: list[str] = []
    try:
        if keyring_from_settings(settings) is None:
            problems.append(
                "no encryption key: set WATCHKEEP_ENCRYPTION_KEY (base64 of 32 bytes) "
                "or WATCHKEEP_ENCRYPTION_KEY_FILE"
            )
    except EncryptionKeyError as exc:
        problems.append(str(exc))
    problems.extend(oidc_settings_problems(settings, secure=True))  # no plain-http issuer
    return problems


def check_secure_mode(settings: Settings) -> None:
    """Raise InsecureConfiguration naming every problem when secure mode is on and fails."""
    if not settings.secure:
        return
    problems = secure_mode_problems(settings)
    if problems:
        raise InsecureConfiguration("WATCHKEEP_SECURE=1 refuses to start: " + "; ".join(problems))
