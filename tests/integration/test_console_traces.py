"""The console's trace list, trace page, comments, users and sessions (both databases)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from sqlalchemy import select

from tests.support.apps import Api
from tests.support.console import console_user, project_of
from tests.support.keys import new_key
from tests.support.otlp_json import SEC, attr
from tests.support.otlp_post import post_spans
from tests.support.query_data import llm_trace
from watchkeep.store.engine import make_engine
from watchkeep.store.tables import comments, projects
from watchkeep.ui.templating import money

DEEP = "d" * 32
HOSTILE = "e" * 32
SCRIPT = "<script>alert(1)</script>"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the zebra count?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "count_zebras", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "content": "42"},
]


def span(
    trace: str, sid: str, name: str, start: int, end: int, parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": trace,
        "spanId": sid,
        "name": name,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": extra.pop("attributes", []),
        **extra,
    }
    if parent:
        out["parentSpanId"] = parent
    return out


def seed(api: Api) -> int:
    """Traces 1..6 (llm_trace: odd n gpt-4o, trace 5 failed), a nested agent trace and a hostile one."""
    t0 = (time.time_ns() // SEC - 600) * SEC
    spans: list[dict[str, Any]] = []
    for n in range(1, 7):
        spans += llm_trace(n, t0 + n * SEC, error=n == 5)
    base = t0 + 20 * SEC
    spans += [
        span(DEEP, "a" * 16, "agent", base, base + SEC, attributes=[attr("watchkeep.user.id", "zed")]),
        span(DEEP, "b" * 16, "plan", base + SEC // 10, base + SEC // 2, "a" * 16),
        span(
            DEEP,
            "c" * 16,
            "chat",
            base + SEC // 5,
            base + SEC // 3,
            "b" * 16,
            attributes=[
                attr("gen_ai.operation.name", "chat"),
                attr("gen_ai.request.model", "gpt-4o"),
                attr("gen_ai.input.messages", json.dumps(MESSAGES)),
                attr(
                    "gen_ai.output.messages", json.dumps([{"role": "assistant", "content": "There are 42."}])
                ),
            ],
        ),
        span(DEEP, "f" * 16, "tool", base + SEC // 2, base + SEC, "a" * 16, status={"code": 2}),
        span(
            HOSTILE,
            "1" * 16,
            SCRIPT,
            base + 2 * SEC,
            base + 3 * SEC,
            attributes=[attr("watchkeep.input", SCRIPT)],
        ),
    ]
    post_spans(api.client, api.key, spans)
    for body in (
        {"name": "helpfulness", "value": 0.8, "trace_id": DEEP, "comment": "clear answer"},
        {"name": "tone", "value": "friendly", "trace_id": DEEP, "source": "human"},
    ):
        assert api.client.post("/api/v1/scores", json=body, headers=api.auth).status_code in (200, 201)
    return t0


def rows(html: str) -> list[str]:
    """The trace ids of the list's rows, in order."""
    return re.findall(r'data-trace-id="([0-9a-f]{32})"', html)


def test_trace_list_filters_search_and_pages(api: Api) -> None:
    seed(api)
    api.app.state.services.search.catch_up()
    user = console_user(api.database_url, project_of(api.database_url, api.key), role="viewer")
    base = f"/p/{user.project}/traces"
    page = user.get(api.client, base)
    assert page.status_code == 200
    all_ids = rows(page.text)
    assert all_ids == [HOSTILE, DEEP] + [f"{n:032x}" for n in range(6, 0, -1)]  # newest first
    assert "request-3" in page.text
    assert "claude-3-5-haiku" in page.text
    assert "data-search" in page.text

    assert rows(user.get(api.client, base, params={"model": "gpt-4o"}).text) == [DEEP] + [
        f"{n:032x}" for n in (5, 3, 1)
    ]
    assert rows(user.get(api.client, base, params={"status": "error"}).text) == [DEEP, f"{5:032x}"]
    assert rows(user.get(api.client, base, params={"user": "u1", "environment": "prod"}).text) == [
        f"{n:032x}" for n in (4, 1)
    ]
    assert rows(user.get(api.client, base, params={"q": "zebra"}).text) == [DEEP]
    assert rows(user.get(api.client, base, params={"tag": "t0", "release": "r0"}).text) == [
        f"{n:032x}" for n in (6, 4, 2)
    ]
    assert rows(user.get(api.client, base, params={"range": "15m", "session": "nobody"}).text) == []

    # keyset pages: three of three, then the rest, no overlap, filters kept in the link
    first = user.get(api.client, base, params={"limit": 3, "range": "1h"})
    assert rows(first.text) == all_ids[:3]
    link = re.search(r'href="(\?[^"]*cursor=[^"]*)" rel="next"', first.text)
    assert link is not None
    assert "range=1h" in link.group(1)
    second = user.get(api.client, base + link.group(1).replace("&amp;", "&"))
    assert rows(second.text) == all_ids[3:6]
    assert user.get(api.client, base, params={"cursor": "garbage"}).status_code == 400
    assert user.get(api.client, base, params={"cursor": "x" * 600}).status_code == 400
    assert rows(user.get(api.client, base, params={"limit": 0}).text) == all_ids[:1]  # clamped

    # htmx gets the results only
    fragment = user.get(api.client, base, params={"model": "gpt-4o"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="results">')
    assert "<html" not in fragment.text


def test_trace_page_waterfall_conversation_scores_and_escaping(api: Api) -> None:
    seed(api)
    project = project_of(api.database_url, api.key)
    user = console_user(api.database_url, project, role="viewer")
    page = user.get(api.client, f"/p/{project}/traces/{DEEP}")
    assert page.status_code == 200
    order = re.findall(r'data-span-id="([0-9a-f]{16})" data-depth="(\d+)"', page.text)
    assert order == [("a" * 16, "0"), ("b" * 16, "1"), ("c" * 16, "2"), ("f" * 16, "1")]
    assert re.search(r'wk-wf-name wk-depth-2"><a href="\?span=c{16}', page.text)
    assert page.text.count('class="wk-wf-error"') == 1
    assert page.text.count('class="wk-wf-ok"') == 3
    assert 'style="' not in page.text
    # the first span with messages is open: its conversation in order, the tool call as JSON
    roles = re.findall(r'class="wk-message wk-message-(\w+)"', page.text)
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    convo = page.text[page.text.index("wk-conversation") :]
    assert convo.index("You are terse.") < convo.index("zebra count") < convo.index("count_zebras")
    assert convo.index("count_zebras") < convo.index("There are 42.")
    assert re.search(r'<pre class="wk-code">[^<]*&#34;count_zebras&#34;', page.text)
    # scores
    assert "helpfulness" in page.text
    assert "0.800" in page.text
    assert "clear answer" in page.text
    assert "friendly" in page.text
    assert "human" in page.text
    # another span chosen (htmx: just its details)
    tool = user.get(
        api.client, f"/p/{project}/traces/{DEEP}", params={"span": "f" * 16}, headers={"HX-Request": "true"}
    )
    assert tool.text.lstrip().startswith('<section class="wk-card" id="span-detail"')
    assert ">tool " in tool.text
    assert "wk-conversation" not in tool.text

    hostile = user.get(api.client, f"/p/{project}/traces/{HOSTILE}")
    assert hostile.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text
    assert "<script>alert" not in hostile.text

    other_key = new_key(api.database_url)
    post_spans(api.client, other_key, [span("9" * 32, "9" * 16, "elsewhere", 10 * SEC, 11 * SEC)])
    assert user.get(api.client, f"/p/{project}/traces/{'9' * 32}").status_code == 404
    assert user.get(api.client, f"/p/{project}/traces/not-a-trace").status_code == 404
    stranger = console_user(api.database_url, project_of(api.database_url, other_key), role="admin")
    assert stranger.get(api.client, f"/p/{project}/traces").status_code == 404
    assert stranger.get(api.client, f"/p/{project}/traces/{DEEP}").status_code == 404


def stored_comments(api: Api) -> list[str]:
    engine = make_engine(api.database_url)
    try:
        with engine.connect() as conn:
            project = select(projects.c.id).where(projects.c.name == project_of(api.database_url, api.key))
            mine = comments.select().where(comments.c.project_id == project.scalar_subquery())
            return [r.body for r in conn.execute(mine.order_by(comments.c.id))]
    finally:
        engine.dispose()


def test_comments_by_members_and_not_by_viewers(api: Api) -> None:
    seed(api)
    project = project_of(api.database_url, api.key)
    viewer = console_user(api.database_url, project, role="viewer", email=f"vic-{time.time_ns()}@example.com")
    member = console_user(api.database_url, project, role="member")
    path = f"/p/{project}/traces/{DEEP}"

    assert "/comments" not in viewer.get(api.client, path).text  # no form for a viewer
    refused = viewer.post(api.client, path + "/comments", {"body": "sneaky"})
    assert refused.status_code == 403
    assert stored_comments(api) == []

    empty = member.post(api.client, path + "/comments", {"body": "   "})
    assert empty.status_code == 400
    assert "Body is empty." in empty.text
    assert stored_comments(api) == []

    handle = viewer.email.split("@")[0]
    body = f"Looks wrong, @{handle} <b>check</b>"
    done = member.post(api.client, path + "/comments", {"body": body})
    assert done.status_code == 303
    assert done.headers["location"].endswith(f"/traces/{DEEP}#comments")
    member.post(api.client, path + "/comments", {"body": "second"})
    assert stored_comments(api) == [body, "second"]

    page = viewer.get(api.client, path).text
    section = page[page.index('id="comments"') :]
    assert f'<mark class="wk-mention">@{handle}</mark>' in section
    assert "&lt;b&gt;check&lt;/b&gt;" in section
    assert "<b>check" not in section
    assert section.index("Looks wrong") < section.index("second")  # oldest first
    listing = viewer.get(api.client, f"/p/{project}/traces").text
    row = listing[listing.index(f'data-trace-id="{DEEP}"') :].split("</tr>")[0]
    assert re.search(r'<td class="num">2</td>\s*$', row)


def test_users_and_sessions_totals_equal_the_api(api: Api) -> None:
    seed(api)
    project = project_of(api.database_url, api.key)
    user = console_user(api.database_url, project, role="viewer")
    for plural in ("users", "sessions"):
        expected = api.client.get(f"/api/v1/{plural}", headers=api.auth, params={"limit": 200}).json()[
            "items"
        ]
        assert expected
        page = user.get(api.client, f"/p/{project}/{plural}")
        assert page.status_code == 200
        cells = {
            m.group(1): [
                re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", m.group(2))
            ]
            for m in re.finditer(r'<tr data-id="([^"]+)">(.*?)</tr>', page.text, re.S)
        }
        assert set(cells) == {e["id"] for e in expected}
        for e in expected:
            got = cells[e["id"]]
            assert got[1:6] == [
                f"{e['traces']:,}",
                f"{e['calls']:,}",
                f"{e['total_tokens']:,}",
                money(e["cost_usd"]),
                f"{e['errors']:,}",
            ]
        param = "user" if plural == "users" else "session"
        assert f"/p/{project}/traces?range=24h&amp;{param}=" in page.text
    u1 = user.get(api.client, f"/p/{project}/users", params={"environment": "prod"}).text
    assert 'data-id="u1"' in u1
    assert 'data-id="zed"' not in u1
