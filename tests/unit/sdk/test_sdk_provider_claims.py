"""The SDK leaves OpenTelemetry's global tracer provider alone unless asked (``set_global``).

Each case runs in its own interpreter: OpenTelemetry lets the global provider be set once
per process, so a test in this one would leak into every test after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    import watchkeep as wk
    from watchkeep.sdk.testing import OtlpSink

    mode = sys.argv[1]
    own = TracerProvider() if mode == "app-provider" else None
    if own is not None:
        trace.set_tracer_provider(own)
    kwargs = {"set_global": True} if mode == "argument" else {}
    with OtlpSink("k") as sink:
        client = wk.init(endpoint=sink.url, api_key="k", home=tempfile.mkdtemp(),
                         flush_interval=0.05, **kwargs)
        with trace.get_tracer("third-party").start_as_current_span("via-global"):
            pass
        with client.get_tracer().start_as_current_span("via-client"):
            pass
        client.shutdown(5)
        glob = trace.get_tracer_provider()
        print(json.dumps({
            "global_is_client": glob is client.tracer_provider,
            "global_is_app": own is not None and glob is own,
            "spans": sorted(s.name for s in sink.spans),
        }))
    """
)


def _run(mode: str, env_set_global: str | None = None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHKEEP_", "OTEL_"))}
    if env_set_global is not None:
        env["WATCHKEEP_SET_GLOBAL"] = env_set_global
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_default_leaves_the_global_provider_alone() -> None:
    """Without ``set_global`` OTel's global tracer stays a no-op: only the client's own
    tracer's spans are exported."""
    result = _run("default")
    assert result == {"global_is_client": False, "global_is_app": False, "spans": ["via-client"]}


def test_default_keeps_the_application_provider() -> None:
    """An application's own global provider stays global after ``wk.init``."""
    result = _run("app-provider")
    assert result == {"global_is_client": False, "global_is_app": True, "spans": ["via-client"]}


@pytest.mark.parametrize(("mode", "env"), [("argument", None), ("default", "true")])
def test_set_global_installs_the_client_provider(mode: str, env: str | None) -> None:
    """``set_global=True`` (or ``WATCHKEEP_SET_GLOBAL=true``) makes the client's provider
    global, so spans of third-party code on the global tracer are exported too."""
    result = _run(mode, env)
    assert result == {"global_is_client": True, "global_is_app": False, "spans": ["via-client", "via-global"]}
