"""Prompt templates: sandboxed bounded rendering, chat merging, request variables, diffs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from watchkeep.registry.prompts import (
    MAX_OUTPUT_CHARS,
    MAX_TEMPLATE_CHARS,
    VARIABLES_FIELD,
    CompiledChat,
    PromptContent,
    PromptError,
    SettingChange,
    compile_prompt,
    compile_template,
    diff_prompts,
    render,
    render_messages,
    request_variables,
    variables_of,
)


def _render(source: str, **variables: Any) -> str:
    return render(compile_template(source), variables)


# --- compile, variables, render ---------------------------------------------------------


def test_render_fills_variables_and_keeps_plain_text() -> None:
    out = _render(
        "Hello {{ name }} <b>{{ tag }}</b>\n{% for x in items %}- {{ x }}\n{% endfor %}",
        name="Ann",
        tag="&",
        items=[1, 2],
    )
    assert out == "Hello Ann <b>&</b>\n- 1\n- 2\n"  # autoescape off: '&' stays '&'


def test_variables_are_the_free_names_sorted() -> None:
    source = "{{ b }} {% set local = 1 %}{{ local }} {% for i in items %}{{ i }}{% endfor %} {{ a }}"
    assert variables_of(source) == ("a", "b", "items")
    assert compile_template(source).variables == ("a", "b", "items")


def test_syntax_error_names_its_line() -> None:
    with pytest.raises(PromptError) as info:
        compile_template("line one\nline two {{ oops \n")
    assert info.value.line == 2
    assert "line 2" in str(info.value)


def test_template_size_is_capped() -> None:
    with pytest.raises(PromptError, match="longer than"):
        compile_template("x" * (MAX_TEMPLATE_CHARS + 1))
    with pytest.raises(PromptError, match="string"):
        compile_template(42)  # type: ignore[arg-type]


def test_missing_variable_is_named() -> None:
    with pytest.raises(PromptError, match="'city'"):
        _render("Weather in {{ city }}", other=1)


def test_optional_variable_may_be_absent() -> None:
    assert _render("{% if x is defined %}{{ x }}{% else %}none{% endif %}") == "none"


def test_extra_variables_allowed_or_refused_by_flag() -> None:
    compiled = compile_template("{{ a }}")
    assert render(compiled, {"a": 1, "b": 2}) == "1"
    with pytest.raises(PromptError, match="unknown variables: b"):
        render(compiled, {"a": 1, "b": 2}, allow_extra=False)


def test_ordinary_formatting_still_works() -> None:
    out = _render(
        "{{ '%5.1f' % x }}|{{ '{:,}'.format(n) }}|{{ 'ab' * 3 }}|{{ 2 ** 10 }}|{{ n * 1000 }}",
        x=3.14159,
        n=1234567,
    )
    assert out == "  3.1|1,234,567|ababab|1024|1234567000"
    assert (
        _render("{{ xs|join(', ') }}|{{ 'a b'|replace(' ', '_') }}|{{ 'x'|center(5) }}", xs=[1, 2])
        == "1, 2|a_b|  x  "
    )
    keywords = "{{ 'a b c'|wordwrap(3, break_long_words=False, wrapstring='/') }}|{{ s|indent(width=2, first=True) }}"
    assert _render(keywords, s="a\nb") == "a b/c|  a\n  b"


def test_loops_macros_and_blocks_still_behave_like_jinja() -> None:
    source = (
        "{% for x in xs if x > 1 %}{{ loop.index }}/{{ loop.length }}{{ '.' if loop.last }}{% else %}none{% endfor %}|"
        "{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}|"
        "{% macro b() %}[{{ caller() }}]{% endmacro %}{% call b() %}in{% endcall %}|"
        "{% for n in tree recursive %}{{ n.name }}{% if n.kids %}({{ loop(n.kids) }}){% endif %}{% endfor %}|"
        "{% set t %}{{ 1 ~ 2 }}{% endset %}{{ t }}|{% for x in [] %}x{% else %}empty{% endfor %}"
    )
    tree = [{"name": "r", "kids": [{"name": "c", "kids": []}]}]
    out = _render(source, xs=[1, 2, 3], d={"b": 2, "a": 1}, tree=tree)
    assert out == "1/22/2.|a=1;b=2;|[in]|r(c)|12|empty"


# --- hostile templates --------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.environ }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ ''|attr('__class__') }}",
        "{{ (1).__class__.__base__.__subclasses__() }}",
        "{{ [].append(1) }}",  # the immutable sandbox: no mutation of lists
        "{{ {}.update(a=1) }}",
    ],
)
def test_sandbox_escapes_are_refused(source: str) -> None:
    with pytest.raises(PromptError):
        _render(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "Range too big"),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "rendered prompt is longer"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "loop iterations",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed"),
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
            "loop iterations",
        ),
        ("{{ 'x' * 10**9 }}", "'\\*' would exceed"),
        ("{{ [0] * 10**9 }}", "exceed"),
        ("{{ 9 ** (9 ** 9) }}", "bits"),
        ("{{ '%0999999999d' % 1 }}", "'%' would exceed"),
        ("{{ '{:999999999}'.format(1) }}", "str.format"),
        ("{{ '{0:{1}}{0:{1}}{0:{1}}'.format(1, 190000) }}", "str.format"),
        ("{{ 'x'|center(999999999) }}", "'center' would"),
        ("{{ 'x'.ljust(999999999) }}", "str.ljust"),
        ("{{ ('x' * 100000)|replace('x', 'y' * 100000) }}", "'replace' would"),
        ("{{ range(100000)|join('x' * 100000) }}", "join would"),
        ("{{ ('x' * 100000).join(range(100000)) }}", "join would"),
        ("{{ ('a\n' * 90000)|indent(190000) }}", "'indent' would"),
        ("{{ [1]|batch(10**9, 'x')|list }}", "'batch' would"),
        ("{{ [1]|slice(slices=10**9)|list }}", "'slice' would"),
        ("{{ 'x'|center(width=10**9) }}", "'center' would"),
        ("{{ 'x'|indent(width=10**9) }}", "'indent' would"),
        ("{{ 'x'.expandtabs(10**9) }}", "str.expandtabs"),
        ("{{ ('x' * 100000)|replace(new='y' * 100000, old='x') }}", "'replace' would"),
        ("{{ ('x' * 100000)|wordwrap(1, wrapstring='y' * 100000) }}", "'wordwrap' would"),
        ("{% set s = 'x' * 100000 %}{{ s ~ s ~ s ~ s ~ s }}", "join would"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "exceed",
        ),
        (
            "{% set ns = namespace(n=2) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
            "bits",
        ),
        ("{{ lipsum(100000) }}", "lipsum"),
        ("{% set s = 'x' * 150000 %}{% macro m() %}{{ s }}{{ s }}{% endmacro %}{{ m() }}", "join would"),
        ("{% set s = 'x' * 150000 %}{% set b %}{{ s }}{{ s }}{% endset %}", "join would"),
    ],
)
def test_amplification_is_refused_before_it_is_built(source: str, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        _render(source)


def test_output_cap_applies_to_a_plain_loop_of_variables() -> None:
    compiled = compile_template("{% for line in lines %}{{ line }}\n{% endfor %}")
    assert len(render(compiled, {"lines": ["x" * 99] * 1000})) == 100_000
    with pytest.raises(PromptError, match="longer than"):
        render(compiled, {"lines": ["x" * 99] * (MAX_OUTPUT_CHARS // 100 + 1)})


@pytest.fixture
def no_side_effects() -> Iterator[list[str]]:
    """Record any file, process or network event raised while the flag is on."""
    events: list[str] = []
    watching = [True]
    watched = ("open", "os.", "subprocess.", "socket.", "shutil.", "import")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if watching[0] and event.startswith(watched):
            events.append(event)

    sys.addaudithook(hook)  # audit hooks cannot be removed; the flag turns this one off
    yield events
    watching[0] = False


def test_rendering_never_touches_files_processes_or_environment(
    monkeypatch: pytest.MonkeyPatch, no_side_effects: list[str]
) -> None:
    monkeypatch.setenv("WK_TEST_SECRET", "s3cr3t-value")
    hostile = [
        "{% include '/etc/passwd' %}",
        "{% import '/etc/hosts' as h %}",
        "{% extends 'base.html' %}",
        "{{ environ }}{{ os }}{{ config }}",
        "{{ cycler.__init__.__globals__.os.environ['WK_TEST_SECRET'] }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ range.__self__ }}",
        "{{ dict.__init__ }}",
    ]
    compiled = [compile_template(source) for source in hostile]  # compiling may import; rendering must not
    no_side_effects.clear()
    outputs: list[str] = []
    for template in compiled:
        try:
            outputs.append(render(template, {}))
        except PromptError as exc:
            outputs.append(str(exc))
    assert no_side_effects == []
    assert not any("s3cr3t-value" in text for text in outputs)
    assert os.environ["WK_TEST_SECRET"] == "s3cr3t-value"


# --- chat templates and requests ------------------------------------------------------------


def test_text_template_is_one_system_message_before_the_request() -> None:
    prompt = PromptContent.of("You answer about {{ topic }}.")
    request = [{"role": "user", "content": "hi"}]
    assert render_messages(prompt, {"topic": "tides"}, request) == [
        {"role": "system", "content": "You answer about tides."},
        {"role": "user", "content": "hi"},
    ]


def test_chat_template_renders_each_message_in_order() -> None:
    prompt = PromptContent.of(
        [
            {"role": "system", "content": "Be {{ tone }}."},
            {"role": "user", "content": "Example: {{ example }}"},
            {"role": "assistant", "content": "Understood."},
        ]
    )
    chat = compile_prompt(prompt)
    assert isinstance(chat, CompiledChat)
    assert chat.variables == ("example", "tone")
    request = [{"role": "system", "content": "request system"}, {"role": "user", "content": "q"}]
    messages = render_messages(chat, {"tone": "brief", "example": "2+2=4"}, request)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "system", "user"]
    assert messages[0]["content"] == "Be brief."
    assert messages[1]["content"] == "Example: 2+2=4"
    assert messages[3:] == request
    with pytest.raises(PromptError, match="unknown variables: stray"):
        render_messages(chat, {"tone": "a", "example": "b", "stray": 1}, allow_extra=False)


def test_chat_template_errors_name_the_message() -> None:
    with pytest.raises(PromptError, match="message 1"):
        compile_prompt(
            PromptContent.of([{"role": "system", "content": "ok"}, {"role": "user", "content": "{% if %}"}])
        )
    with pytest.raises(PromptError, match="message 0 needs a role"):
        PromptContent.of([{"role": "wizard", "content": "x"}])
    with pytest.raises(PromptError, match="list of 1 to"):
        PromptContent.of([])


def test_chat_total_output_is_capped() -> None:
    half = "{{ 'x' * 150000 }}"
    prompt = PromptContent.of([{"role": "system", "content": half}, {"role": "user", "content": half}])
    with pytest.raises(PromptError, match="longer than"):
        render_messages(prompt, {})


def test_request_variables_are_taken_out_of_the_body() -> None:
    body = {"model": "m", "messages": [], VARIABLES_FIELD: {"topic": "tides"}, "temperature": 0}
    variables, forwarded = request_variables(body)
    assert variables == {"topic": "tides"}
    assert forwarded == {"model": "m", "messages": [], "temperature": 0}
    assert request_variables({"model": "m"}) == ({}, {"model": "m"})
    with pytest.raises(PromptError, match=VARIABLES_FIELD):
        request_variables({VARIABLES_FIELD: ["not", "an", "object"]})


# --- diffs ----------------------------------------------------------------------------------


def test_diff_of_text_templates_variables_and_settings() -> None:
    old = PromptContent.of("Hello {{ name }}\nBye", {"temperature": 0.2, "max_tokens": 100})
    new = PromptContent.of("Hello {{ name }} from {{ city }}\nBye", {"temperature": 0.7, "top_p": 0.9})
    diff = diff_prompts(old, new, "v1", "v2")
    assert diff.changed
    assert "--- v1" in diff.text
    assert "+++ v2" in diff.text
    assert "-Hello {{ name }}\n" in diff.text
    assert "+Hello {{ name }} from {{ city }}\n" in diff.text
    assert diff.variables_added == ("city",)
    assert diff.variables_removed == ()
    assert diff.settings == (
        SettingChange("max_tokens", "removed", 100, None),
        SettingChange("temperature", "changed", 0.2, 0.7),
        SettingChange("top_p", "added", None, 0.9),
    )


def test_diff_of_chat_templates_shows_roles_and_identical_is_empty() -> None:
    old = PromptContent.of([{"role": "system", "content": "Be {{ tone }}"}])
    new = PromptContent.of([{"role": "system", "content": "Be kind"}, {"role": "user", "content": "{{ q }}"}])
    diff = diff_prompts(old, new)
    assert "+[user]\n" in diff.text
    assert "-Be {{ tone }}\n" in diff.text
    assert diff.variables_added == ("q",)
    assert diff.variables_removed == ("tone",)
    same = diff_prompts(old, PromptContent.of([{"role": "system", "content": "Be {{ tone }}"}]))
    assert not same.changed
    assert same.text == ""


def test_a_chat_templates_syntax_error_names_the_message_and_line_once() -> None:
    chat = PromptContent.of([{"role": "system", "content": "ok"}, {"role": "user", "content": "a\n{{ x "}])
    with pytest.raises(PromptError) as caught:
        compile_prompt(chat)
    assert str(caught.value).startswith("message 1, line 2: syntax error")
    assert str(caught.value).count("line 2") == 1
    assert caught.value.line == 2
