"""Trace a small RAG-style flow and an OpenAI call, offline.

Runs against a local OTLP sink and a canned OpenAI-compatible server, then prints the
spans the SDK sent. Point ``endpoint`` at a real watchkeep server to see them there.

    .venv/bin/python examples/sdk_quickstart.py
"""

from __future__ import annotations

import re
import tempfile

import openai

import watchkeep as wk
from watchkeep.sdk.testing import CHAT_MODEL, ChatStubServer, OtlpSink

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def main() -> None:
    with OtlpSink("demo-key") as sink, ChatStubServer() as llm:
        wk.init(
            endpoint=sink.url,
            api_key="demo-key",
            environment="dev",
            release="demo",
            home=tempfile.mkdtemp(),
            redact=lambda key, text: EMAIL.sub("<email>", text),
        )
        client = openai.OpenAI(api_key="unused", base_url=llm.base_url)
        wk.instrument(client)

        @wk.observe(kind="retriever")
        def retrieve(question: str) -> list[str]:
            return [f"a document about {question}"]

        @wk.observe(kind="chain")
        def answer(question: str) -> str:
            docs = retrieve(question)
            stream = client.chat.completions.create(
                model=CHAT_MODEL,
                stream=True,
                stream_options={"include_usage": True},
                messages=[
                    {"role": "system", "content": "\n".join(docs)},
                    {"role": "user", "content": question},
                ],
            )
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        with wk.context(user_id="ada@example.com", session_id="s-1", tags=["demo"]), wk.span("request"):
            print("answer:", answer("watchkeep"))
            wk.feedback(True, comment="great answer, ada@example.com")
        wk.shutdown(5)

        for span in sink.spans:
            print(
                f"{span.name:<12} parent={span.parent_span_id} "
                f"user={span.attributes.get('watchkeep.user.id')} "
                f"tokens={span.attributes.get('gen_ai.usage.output_tokens')} "
                f"ttft_ms={span.attributes.get('watchkeep.time_to_first_token_ms')}"
            )
        print("feedback:", sink.scores)
        print("stats:", wk.stats())


if __name__ == "__main__":
    main()
