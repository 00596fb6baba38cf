"""``pip install watchkeep`` without extras: the SDK alone traces to a running server.

The wheel is built from this checkout and installed into a fresh virtual environment
(no system site-packages), so the test sees exactly what an application gets. pip may
fetch OpenTelemetry from the package index; when it cannot, the test fails and says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.support.servers import LiveServer

ROOT = Path(__file__).resolve().parents[3]
# Building the wheel and installing it into a new venv takes about half a minute.
pytestmark = pytest.mark.slow

SERVER_ONLY = ("fastapi", "uvicorn", "sqlalchemy", "typer", "pydantic", "numpy", "aiohttp")


@dataclass(frozen=True)
class LightVenv:
    """A fresh virtual environment with the watchkeep wheel installed, no extras."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
        )


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> LightVenv:
    """The wheel of this checkout in a new venv; fails (never skips) when pip cannot install it."""
    base = tmp_path_factory.mktemp("light")
    wheels = base / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    _check(build, "building the watchkeep wheel")
    (wheel,) = wheels.glob("watchkeep-*.whl")
    env = LightVenv(base / "venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env.root)
    install = env.run(env.python, "-m", "pip", "install", "-q", str(wheel), timeout=600)
    if install.returncode != 0:
        pytest.fail(
            "pip could not install the watchkeep wheel and its dependencies into a fresh venv; "
            "is the package index reachable from here?\n" + install.stderr[-4000:]
        )
    return env


def test_the_light_install_has_the_sdk_and_none_of_the_server(light: LightVenv) -> None:
    probe = textwrap.dedent(
        f"""
        import importlib.util, json
        import watchkeep, watchkeep.sdk, watchkeep.semconv
        print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {SERVER_ONLY!r}}}))
        """
    )
    result = light.run(light.python, "-c", probe)
    _check(result, "importing watchkeep in the light venv")
    assert json.loads(result.stdout) == dict.fromkeys(SERVER_ONLY, False)


def test_the_command_says_which_extra_to_install(light: LightVenv) -> None:
    result = light.run(light.root / "bin" / "watchkeep", "keys", "list")
    assert result.returncode == 1
    assert "pip install 'watchkeep[server]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_light_install_traces_to_a_running_server(
    light: LightVenv, live_server: LiveServer, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        """
        import sys
        import watchkeep as wk

        wk.init(endpoint=sys.argv[1], api_key=sys.argv[2], home=sys.argv[3], flush_interval=0.05)
        with wk.span("light-install-check"):
            trace_id = wk.current_trace_id()
        assert wk.flush(30), "the SDK did not flush"
        wk.shutdown(5)
        print(trace_id)
        """
    )
    result = light.run(light.python, "-c", script, live_server.url, live_server.api_key, str(tmp_path / "wk"))
    _check(result, "tracing from the light venv")
    trace_id = result.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    deadline = time.monotonic() + 30
    listed: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        page = httpx.get(f"{live_server.url}/api/v1/traces", headers=headers, timeout=10)
        page.raise_for_status()
        listed = [t for t in page.json()["items"] if t["trace_id"] == trace_id]
        if listed:
            break
        time.sleep(0.1)
    assert listed, f"trace {trace_id} never listed"
    assert listed[0]["name"] == "light-install-check"
    assert live_server.trace(trace_id)["trace_id"] == trace_id
