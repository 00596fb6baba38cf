"""A real Prometheus scrapes /metrics; the shipped rules and dashboard only use exported metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.support.keys import new_key
from tests.support.servers import free_port, serve

from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.devtools.synthetic_otlp import build_request

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "watchkeep.json"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported_names(text: str) -> set[str]:
    """Every metric family and sample name of an exposition (families without samples too)."""
    names = set(re.findall(r"^# TYPE (\S+)", text, flags=re.M))
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def queried_names(expr: str) -> set[str]:
    """Metric names an expression reads (recording-rule names, with a colon, excluded)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(?:by|on|without|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"label_values\(([^,]+),[^)]*\)", r"\1", expr)  # label_values(metric, label)
    return set(re.findall(r"(?<![:\w])((?:gen_ai|watchkeep|process)_[a-zA-Z0-9_]+)", expr))


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    templating = json.loads(DASHBOARD.read_text())["templating"]["list"]
    return [t["expr"] for p in panels for t in p["targets"]] + [
        v["query"]["query"] for v in templating if v["type"] == "query"
    ]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    settings = Settings(
        home=tmp_path,
        ingest_decode_workers=0,
        log_format="text",
        resource_sample_seconds=0.5,
        worker_tick_seconds=0.5,
    )
    app = create_app(settings)
    port = free_port()
    uv, thread = serve(app, port)
    try:
        yield f"http://127.0.0.1:{port}", new_key(settings.resolved_database_url(), "admin"), app
    finally:
        uv.should_exit = True
        thread.join(30)


def feed(url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        body, _ = build_request(300)
        assert (
            c.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}).status_code
            == 200
        )
        for predicted, actual in [("a", "a"), ("a", "b"), ("b", "b")]:
            c.post(
                "/api/v1/scores",
                json={"name": "topic", "value": predicted, "label": actual, "trace_id": TRACE},
            )
        monitor = {"name": "drifty", "kind": "drift", "feature": "latency_ms", "window": "1h"}
        c.post("/api/v1/monitors", json=monitor)


def test_promtool_accepts_the_shipped_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with the Debian package 'prometheus' (scripts/install-system-deps.sh)"
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_and_dashboard_query_only_exported_metrics(server: tuple[str, str, Any]) -> None:
    url, key, _ = server
    feed(url, key)
    deadline = time.monotonic() + 30
    names: set[str] = set()
    while time.monotonic() < deadline:
        names = {base(n) for n in exported_names(httpx.get(f"{url}/metrics").text)}
        if "watchkeep_monitor_firing" in names and "watchkeep_resource_cpu_percent" in names:
            break
        time.sleep(0.2)
    used = {base(n) for e in rule_exprs() + dashboard_exprs() for n in queried_names(e)}
    assert used, "expected the rules and the dashboard to query metrics"
    assert used <= names, f"queried but not exported: {sorted(used - names)}"


def test_a_real_prometheus_scrapes_metrics(server: tuple[str, str, Any], tmp_path: Path) -> None:
    url, key, _ = server
    feed(url, key)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {"job_name": "watchkeep", "static_configs": [{"targets": [url.removeprefix("http://")]}]}
                ],
            }
        )
    )
    binary = shutil.which("prometheus")
    assert binary, "prometheus comes with the Debian package 'prometheus'"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    queries = {
        "requests": "sum(watchkeep_genai_requests_total)",
        "latency": "sum(gen_ai_client_operation_duration_seconds_count)",
        "precision_a": 'sum(watchkeep_quality_confusion_total{label="a",outcome="tp"}) / (sum(watchkeep_quality_confusion_total{label="a",outcome="tp"}) + sum(watchkeep_quality_confusion_total{label="a",outcome="fp"}))',
    }
    got: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(got) < len(queries):
            for name, q in queries.items():
                try:
                    result = httpx.get(f"{api}/query", params={"query": q}, timeout=5).json()["data"][
                        "result"
                    ]
                except (httpx.HTTPError, KeyError, ValueError):
                    continue
                if result:
                    got[name] = float(result[0]["value"][1])
            time.sleep(0.5)
        targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
        rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
    finally:
        proc.terminate()
        proc.wait(30)
    assert targets[0]["health"] == "up"
    assert got["requests"] == 100  # synthetic traces: one LLM call in every three spans
    assert got["latency"] == 100
    assert got["precision_a"] == pytest.approx(0.5)
    assert all(r["health"] != "err" for g in rules for r in g["rules"])
