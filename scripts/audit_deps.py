"""`make audit-deps`: known vulnerabilities in the installed dependencies (pip-audit).

Fails when pip-audit reports a vulnerable package. Skips, saying why, when the package
index cannot answer: offline, or a mirror without PyPI's per-release JSON (pip-audit then
marks every dependency "not found on PyPI"), so `make test` still runs there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


def audit() -> subprocess.CompletedProcess[str]:
    """pip-audit's JSON report on the installed distributions (raises when it cannot run)."""
    return subprocess.run(
        [str(PIP_AUDIT), "--skip-editable", "--progress-spinner", "off", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def verdict(done: subprocess.CompletedProcess[str]) -> int:
    """The exit status for pip-audit's answer ``done``, printing each vulnerable package
    (tests/unit/test_audit_deps.py feeds it reports, as no index is reachable offline)."""
    try:
        report = json.loads(done.stdout)
    except ValueError:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        print(f"audit-deps: skipped: the package index did not answer ({reason})")
        return 0
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dep in vulnerable:
        ids = ", ".join(
            v["id"] + (f" (fixed in {', '.join(v['fix_versions'])})" if v.get("fix_versions") else "")
            for v in dep["vulns"]
        )
        print(f"audit-deps: {dep['name']} {dep['version']}: {ids}")
    if vulnerable:
        return 1
    if not audited:
        print(
            f"audit-deps: skipped: the package index could not answer for any of the {len(deps)} "
            "dependencies (offline, or a mirror without PyPI's vulnerability data)"
        )
        return 0
    print(
        f"audit-deps: no known vulnerabilities in {len(audited)} dependencies ({len(deps) - len(audited)} not auditable)"
    )
    return 0


def main() -> int:
    try:
        done = audit()
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"audit-deps: skipped: pip-audit could not run ({error})")
        return 0
    return verdict(done)


if __name__ == "__main__":
    sys.exit(main())
