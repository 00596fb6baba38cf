"""Hostile values in every console form: a clear 4xx or an accepted change, never a 500.

Each page that carries forms is fetched as the project's owner; every post form on it is
then sent with each hostile value in all of its fields (NUL characters, which PostgreSQL
refuses; 100,000 characters; markup; path tricks; huge numbers; emoji). Forms are found by
parsing the pages, so a form added later is fuzzed without being listed here.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser

from tests.support.apps import Api
from tests.support.console import console_user, project_of
from tests.support.otlp_post import post_spans
from tests.support.query_data import llm_trace

HOSTILE = [
    "\x00",
    "x" * 100_000,
    "<script>alert(1)</script>",
    "../../../etc/passwd",
    "9" * 40,
    "-1",
    "🙂\u202e",
]
# Forms that end the session would end the fuzzing itself.
SKIP_ACTIONS = ("/logout",)


class Forms(HTMLParser):
    """The post forms of a page: (action, field names)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[str]]] = []
        self._current: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "get").lower() == "post":
            self._current = (a.get("action") or "", [])
            self.forms.append(self._current)
        elif tag in ("input", "textarea", "select") and self._current is not None:
            name = a.get("name")
            if name and name != "csrf_token" and a.get("type") != "submit":
                self._current[1].append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def test_no_console_form_answers_hostile_values_with_a_server_error(api: Api) -> None:
    project = project_of(api.database_url, api.key)
    post_spans(api.client, api.key, llm_trace(1, time.time_ns() - 60 * 10**9))
    owner = console_user(api.database_url, project, "owner")
    pages = ["", "traces/" + f"{1:032x}", "monitors/new", "routes/new", "queues/new", "settings/members"]
    pages.append("settings/keys")
    failures: list[str] = []
    tried = 0
    for page in pages:
        path = f"/p/{project}/{page}"
        response = owner.get(api.client, path)
        assert response.status_code == 200, (path, response.status_code)
        parser = Forms()
        parser.feed(response.text)
        for action, fields in parser.forms:
            target = action or path
            if not fields or target.startswith(SKIP_ACTIONS):
                continue
            for value in HOSTILE:
                tried += 1
                answer = owner.post(api.client, target, {name: value for name in fields})
                if answer.status_code >= 500:
                    failures.append(f"{target} {fields} {value[:20]!r}: {answer.status_code}")
    assert tried >= 5 * len(HOSTILE)  # the pages really had forms
    assert not failures
