"""The /metrics collector: GenAI histograms, counters, confusion counts, bounded labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from watchkeep.monitor.telemetry import GenAiTelemetry
from watchkeep.store.rows import SPAN_COLUMNS


def row(
    model: str | None, duration_ms: float, status: int = 1, tokens: tuple[int, int] = (10, 5)
) -> tuple[object, ...]:
    values = dict.fromkeys(SPAN_COLUMNS)
    values.update(
        project_id=1,
        operation="chat",
        provider="openai",
        request_model=model,
        duration_ms=duration_ms,
        status_code=status,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=0.5,
    )
    return tuple(values.values())


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_spans_feed_histograms_and_counters() -> None:
    registry = CollectorRegistry()
    telemetry = GenAiTelemetry(registry)
    telemetry.observe_spans([row("m", 30.0), row("m", 500.0, status=2), row(None, 9.0)])
    got = samples(registry)
    base = {
        ("project", "1"),
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_provider_name", "openai"),
        ("gen_ai_request_model", "m"),
    }
    assert got[("gen_ai_client_operation_duration_seconds_count", frozenset(base))] == 2
    assert got[("gen_ai_client_operation_duration_seconds_bucket", frozenset({*base, ("le", "0.04")}))] == 1
    assert got[("gen_ai_client_operation_duration_seconds_bucket", frozenset({*base, ("le", "0.64")}))] == 2
    assert got[("watchkeep_genai_requests_total", frozenset(base))] == 2
    assert got[("watchkeep_genai_errors_total", frozenset(base))] == 1
    assert got[("watchkeep_genai_cost_usd_total", frozenset(base))] == 1.0
    tokens = frozenset({*base, ("gen_ai_token_type", "input")})
    assert got[("gen_ai_client_token_usage_sum", tokens)] == 20


def test_label_values_are_capped() -> None:
    registry = CollectorRegistry()
    telemetry = GenAiTelemetry(registry, max_values=3)
    telemetry.observe_spans([row(f"model-{i}", 10.0) for i in range(10)])
    models = {
        dict(labels)["gen_ai_request_model"]
        for name, labels in samples(registry)
        if name == "watchkeep_genai_requests_total"
    }
    assert models == {"model-0", "model-1", "model-2", "other"}


def test_confusion_counts_give_precision_recall_and_exact_true_negatives() -> None:
    registry = CollectorRegistry()
    telemetry = GenAiTelemetry(registry)
    pairs = [("pos", "pos"), ("pos", "neg"), ("neg", "neg"), ("neg", "neg"), ("meh", "pos")]
    for predicted, actual in pairs:
        telemetry.observe_score(7, "sentiment", predicted, actual)
    telemetry.observe_score(7, "sentiment", None, "pos")  # unlabelled: ignored
    got = samples(registry)

    def count(label: str, outcome: str) -> float:
        key = frozenset({("project", "7"), ("score", "sentiment"), ("label", label), ("outcome", outcome)})
        return got[("watchkeep_quality_confusion_total", key)]

    assert (count("pos", "tp"), count("pos", "fp"), count("pos", "fn"), count("pos", "tn")) == (1, 1, 1, 2)
    assert (count("neg", "tp"), count("neg", "fp"), count("neg", "fn"), count("neg", "tn")) == (2, 0, 1, 2)
    assert count("meh", "tn") == 4
    assert (
        got[("watchkeep_quality_predictions_total", frozenset({("project", "7"), ("score", "sentiment")}))]
        == 5
    )
