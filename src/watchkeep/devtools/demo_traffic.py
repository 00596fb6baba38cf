"""Demo traffic for ``watchkeep up``: questions and sentiment labels with known answers.

It calls the gateway exactly as an application would, with the official OpenAI client,
then sends what it knows as scores: the ground truth as the score's label and the
model's prediction as its value, so quality dashboards have real data. SmolLM2-135M
is tiny and often wrong; the scores say so honestly.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

QUESTIONS = [
    ("What is the capital of France?", "paris"),
    ("How many legs does a spider have?", "eight"),
    ("What colour is the sky on a clear day?", "blue"),
    ("What is the largest planet in our solar system?", "jupiter"),
    ("Which animal says 'moo'?", "cow"),
    ("What is frozen water called?", "ice"),
]
REVIEWS = [
    ("I loved this phone, the battery lasts for days.", "positive"),
    ("Broke after a week. Never again.", "negative"),
    ("Fast delivery and exactly as described.", "positive"),
    ("Terrible customer service, I want a refund.", "negative"),
    ("Absolutely wonderful, my kids adore it.", "positive"),
    ("The screen cracked on day one and support ignored me.", "negative"),
]
SENTIMENT_PROMPT = (
    "Classify the sentiment of the review as positive or negative. Answer with one word.\nReview: {review}"
)


@dataclass
class DemoReport:
    """What the demo sent and how the model did."""

    calls: int = 0
    errors: int = 0
    qa_correct: int = 0
    qa_total: int = 0
    sentiment_correct: int = 0
    sentiment_total: int = 0


def predicted_label(reply: str) -> str:
    """The sentiment the reply names first (``unknown`` when it names none)."""
    text = reply.lower()
    found = [(text.find(label), label) for label in ("positive", "negative") if label in text]
    return min(found)[1] if found else "unknown"


def _score(http: httpx.Client, trace_id: str, name: str, value: Any, label: str) -> None:
    http.post(
        "/api/v1/scores",
        json={"name": name, "value": value, "trace_id": trace_id, "label": label, "source": "api"},
    )


def run(
    endpoint: str,
    key: str,
    model: str = "smollm2",
    rounds: int = 1,
    seed: int = 7,
    limit: int | None = None,
) -> DemoReport:
    """Send ``rounds`` of every question and review (the first ``limit`` of each, if given)
    through the gateway, with their scores."""
    import openai

    client = openai.OpenAI(base_url=f"{endpoint}/v1", api_key=key, max_retries=1, timeout=120)
    http = httpx.Client(base_url=endpoint, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    report = DemoReport()
    rng = random.Random(seed)
    jobs: list[tuple[str, str, str]] = []
    for _ in range(rounds):
        jobs += [("qa", q, a) for q, a in QUESTIONS[:limit]]
        jobs += [("sentiment", r, label) for r, label in REVIEWS[:limit]]
    rng.shuffle(jobs)

    def one(job: tuple[str, str, str]) -> tuple[str, bool] | None:
        """The job's kind and whether the model was right; None when the call failed."""
        kind, text, truth = job
        prompt = text if kind == "qa" else SENTIMENT_PROMPT.format(review=text)
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=24 if kind == "qa" else 4,
                temperature=0,
                user=f"demo-user-{rng.randint(1, 5)}",
            )
        except openai.OpenAIError:
            return None
        reply = raw.parse().choices[0].message.content or ""
        trace_id = raw.headers.get("x-watchkeep-trace-id", "")
        if kind == "qa":
            correct = truth in reply.lower()
            _score(http, trace_id, "qa_correct", correct, truth)
            return kind, correct
        predicted = predicted_label(reply)
        _score(http, trace_id, "sentiment", predicted, truth)
        return kind, predicted == truth

    with ThreadPoolExecutor(max_workers=2) as pool:
        for outcome in pool.map(one, jobs):
            if outcome is None:
                report.errors += 1
                continue
            report.calls += 1
            if outcome[0] == "qa":
                report.qa_total += 1
                report.qa_correct += outcome[1]
            else:
                report.sentiment_total += 1
                report.sentiment_correct += outcome[1]
    http.close()
    client.close()
    return report
