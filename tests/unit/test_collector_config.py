"""deploy/otel-collector.yaml sends to watchkeep's OTLP ports with the key as a bearer header."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from watchkeep.config import Settings

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel-collector.yaml"


def test_collector_exports_traces_and_logs_to_the_grpc_port() -> None:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    exporter = config["exporters"]["otlp/watchkeep"]
    host, _, port = exporter["endpoint"].rpartition(":")
    assert host
    assert int(port) == Settings.model_fields["otlp_grpc_port"].default
    assert re.fullmatch(r"Bearer \$\{env:[A-Z_]+\}", exporter["headers"]["authorization"])
    assert exporter["compression"] == "gzip"
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    for signal in ("traces", "logs"):
        pipeline = config["service"]["pipelines"][signal]
        assert pipeline == {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp/watchkeep"]}


def test_commented_otlphttp_alternative_points_at_the_http_port() -> None:
    lines = CONFIG.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# otlphttp/watchkeep:")
    block = []
    for line in lines[start:]:
        if not line.startswith("  #"):
            break
        block.append(line[len("  # ") :])
    alternative: dict[str, Any] = yaml.safe_load("\n".join(block))["otlphttp/watchkeep"]
    assert alternative["endpoint"].endswith(f":{Settings.model_fields['port'].default}")
    assert alternative["headers"]["authorization"].startswith("Bearer ${env:")
