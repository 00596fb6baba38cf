"""``watchkeep worker`` as a real process and ``watchkeep monitors apply`` on real databases."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from tests.support.monitor import LOOPBACK, MonitorApi, Receiver, no_calls_monitor
from tests.support.servers import run_until
from typer.testing import CliRunner

from watchkeep.cli.main import app as cli
from watchkeep.monitor.channels import SIGNATURE_HEADER, verify
from watchkeep.monitor.repository import ChannelRepository, MonitorRepository
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

CLI = [sys.executable, "-m", "watchkeep.cli.main"]
SECRET = "worker-secret-0123456789"


def worker_env(home: Path, database_url: str) -> dict[str, str]:
    """The environment of a worker on ``database_url`` that may reach loopback receivers."""
    return {
        **os.environ,
        "WATCHKEEP_HOME": str(home),
        "WATCHKEEP_DATABASE_URL": database_url,
        "WATCHKEEP_EGRESS_ALLOW_NETWORKS": ",".join(LOOPBACK),
        "WATCHKEEP_LOG_LEVEL": "WARNING",
    }


def test_worker_process_fires_to_a_webhook_and_stops_on_sigterm(
    mon: MonitorApi, receiver: Receiver, tmp_path: Path
) -> None:
    channel = {"name": "hook", "kind": "webhook", "config": {"url": f"{receiver.url}/hook", "secret": SECRET}}
    mon.add_channel(channel)
    monitor_id = mon.add_monitor(no_calls_monitor("hook"))

    err = run_until(
        [*CLI, "worker", "--tick", "0.2"], worker_env(tmp_path, mon.database_url), lambda: receiver.requests
    )
    assert b"running" in err

    headers, body = receiver.requests[0]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    sent = receiver.bodies()[0]
    assert (sent["monitor"], sent["kind"], sent["state"]) == ("no-calls", "firing", "ALERT")
    assert sent["project_id"] == mon.project_id
    assert len(receiver.requests) == 1  # once per state change, not once per pass
    state = mon.client.get(f"/api/v1/monitors/{monitor_id}", headers=mon.auth).json()
    assert state["state"] == "ALERT"
    history = mon.client.get("/api/v1/alerts", headers=mon.auth).json()["items"]
    assert [(e["kind"], [d["ok"] for d in e["deliveries"]]) for e in history] == [("firing", [True])]


MONITORS = """
channels:
  - name: ops
    kind: webhook
    config: {{url: "http://127.0.0.1:9/hook", secret: "0123456789abcdef0123"}}
monitors:
  - name: error-rate
    kind: metric
    metric: error_rate
    window: 5m
    condition: {{op: ">", warning: 0.02, alert: {alert}}}
    channels: [ops]
  - name: latency-drift
    kind: drift
    feature: latency_ms
    window: 1h
    reference: {{duration: 1d, refresh: 1h}}
"""


@pytest.fixture
def apply_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The project name ``watchkeep monitors apply`` writes to, in a loopback-allowed env."""
    for name, value in worker_env(tmp_path, database_url).items():
        if name.startswith("WATCHKEEP_"):
            monkeypatch.setenv(name, value)
    return f"apply-{uuid.uuid4().hex[:10]}"


def stored(database_url: str, project: str) -> tuple[dict[str, tuple[int, float | None]], list[str]]:
    """Each monitor's id and error-rate alert threshold, and the channel names, of ``project``."""
    engine = make_engine(database_url)
    try:
        project_id = ProjectRepository(engine).get_or_create(project).id
        monitors = {
            row.spec.name: (row.id, row.spec.condition.alert if row.spec.condition else None)
            for row in MonitorRepository(engine).all(project_id)
        }
        channels = [str(c["name"]) for c in ChannelRepository(engine).all(project_id)]
    finally:
        engine.dispose()
    return monitors, channels


def apply(path: Path, text: str, project: str) -> tuple[int, str, str]:
    path.write_text(text)
    result = CliRunner().invoke(cli, ["monitors", "apply", str(path), "--project", project])
    return result.exit_code, result.stdout, result.stderr


def test_monitors_apply_creates_updates_and_is_idempotent(
    apply_env: str, database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "monitors.yml"
    code, out, err = apply(file, MONITORS.format(alert=0.05), apply_env)
    assert code == 0, err
    assert "created monitor error-rate" in out
    assert "created monitor latency-drift" in out
    first, channels = stored(database_url, apply_env)
    assert first.keys() == {"error-rate", "latency-drift"}
    assert first["error-rate"][1] == 0.05
    assert channels == ["ops"]

    code, out, err = apply(file, MONITORS.format(alert=0.05), apply_env)
    assert code == 0, err
    assert "updated monitor error-rate" in out
    assert stored(database_url, apply_env) == (first, channels)

    code, out, err = apply(file, MONITORS.format(alert=0.1), apply_env)
    assert code == 0, err
    changed, _ = stored(database_url, apply_env)
    assert changed["error-rate"] == (first["error-rate"][0], 0.1)  # same monitor, new threshold


BROKEN = [
    # the first monitor changed and a new one added, but the last one is invalid
    (
        MONITORS.format(alert=0.5)
        + "  - {name: new-one, kind: metric, metric: requests, condition: {alert: 1}}\n"
        "  - {name: bad, kind: metric, metric: latency_p42, condition: {alert: 1}}\n",
        "metric monitors need metric",
    ),
    # a channel pointing at the cloud metadata address
    (MONITORS.format(alert=0.5).replace("127.0.0.1:9", "169.254.169.254"), "destination refused"),
    (MONITORS.format(alert=0.5) + "  - name: [unclosed\n", "not valid YAML"),
    (
        "monitors:\n  - &m {name: a, kind: metric, metric: requests, condition: {alert: 1}}\n  - *m\n",
        "anchors and aliases",
    ),
]


@pytest.mark.parametrize(("text", "reason"), BROKEN, ids=["invalid-monitor", "egress", "syntax", "alias"])
def test_monitors_apply_refuses_an_invalid_file_and_changes_nothing(
    apply_env: str, database_url: str, tmp_path: Path, text: str, reason: str
) -> None:
    file = tmp_path / "monitors.yml"
    assert apply(file, MONITORS.format(alert=0.05), apply_env)[0] == 0
    before = stored(database_url, apply_env)
    code, out, err = apply(file, text, apply_env)
    assert code == 2
    assert err.startswith(f"error: invalid monitors file {file}:")
    assert reason in err
    assert "Traceback" not in err
    assert "monitor" not in out
    assert stored(database_url, apply_env) == before
