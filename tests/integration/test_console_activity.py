"""The console's activity feed and mentions tab (both databases)."""

from __future__ import annotations

import re
import time

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.otlp_json import SEC
from tests.support.people import people_on, project_of_key
from tests.support.query_data import llm_trace
from watchkeep.store.comment_repository import Author

SCRIPT = "<script>alert(1)</script>"
TRACE = f"{1:032x}"


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def project_id(api: Api) -> int:
    return project_of_key(api.app.state.services.engine, api.key)[0]


def record(api: Api, n: int, verb: str = "edited", actor: str = "ada") -> None:
    api.app.state.services.activity.record(
        project_id(api),
        actor=actor,
        actor_user_id=None,
        verb=verb,
        target_kind="monitor",
        target_id=str(n),
        summary=f"entry {n:03d}",
    )


def summaries(html: str) -> list[str]:
    return re.findall(r">(entry \d{3})<", html)


def store_trace(api: Api) -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": llm_trace(1, (time.time_ns() // SEC - 60) * SEC)}]}]}
    assert api.client.post("/v1/traces", json=body, headers=api.auth).status_code == 200


def test_feed_is_newest_first_with_a_pager_and_filters(api: Api) -> None:
    for n in range(1, 56):
        record(api, n, verb="silenced" if n % 5 == 0 else "edited", actor="bob" if n == 7 else "ada")
    viewer = user_of(api, "viewer")
    first = viewer.get(api.client, f"/p/{viewer.project}/activity")
    assert first.status_code == 200
    assert summaries(first.text) == [f"entry {n:03d}" for n in range(55, 5, -1)]
    older = re.search(r'href="([^"]*before=\d+[^"]*)" rel="next"', first.text)
    assert older
    second = viewer.get(api.client, older.group(1).replace("&amp;", "&")).text
    assert summaries(second) == [f"entry {n:03d}" for n in range(5, 0, -1)]
    assert 'rel="next"' not in second
    only = viewer.get(api.client, f"/p/{viewer.project}/activity?verb=silenced").text
    assert summaries(only) == [f"entry {n:03d}" for n in range(55, 0, -5)]
    bob = viewer.get(api.client, f"/p/{viewer.project}/activity?actor=bob").text
    assert summaries(bob) == ["entry 007"]
    assert f'href="/p/{viewer.project}/monitors/7"' in bob  # the target links to its page
    assert viewer.get(api.client, f"/p/{viewer.project}/activity?before=abc").status_code == 200


def test_feed_escapes_and_is_private_to_the_project(api: Api) -> None:
    api.app.state.services.activity.record(
        project_id(api),
        actor=SCRIPT,
        actor_user_id=None,
        verb="edited",
        target_kind="monitor",
        target_id="1",
        summary=SCRIPT,
    )
    member = user_of(api, "member")
    html = member.get(api.client, f"/p/{member.project}/activity").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    with people_on(api.database_url) as people:
        theirs = people.project(people.organisation()).name
    stranger = console_user(api.database_url, theirs, role="admin")
    assert stranger.get(api.client, f"/p/{member.project}/activity").status_code == 404
    assert stranger.get(api.client, f"/p/{member.project}/activity/mentions").status_code == 404
    assert SCRIPT not in stranger.get(api.client, f"/p/{theirs}/activity").text


def test_mentions_tab_shows_a_mention_and_mark_read_clears_it(api: Api) -> None:
    store_trace(api)
    ada, bob = user_of(api, "member"), user_of(api, "viewer")
    handle = bob.email
    api.app.state.services.comments.add(
        project_id(api),
        Author(name="ada", user_id=ada.user_id),
        "trace",
        TRACE,
        f"@{handle} look <b>here</b>",
    )
    feed = bob.get(api.client, f"/p/{bob.project}/activity").text
    assert "1 unread" in feed  # the tab shows the count from any activity page
    assert "commented" in feed
    tab = bob.get(api.client, f"/p/{bob.project}/activity/mentions")
    assert tab.status_code == 200
    rows = re.findall(r'<tr data-mention="\d+" class="is-unread">', tab.text)
    assert len(rows) == 1
    assert "look &lt;b&gt;here&lt;/b&gt;" in tab.text
    assert f'href="/p/{bob.project}/traces/{TRACE}#comments"' in tab.text
    assert "Mark all read" in tab.text
    # Without the CSRF token the post is refused and nothing changes.
    bare = bob.use(api.client).post(f"/p/{bob.project}/activity/mentions/read", follow_redirects=False)
    assert bare.status_code == 403
    assert api.app.state.services.comments.unread_count(bob.user_id) == 1
    done = bob.post(api.client, f"/p/{bob.project}/activity/mentions/read")
    assert done.status_code == 303
    assert api.app.state.services.comments.unread_count(bob.user_id) == 0
    after = bob.get(api.client, f"/p/{bob.project}/activity/mentions").text
    assert "is-unread" not in after
    assert "unread" not in re.sub(r"<[^>]+>", "", after.split("Comments that mention you")[0])
    assert len(re.findall(r'<tr data-mention="\d+"', after)) == 1  # still listed, now read
    assert "Mark all read" not in after
