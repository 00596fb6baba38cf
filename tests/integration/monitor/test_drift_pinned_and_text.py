"""Drift against a pinned reference (a fixed window through ``GET /api/v1/drift``, fixed
values in a monitor) and text drift (embeddings of responses) through the API and a monitor.

Each shifted current window must be flagged and each unshifted one must not; the samples
are seeded, so the verdicts are reproducible."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from tests.support.keys import new_key
from tests.support.monitor import NS, MonitorApi

from watchkeep.devtools.synthetic_calls import TOPICS, Traffic
from watchkeep.monitor.embedding_drift import model_dir

HOUR = 3600 * NS
WORDS = 12.0
EMBEDDER = "all-minilm-l6-v2" if model_dir() is not None else "hashing"


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).isoformat()


def drift(
    mon: MonitorApi,
    feature: str,
    reference: tuple[int, int],
    current: tuple[int, int],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    params = {
        "feature": feature,
        "reference_from": iso(reference[0]),
        "reference_to": iso(reference[1]),
        "current_from": iso(current[0]),
        "current_to": iso(current[1]),
    }
    response = mon.client.get("/api/v1/drift", params=params, headers=headers or mon.auth)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def evaluated(mon: MonitorApi, spec: dict[str, Any]) -> dict[str, Any]:
    """Create ``spec`` and evaluate it now through the API; the monitor afterwards."""
    created = mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth)
    assert created.status_code == 201, created.text
    response = mon.client.post(f"/api/v1/monitors/{created.json()['id']}/evaluate", headers=mon.auth)
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


def texts(topic: str, n: int, seed: int) -> list[str]:
    """``n`` answers about ``topic``, the way the synthetic calls word them."""
    rng = np.random.default_rng(seed)
    vocab = TOPICS[topic].split()
    return [" ".join(vocab[i] for i in rng.integers(0, len(vocab), rng.poisson(WORDS) + 1)) for _ in range(n)]


def answers(topic: str, environment: str = "prod") -> Traffic:
    """Short answers about ``topic``: small samples of short texts, as embedding is the cost."""
    return Traffic(topic=topic, environment=environment, response_words_mean=WORDS)


def test_drift_api_against_a_pinned_reference_window(mon: MonitorApi) -> None:
    now = time.time_ns()
    reference = (now - 4 * HOUR, now - 2 * HOUR)
    mon.fill(600, *reference, Traffic(), seed=11)
    mon.fill(300, now - 2 * HOUR, now - HOUR, Traffic(), seed=12)
    mon.fill(300, now - HOUR, now, Traffic(latency_median_ms=1200, topic="cooking"), seed=13)

    steady = drift(mon, "latency_ms", reference, (now - 2 * HOUR, now - HOUR))
    assert steady["result"]["method"] == "ks"
    assert not steady["result"]["drifted"], steady
    assert (steady["result"]["reference_n"], steady["result"]["current_n"]) == (600, 300)
    shifted = drift(mon, "latency_ms", reference, (now - HOUR, now))
    assert shifted["result"]["drifted"], shifted
    assert shifted["reference_cached"]  # the pinned window is closed: summarised once

    stranger = {"Authorization": f"Bearer {new_key(mon.database_url, 'viewer', f'{mon.project}-other')}"}
    foreign = drift(mon, "latency_ms", reference, (now - HOUR, now), stranger)
    assert (foreign["result"]["reference_n"], foreign["result"]["current_n"]) == (0, 0)


def pinned_drift_monitor(
    name: str, feature: str, environment: str, values: list[Any], *, min_samples: int
) -> dict[str, Any]:
    """A drift monitor of ``feature`` over the last hour of ``environment`` against pinned values."""
    return {
        "name": name,
        "kind": "drift",
        "feature": feature,
        "window": "1h",
        "min_samples": min_samples,
        "filter": {"environment": environment},
        "reference": {"values": values},
    }


def test_drift_monitor_with_pinned_values_fires_only_on_a_shift(mon: MonitorApi) -> None:
    now = time.time_ns()
    mon.fill(300, now - HOUR + NS, now - NS, Traffic(environment="prod"), seed=21)
    mon.fill(300, now - HOUR + NS, now - NS, Traffic(environment="staging", latency_median_ms=1400), seed=22)
    pinned = np.random.default_rng(23).lognormal(np.log(800), 0.4, 500).round(3).tolist()

    def monitor(name: str, environment: str) -> dict[str, Any]:
        return pinned_drift_monitor(name, "latency_ms", environment, pinned, min_samples=50)

    quiet = evaluated(mon, monitor("prod-latency", "prod"))
    assert quiet["state"] == "OK", quiet["last_message"]
    assert "n = 500 vs 300" in quiet["last_message"]
    fired = evaluated(mon, monitor("staging-latency", "staging"))
    assert fired["state"] == "ALERT", fired["last_message"]
    assert fired["last_message"].startswith("latency_ms: drift (ks")
    kept = mon.client.get(f"/api/v1/monitors/{fired['id']}", headers=mon.auth).json()
    assert kept["spec"]["reference"]["values"] == pinned


def test_text_drift_through_the_api_and_a_monitor(mon: MonitorApi) -> None:
    now = time.time_ns()
    reference = (now - 4 * HOUR, now - 2 * HOUR)
    mon.fill(40, *reference, answers("contracts"), seed=31)
    mon.fill(25, now - 2 * HOUR, now - HOUR, answers("contracts"), seed=32)
    mon.fill(25, now - HOUR + NS, now - NS, answers("cooking", "staging"), seed=33)
    mon.fill(25, now - HOUR + NS, now - NS, answers("contracts", "prod"), seed=34)

    steady = drift(mon, "response_text", reference, (now - 2 * HOUR, now - HOUR))
    assert (steady["kind"], steady["embedder"]) == ("text", EMBEDDER)
    assert steady["result"]["method"] == "domain_classifier"
    assert not steady["result"]["drifted"], steady
    shifted = drift(mon, "response_text", reference, (now - HOUR, now))
    assert shifted["result"]["drifted"], shifted
    assert shifted["result"]["statistic"] > steady["result"]["statistic"]

    def monitor(name: str, environment: str) -> dict[str, Any]:
        values = texts("contracts", 40, seed=35)
        return pinned_drift_monitor(name, "response_text", environment, values, min_samples=20)

    quiet = evaluated(mon, monitor("prod-answers", "prod"))
    assert quiet["state"] == "OK", quiet["last_message"]
    fired = evaluated(mon, monitor("staging-answers", "staging"))
    assert fired["state"] == "ALERT", fired["last_message"]
    assert "domain_classifier" in fired["last_message"]
