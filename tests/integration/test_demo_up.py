"""What ``watchkeep up`` sends through the gateway: the model's answers stored as span
payloads, the labelled scores stored, and the report it prints counted from them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import LiveGateway, live_gateway
from tests.support.payloads import message_text, span_payloads
from watchkeep.cli.demo import demo_traffic
from watchkeep.devtools.demo_traffic import QUESTIONS, REVIEWS, predicted_label
from watchkeep.gateway.config import local_backend_available

pytestmark = [
    pytest.mark.skipif(not local_backend_available(), reason="no embedded model or xllamacpp"),
    pytest.mark.slow,  # twelve-odd seconds of generation on two cores, a minute on a busy machine
]
pytest.importorskip("openai")
LIMIT = 2
PRINTED = re.compile(
    r"sent (\d+) calls .* \((\d+) failed\)\n\s+question answering: (\d+)/(\d+) right; "
    r"sentiment: (\d+)/(\d+) right"
)


def _get(gw: LiveGateway, path: str, **params: Any) -> Any:
    with gw.http() as http:
        response = http.get(path, params=params)
        response.raise_for_status()
        return response.json()


def _answer(gw: LiveGateway, trace_id: str) -> tuple[str, str]:
    """The prompt and the model's answer, as stored for the trace's gateway span."""
    span = gw.wait_span(trace_id)
    sent, answered = span_payloads(gw.url, gw.key, trace_id, span["span_id"])
    return message_text(sent), message_text(answered)


def test_demo_traffic_stores_answers_and_scores_and_prints_what_they_say(
    tmp_path: Path, database_url: str
) -> None:
    with live_gateway(tmp_path, database_url, None) as gw:
        printed = demo_traffic(gw.url, gw.key, limit=LIMIT)
        match = PRINTED.search(printed)
        assert match, printed
        calls, failed, qa_right, qa_total, sent_right, sent_total = map(int, match.groups())
        assert (calls, failed, qa_total, sent_total) == (2 * LIMIT, 0, LIMIT, LIMIT)

        qa = _get(gw, "/api/v1/scores", name="qa_correct")["items"]
        sentiment = _get(gw, "/api/v1/scores", name="sentiment")["items"]
        assert len(qa) == len(sentiment) == LIMIT
        truths = dict(QUESTIONS) | dict(REVIEWS)
        for score in qa:
            prompt, answer = _answer(gw, score["trace_id"])
            assert answer, "the model's answer is not stored"
            assert score["label"] == truths[prompt]
            assert score["value"] == float(truths[prompt] in answer.lower())
        for score in sentiment:
            prompt, answer = _answer(gw, score["trace_id"])
            review = prompt.rsplit("Review: ", 1)[1]
            assert score["label"] == truths[review]
            assert score["string_value"] == predicted_label(answer)

        # What it printed is what the stored scores say, and what the quality API says.
        assert qa_right == sum(s["value"] == 1.0 for s in qa)
        assert sent_right == sum(s["string_value"] == s["label"] for s in sentiment)
        qa_report = _get(gw, "/api/v1/quality", name="qa_correct")
        assert (qa_report["n"], qa_report["rate"]["value"]) == (LIMIT, qa_right / LIMIT)
        sent_report = _get(gw, "/api/v1/quality", name="sentiment")
        assert sent_report["n"] == LIMIT
        assert sent_report["classification"]["accuracy"]["value"] == pytest.approx(sent_right / LIMIT)
