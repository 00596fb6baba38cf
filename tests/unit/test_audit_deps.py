"""``scripts/audit_deps.py`` (``make audit-deps``): a vulnerable dependency fails the check
and is named; an index that cannot answer skips it. pip-audit has no offline vulnerability
source, so the tests feed its JSON report (the shape of pip-audit 2.x ``-f json``) at the
script's seam, ``audit``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_deps.py"


@pytest.fixture(scope="module")
def audit_deps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module
    spec.loader.exec_module(module)
    return module


def answer(stdout: str, stderr: str = "", code: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["pip-audit"], code, stdout, stderr)


def report(*deps: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


JINJA2_OLD = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [
        {
            "id": "GHSA-h5c8-rqwp-cp95",
            "fix_versions": ["3.1.3"],
            "aliases": ["CVE-2024-22195"],
            "description": "xmlattr filter allows keys with spaces",
        }
    ],
}
CLEAN = {"name": "orjson", "version": "3.10.0", "vulns": []}
NOT_ON_INDEX = {"name": "watchkeep", "skip_reason": "Dependency not found on PyPI"}


def test_a_vulnerable_pinned_package_fails_and_is_named(
    audit_deps: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit_deps, "audit", lambda: answer(report(CLEAN, JINJA2_OLD, NOT_ON_INDEX), code=1))
    assert audit_deps.main() == 1
    out = capsys.readouterr().out
    assert "audit-deps: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in out
    assert "orjson" not in out


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        (answer(report(CLEAN, NOT_ON_INDEX)), "no known vulnerabilities in 1 dependencies (1 not auditable)"),
        (answer(report(NOT_ON_INDEX)), "skipped: the package index could not answer for any of the 1"),
        (answer("", "ConnectionError: index unreachable", 1), "(ConnectionError: index unreachable)"),
    ],
    ids=["clean", "nothing-auditable", "offline"],
)
def test_clean_or_unanswered_audits_pass(
    audit_deps: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    done: subprocess.CompletedProcess[str],
    expected: str,
) -> None:
    monkeypatch.setattr(audit_deps, "audit", lambda: done)
    assert audit_deps.main() == 0
    assert expected in capsys.readouterr().out


def test_pip_audit_that_cannot_start_skips(
    audit_deps: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit_deps, "PIP_AUDIT", Path("/nonexistent/pip-audit"))
    assert audit_deps.main() == 0
    assert "skipped: pip-audit could not run" in capsys.readouterr().out
