"""Prompt templates: compile, render (sandboxed and bounded), merge into requests, diff.

A prompt version's template is written by a tenant, so it is hostile input. It is Jinja2
rendered in ``ImmutableSandboxedEnvironment`` (no ``_`` attributes, no mutating methods),
with ``StrictUndefined`` and autoescape off (prompts are plain text), and every cost is
bounded so a template can neither read the host nor exhaust it:

* the source is at most ``MAX_TEMPLATE_CHARS``; ``range`` is the sandbox's (100 000 items);
* output is produced by ``generate()`` and counted: past ``MAX_OUTPUT_CHARS`` rendering stops
  with ``PromptError`` (a truncated prompt would be served silently wrong, so it is refused);
* every loop iteration and every call spends one step of ``MAX_STEPS`` per render, so nested
  loops and recursive macros end; Python recursion errors become ``PromptError``;
* ``*``, ``**``, ``%``, ``~``, ``str.format``, the amplifying ``str`` methods and filters
  (``center``, ``indent``, ``replace``, ``join``, ``format``, ``wordwrap``, ``batch``,
  ``slice``, ``ljust``/``rjust``/``zfill``/``expandtabs``) refuse results estimated
  past ``MAX_OUTPUT_CHARS`` *before* building them; call results and ``namespace`` values
  are held to the same bound, and so are the buffers of macros and ``set``/``filter``/``call``
  blocks (``concat``); ``lipsum`` is removed.

Contract (``render_messages`` is what the gateway calls):

* ``compile_template(source) -> CompiledPrompt``; syntax errors raise ``PromptError`` with ``line``.
* ``variables_of(source)`` -> the template's free variables, sorted.
* ``render(compiled, variables, allow_extra=True)``; a missing variable raises ``PromptError``
  naming it; with ``allow_extra=False`` unknown variables are refused too.
* A prompt's template is a string (rendered as one ``system`` message) or a list of
  ``{"role", "content"}`` messages whose contents are templates (``PromptContent``).
* A chat request supplies variables in the extra body field ``prompt_variables`` (a JSON
  object; ``request_variables`` takes it out of the body before forwarding). The merged
  request is the prompt's rendered messages first, in order, then the request's own messages.
* ``diff_prompts(old, new) -> PromptDiff``: unified text diff, variables added/removed, and
  model settings changed key by key.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from watchkeep.gateway.protocol import ROLES

MAX_TEMPLATE_CHARS = 100_000
MAX_OUTPUT_CHARS = 200_000
MAX_STEPS = 200_000
MAX_MESSAGES = 100
MAX_INT_BITS = 4096
VARIABLES_FIELD = "prompt_variables"

_steps: contextvars.ContextVar[list[int]] = contextvars.ContextVar("wk_prompt_steps")
_FORMAT_FIELD = re.compile(r"[{%]")
_DIGITS = re.compile(r"\d+")
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")


class PromptError(ValueError):
    """A template that cannot be compiled or rendered; ``line`` is its 1-based line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.detail = message  # without the line prefix, for callers that add their own context


def _refuse(what: str) -> PromptError:
    return PromptError(f"{what} would exceed {MAX_OUTPUT_CHARS} characters")


def _spend(n: int = 1) -> None:
    budget = _steps.get(None)
    if budget is None:
        return
    budget[0] += n
    if budget[0] > MAX_STEPS:
        raise PromptError(f"the template ran more than {MAX_STEPS} loop iterations and calls")


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3  # about its decimal digits
    return 0


def _bounded(value: Any, what: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise PromptError(f"{what} gives an integer over {MAX_INT_BITS} bits")
    if _size(value) > MAX_OUTPUT_CHARS:
        raise _refuse(what)
    return value


def _format_estimate(fmt: str, args: Iterable[Any]) -> int:
    """An upper bound on a format's output: its text, every width, every field at its largest argument."""
    dynamic = "*" in fmt or _NESTED_FIELD.search(fmt) is not None  # a width taken from an argument
    widest = max((max(len(str(a)), a if dynamic and isinstance(a, int) else 0) for a in args), default=0)
    widths = sum(int(d) if len(d) < 12 else 10**12 for d in _DIGITS.findall(fmt))
    return len(fmt) + widths + len(_FORMAT_FIELD.findall(fmt)) * widest


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _replace_estimate(s: Any, *args: Any, **kwargs: Any) -> int:
    text, old, new = str(s), str(_arg(args, kwargs, 0, "old", "")), str(_arg(args, kwargs, 1, "new", ""))
    return len(text) + (len(text) // max(len(old), 1) + 1) * len(new)


def _width_estimate(s: Any, *args: Any, **kwargs: Any) -> int:
    return len(str(s)) + _int(_arg(args, kwargs, 0, "width", 0))


def _indent_estimate(s: Any, *args: Any, **kwargs: Any) -> int:
    width = _arg(args, kwargs, 0, "width", 4)
    pad = _int(width) if isinstance(width, int) else len(str(width))
    return len(str(s)) * 2 + (str(s).count("\n") + 1) * pad


def _wordwrap_estimate(s: Any, *args: Any, **kwargs: Any) -> int:
    return len(str(s)) * (2 + len(str(_arg(args, kwargs, 2, "wrapstring", None) or "\n")))


def _join_items(sep: str, items: Iterable[Any]) -> str:
    parts: list[str] = []
    total = 0
    for item in items:
        _spend()
        text = str(item)
        total += len(text) + (len(sep) if parts else 0)
        if total > MAX_OUTPUT_CHARS:
            raise _refuse("join")
        parts.append(text)
    return sep.join(parts)


_ESTIMATES: dict[str, Callable[..., int]] = {
    "center": _width_estimate,
    "ljust": _width_estimate,
    "rjust": _width_estimate,
    "zfill": _width_estimate,
    "expandtabs": lambda s, *a, **k: len(str(s)) * (1 + _int(_arg(a, k, 0, "tabsize", 8))),
    "indent": _indent_estimate,
    "replace": _replace_estimate,
    "wordwrap": _wordwrap_estimate,
    "batch": lambda s, *a, **k: _int(_arg(a, k, 0, "linecount", 1)),
    "slice": lambda s, *a, **k: _int(_arg(a, k, 0, "slices", 1)),
    "format": lambda s, *a, **k: _format_estimate(str(s), [*a, *k.values()]),
}


def _guard_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    estimate = _ESTIMATES[name]
    skip = 1 if getattr(original, "jinja_pass_arg", None) else 0  # a context/environment comes first

    @functools.wraps(original)  # keeps Jinja's pass_eval_context/pass_environment marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if estimate(*args[skip:], **kwargs) > MAX_OUTPUT_CHARS:
            raise _refuse(f"the filter {name!r}")
        return _bounded(original(*args, **kwargs), f"the filter {name!r}")

    return guarded


def _join_filter(value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = (item[attribute] for item in value) if attribute is not None else value
    return _join_items(str(d), items)


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend()
        yield item


def _concat(parts: Iterable[Any]) -> str:
    return _join_items("", parts)


class _BoundedNamespace(Namespace):
    """``namespace()`` whose values stay within the bounds, so loops cannot grow them without limit."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _bounded(value, f"namespace value {name!r}"))


class _PromptSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with every amplifying operation estimated first and every call counted."""

    intercepted_binops = frozenset({"*", "**", "%"})
    concat = staticmethod(_concat)  # joins the buffers of macros and set/filter/call blocks

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                repeated = isinstance(seq, str | list | tuple) and isinstance(n, int)
                if repeated and len(seq) * max(n, 0) > MAX_OUTPUT_CHARS:
                    raise _refuse("'*'")
        elif operator == "**":
            big = isinstance(left, int) and isinstance(right, int) and right > 0
            if big and max(abs(left).bit_length() - 1, 0) * right > MAX_INT_BITS:
                raise PromptError(f"'**' gives an integer over {MAX_INT_BITS} bits")
        elif isinstance(left, str):
            args = right if isinstance(right, tuple) else [right]
            if _format_estimate(left, args) > MAX_OUTPUT_CHARS:
                raise _refuse("'%'")
        return _bounded(super().call_binop(context, operator, left, right), f"'{operator}'")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name == "join" and args:
                return _join_items(owner, args[0])
            estimate = _ESTIMATES.get(name)
            if estimate and estimate(owner, *args, **kwargs) > MAX_OUTPUT_CHARS:
                raise _refuse(f"str.{name}")
        return _bounded(
            ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs), "a call"
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` as the sandbox wraps them, estimated before they run."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        is_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            values = list(args[0].values()) if is_map and args and isinstance(args[0], Mapping) else [*args]
            if _format_estimate(fmt, [*values, *kwargs.values()]) > MAX_OUTPUT_CHARS:
                raise _refuse("str.format")
            return wrapped(*args, **kwargs)

        return bounded


def _environment() -> _PromptSandbox:
    env = _PromptSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.pop("lipsum", None)
    env.globals["namespace"] = _BoundedNamespace
    for name in ("center", "indent", "replace", "wordwrap", "format", "batch", "slice"):
        env.filters[name] = _guard_filter(name, env.filters[name])
    env.filters["join"] = _join_filter
    env.filters["_wk_counted"] = _counted
    env.filters["_wk_concat"] = _concat
    return env


_ENV = _environment()


def _instrument(tree: nodes.Template) -> nodes.Template:
    """Count every loop iteration and bound every ``~`` by rewriting the parsed template."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "_wk_counted", [], [], None, None, lineno=loop.lineno)
    for concat in list(tree.find_all(nodes.Concat)):
        items = nodes.List(concat.nodes, lineno=concat.lineno)
        concat.nodes = [nodes.Filter(items, "_wk_concat", [], [], None, None, lineno=concat.lineno)]
    return tree


@dataclass(frozen=True)
class CompiledPrompt:
    """One compiled template and its free variables."""

    source: str
    template: Template = field(repr=False, compare=False)
    variables: tuple[str, ...]


def _parse(source: str) -> nodes.Template:
    if not isinstance(source, str):
        raise PromptError(f"a template is a string, not {type(source).__name__}")
    if len(source) > MAX_TEMPLATE_CHARS:
        raise PromptError(f"the template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        return _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise PromptError(f"syntax error: {exc.message}", exc.lineno) from exc


def variables_of(source: str) -> tuple[str, ...]:
    """The template's free variables (those a render must supply), sorted."""
    return tuple(sorted(meta.find_undeclared_variables(_parse(source))))


def compile_template(source: str) -> CompiledPrompt:
    """Parse and compile ``source``; a syntax error raises ``PromptError`` with its line."""
    tree = _parse(source)
    variables = tuple(sorted(meta.find_undeclared_variables(tree)))
    try:
        template = _ENV.from_string(_instrument(tree))
    except TemplateSyntaxError as exc:  # pragma: no cover - parse already succeeded
        raise PromptError(f"syntax error: {exc.message}", exc.lineno) from exc
    return CompiledPrompt(source=source, template=template, variables=variables)


def render(compiled: CompiledPrompt, variables: Mapping[str, Any], *, allow_extra: bool = True) -> str:
    """Render within the bounds; missing (or, unless allowed, unknown) variables raise ``PromptError``."""
    if not allow_extra:
        extra = sorted(set(variables) - set(compiled.variables))
        if extra:
            raise PromptError(f"unknown variables: {', '.join(extra)}")
    token = _steps.set([0])
    parts: list[str] = []
    size = 0
    try:
        for chunk in compiled.template.generate(**dict(variables)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise PromptError(f"the rendered prompt is longer than {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
    except PromptError:
        raise
    except UndefinedError as exc:
        raise PromptError(f"missing variable: {exc.message}") from exc
    except SecurityError as exc:
        raise PromptError(f"refused by the sandbox: {exc}") from exc
    except RecursionError as exc:
        raise PromptError("the template recursed too deeply") from exc
    except Exception as exc:  # a tenant's template may raise anything; none may escape as a 500
        raise PromptError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _steps.reset(token)
    return "".join(parts)


@dataclass(frozen=True)
class PromptContent:
    """What a prompt version holds: its template (text or chat messages) and model settings."""

    template: str | tuple[tuple[str, str], ...]
    model_settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, template: str | Sequence[Mapping[str, Any]], model_settings: Mapping[str, Any] | None = None
    ) -> PromptContent:
        """Validate a template given as text or as ``[{"role", "content"}]``."""
        if isinstance(template, str):
            return cls(template, dict(model_settings or {}))
        if not isinstance(template, Sequence) or not 1 <= len(template) <= MAX_MESSAGES:
            raise PromptError(f"a chat template is a list of 1 to {MAX_MESSAGES} messages")
        messages: list[tuple[str, str]] = []
        for i, message in enumerate(template):
            role = message.get("role") if isinstance(message, Mapping) else None
            content = message.get("content") if isinstance(message, Mapping) else None
            if role not in ROLES or not isinstance(content, str):
                raise PromptError(
                    f"message {i} needs a role ({', '.join(sorted(ROLES))}) and a string content"
                )
            messages.append((role, content))
        return cls(tuple(messages), dict(model_settings or {}))

    def sources(self) -> tuple[tuple[str, str], ...]:
        """The template as (role, source) pairs; a text template is one system message."""
        return (("system", self.template),) if isinstance(self.template, str) else self.template


@dataclass(frozen=True)
class CompiledChat:
    """A prompt whose every message is compiled; build once per version, render per request."""

    messages: tuple[tuple[str, CompiledPrompt], ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(sorted({v for _, c in self.messages for v in c.variables}))


def compile_prompt(prompt: PromptContent) -> CompiledChat:
    """Compile every message; an error names the message and its line."""
    compiled: list[tuple[str, CompiledPrompt]] = []
    for i, (role, source) in enumerate(prompt.sources()):
        try:
            compiled.append((role, compile_template(source)))
        except PromptError as exc:
            where = f"message {i}" + (f", line {exc.line}" if exc.line else "")
            error = PromptError(f"{where}: {exc.detail}")
            error.line = exc.line
            raise error from exc
    return CompiledChat(tuple(compiled))


def render_messages(
    prompt: PromptContent | CompiledChat,
    variables: Mapping[str, Any],
    request_messages: Sequence[Mapping[str, Any]] = (),
    *,
    allow_extra: bool = True,
) -> list[dict[str, Any]]:
    """The prompt's rendered messages, then the request's own messages, as the request to send."""
    chat = compile_prompt(prompt) if isinstance(prompt, PromptContent) else prompt
    if not allow_extra:
        extra = sorted(set(variables) - set(chat.variables))
        if extra:
            raise PromptError(f"unknown variables: {', '.join(extra)}")
    rendered: list[dict[str, Any]] = []
    total = 0
    for role, compiled in chat.messages:
        text = render(compiled, variables)
        total += len(text)
        if total > MAX_OUTPUT_CHARS:
            raise PromptError(f"the rendered prompt is longer than {MAX_OUTPUT_CHARS} characters")
        rendered.append({"role": role, "content": text})
    return rendered + [dict(m) for m in request_messages]


def request_variables(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a chat request body into its ``prompt_variables`` and the body to forward without them."""
    forwarded = {k: v for k, v in body.items() if k != VARIABLES_FIELD}
    raw = body.get(VARIABLES_FIELD, {})
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise PromptError(f"'{VARIABLES_FIELD}' must be an object with string keys")
    return dict(raw), forwarded


@dataclass(frozen=True)
class SettingChange:
    """One model setting that differs: ``old``/``new`` are None where the key is absent."""

    key: str
    change: Literal["added", "removed", "changed"]
    old: Any
    new: Any


@dataclass(frozen=True)
class PromptDiff:
    """What changed between two prompt versions."""

    text: str
    variables_added: tuple[str, ...]
    variables_removed: tuple[str, ...]
    settings: tuple[SettingChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.text or self.variables_added or self.variables_removed or self.settings)


def _lines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def _as_text(prompt: PromptContent) -> list[str]:
    if isinstance(prompt.template, str):
        return _lines(prompt.template)
    lines: list[str] = []
    for role, content in prompt.template:
        lines.append(f"[{role}]\n")
        lines.extend(_lines(content))
    return lines


def _variables(prompt: PromptContent) -> set[str]:
    return {v for _, source in prompt.sources() for v in variables_of(source)}


def diff_prompts(
    old: PromptContent, new: PromptContent, old_label: str = "old", new_label: str = "new"
) -> PromptDiff:
    """Unified diff of the templates (chat messages shown as ``[role]`` blocks), variables and settings."""
    text = "".join(difflib.unified_diff(_as_text(old), _as_text(new), old_label, new_label))
    before, after = _variables(old), _variables(new)
    settings: list[SettingChange] = []
    for key in sorted(set(old.model_settings) | set(new.model_settings)):
        if key not in old.model_settings:
            settings.append(SettingChange(key, "added", None, new.model_settings[key]))
        elif key not in new.model_settings:
            settings.append(SettingChange(key, "removed", old.model_settings[key], None))
        elif old.model_settings[key] != new.model_settings[key]:
            settings.append(SettingChange(key, "changed", old.model_settings[key], new.model_settings[key]))
    return PromptDiff(text, tuple(sorted(after - before)), tuple(sorted(before - after)), tuple(settings))
