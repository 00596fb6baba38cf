"""``wk.get_prompt``: registry prompts in-process, stale-while-revalidate, never blocking on an outage.

A prompt is read on the request path of the application, so a slow or absent server must
not become the application's outage. The cache therefore serves a fresh entry from memory,
serves a stale entry at once while ONE background refresh runs per key (no thundering
herd), keeps the last good value while the server is away, and falls back to a default
given in code when nothing was ever fetched.

Server contract (the registry API implements it; this module is its only client)::

    GET {endpoint}/api/v1/prompts/{name}?label=production   (or ?version=3)
    Authorization: Bearer {api_key}
    200 {"name": str, "version": int, "label": str | null,
         "template": str | [{"role": str, "content": str, ...}, ...],
         "variables": [str, ...], "model_settings": {...}}
    404 unknown name, label or version

Cache contract, per store (one per endpoint and key) and key ``(name, label | version)``:

* fresh (fetched less than ``ttl_s`` ago): served from memory, no request;
* stale: served at once; one background refresh starts unless one is running;
* a version pin is immutable, so once fetched it never goes stale;
* a failed fetch (connection error, timeout, 5xx, 4xx, malformed body) keeps the last
  good value and is retried no sooner than ``min(ttl_s, RETRY_AFTER_FAILURE_S)`` later;
* nothing cached: the caller fetches synchronously (bounded by ``timeout_s``) while
  concurrent callers for the same key wait for that one fetch instead of sending their own;
  if it fails, ``default`` is returned as a ``Prompt`` with ``is_fallback=True``, and
  without a default ``PromptUnavailable`` is raised: the only exception ``get_prompt``
  lets into the application.

``Prompt.compile`` substitutes ``{{ name }}`` placeholders only, in one pass, so a value
can never inject another placeholder; it is not Jinja2 (the server renders full, sandboxed
Jinja2 with filters, conditionals and loops; a template using them should be rendered
there, for example by the gateway). Spans: ``get_prompt`` stamps
``watchkeep.prompt.name``/``watchkeep.prompt.version`` on the current span, and inside
``with prompt.use():`` every span started carries them too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeGuard
from urllib.parse import quote

import httpx
import orjson

from watchkeep import semconv
from watchkeep.sdk.client import current_client
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.spans import current_span
from watchkeep.sdk.trace_context import TRACE_ATTRS

PROMPTS_PATH: Final = "/api/v1/prompts/"
RETRY_AFTER_FAILURE_S: Final = 5.0
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Template: TypeAlias = str | list[dict[str, Any]]
Clock: TypeAlias = Callable[[], float]
Spawn: TypeAlias = Callable[[Callable[[], None]], None]
_Key: TypeAlias = tuple[str, str, str]  # (name, "label" | "version", value)


class PromptUnavailable(LookupError):
    """No prompt could be served: nothing cached, no default, and the fetch failed.

    ``reason`` is ``not_found`` (404), ``unreachable`` (connection error or timeout),
    ``server_error`` (5xx), ``rejected`` (other 4xx, e.g. a wrong key), ``invalid``
    (a malformed answer), ``no_api_key`` or ``error`` (an internal failure).
    """

    def __init__(self, name: str, selector: str, reason: str) -> None:
        super().__init__(
            f"prompt {name!r} ({selector}) is not available: {reason}; "
            "pass default= to get_prompt to serve a built-in template when the server is away"
        )
        self.name = name
        self.selector = selector
        self.reason = reason


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)


def placeholders(template: Template) -> tuple[str, ...]:
    """The ``{{ name }}`` variables of a template (every string in its messages), in order."""
    return tuple(dict.fromkeys(m.group(1) for text in _texts(template) for m in _PLACEHOLDER.finditer(text)))


def _substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(
            lambda m: str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), value
        )
    if isinstance(value, list):
        return [_substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, variables) for key, item in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt version as served by the registry (or a fallback built from a default)."""

    name: str
    template: Template
    version: int | None = None
    label: str | None = None
    variables: tuple[str, ...] = ()
    model_settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    is_fallback: bool = False

    def compile(self, **variables: Any) -> Template:
        """The template with each ``{{ name }}`` replaced by ``str(variables[name])``.

        Placeholders without a value, and any other Jinja2 syntax, are left as written.
        For a list of messages every string inside them is substituted (``role`` included).
        """
        result: Template = _substitute(self.template, variables)
        return result

    @property
    def attributes(self) -> dict[str, str | int]:
        """The span attributes that identify this version (no version on a fallback)."""
        attrs: dict[str, str | int] = {semconv.WK_PROMPT_NAME: self.name}
        if self.version is not None:
            attrs[semconv.WK_PROMPT_VERSION] = self.version
        return attrs

    @contextmanager
    def use(self) -> Iterator[Prompt]:
        """Stamp this prompt on the current span and on every span started in the block."""
        annotate_current_span(self)
        token = TRACE_ATTRS.set(MappingProxyType({**TRACE_ATTRS.get(), **self.attributes}))
        try:
            yield self
        finally:
            TRACE_ATTRS.reset(token)


def annotate_current_span(prompt: Prompt) -> None:
    """Set the prompt's name and version on the current recording span, if any."""
    span = current_span()
    if span is not None:
        span.set_attributes(prompt.attributes)


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(value)


def _is_template(value: object) -> TypeGuard[Template]:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in value
    )


def parse_prompt(data: object) -> Prompt:
    """A ``Prompt`` from the server's JSON answer; ``ValueError`` if it breaks the contract."""
    if not isinstance(data, dict):
        raise ValueError("the answer is not an object")
    name, version, label = data.get("name"), data.get("version"), data.get("label")
    template = data.get("template")
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("version must be an integer")
    if label is not None and not isinstance(label, str):
        raise ValueError("label must be a string or null")
    if not _is_template(template):
        raise ValueError("template must be a string or a list of messages with a role")
    settings = data.get("model_settings") or {}
    if not isinstance(settings, dict):
        raise ValueError("model_settings must be an object")
    variables = data.get("variables")
    return Prompt(
        name=name,
        template=template,
        version=version,
        label=label,
        variables=placeholders(template) if variables is None else _strings(variables, "variables"),
        model_settings=MappingProxyType(settings),
    )


class _FetchFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Entry:
    """Cache slot for one key; every field is read and written under the store's lock."""

    __slots__ = ("done", "fresh_until", "prompt", "reason", "refreshing", "retry_at")

    def __init__(self) -> None:
        self.prompt: Prompt | None = None
        self.fresh_until = float("-inf")
        self.retry_at = float("-inf")
        self.refreshing = False
        self.reason = ""
        self.done = threading.Event()


def _spawn_thread(task: Callable[[], None]) -> None:
    threading.Thread(target=task, name="watchkeep-prompt-refresh", daemon=True).start()


def _selector(key: _Key) -> str:
    return f"{key[1]}={key[2]}"


class PromptStore:
    """The cache and HTTP fetcher for one server; safe to share between threads.

    ``clock`` (monotonic seconds) and ``spawn`` (runs a refresh in the background) are
    injectable so tests can age entries and run refreshes deterministically.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str | None,
        *,
        clock: Clock = time.monotonic,
        spawn: Spawn = _spawn_thread,
        errors: ErrorLog | None = None,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._headers = {"User-Agent": "watchkeep-python-sdk"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._clock = clock
        self._spawn = spawn
        self._errors = errors or ErrorLog()
        self._lock = threading.Lock()
        self._entries: dict[_Key, _Entry] = {}
        self._http: httpx.Client | None = None
        self.requests = 0  # fetches sent (for tests and diagnostics)

    def get(
        self,
        name: str,
        *,
        label: str = "production",
        version: int | None = None,
        default: Template | Prompt | None = None,
        ttl_s: float = 60.0,
        timeout_s: float = 2.0,
    ) -> Prompt:
        """The prompt for ``name`` at ``version`` (if given) or ``label``; see the module docstring."""
        key: _Key = (name, "version", str(version)) if version is not None else (name, "label", label)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            prompt, start, running = self._plan(entry, self._clock())
        if start and prompt is not None:
            self._start_background(key, entry, ttl_s, timeout_s)
        elif start:
            self._refresh(key, ttl_s, timeout_s)
        elif running is not None:
            running.wait(timeout_s)
        with self._lock:
            prompt, reason = prompt or entry.prompt, entry.reason or "unreachable"  # waited out a slow fetch
        if prompt is not None:
            return prompt
        return fallback(name, key[2] if key[1] == "label" else None, default, _selector(key), reason)

    def _plan(self, entry: _Entry, now: float) -> tuple[Prompt | None, bool, threading.Event | None]:
        """(what to serve now, whether to start a fetch, the running fetch to wait for)."""
        if entry.prompt is not None and now < entry.fresh_until:
            return entry.prompt, False, None
        if entry.refreshing:
            return entry.prompt, False, entry.done if entry.prompt is None else None
        if now < entry.retry_at:
            return entry.prompt, False, None
        entry.refreshing = True
        entry.done = threading.Event()
        return entry.prompt, True, None

    def _start_background(self, key: _Key, entry: _Entry, ttl_s: float, timeout_s: float) -> None:
        try:
            self._spawn(lambda: self._refresh(key, ttl_s, timeout_s))
        except Exception as exc:  # e.g. no new threads at interpreter shutdown
            self._errors.report("prompt-refresh", exc)
            with self._lock:
                entry.refreshing = False
            entry.done.set()

    def _refresh(self, key: _Key, ttl_s: float, timeout_s: float) -> None:
        prompt: Prompt | None = None
        reason = ""
        try:
            prompt = self._fetch(key, timeout_s)
        except _FetchFailed as exc:
            reason = exc.reason
            self._errors.report(
                f"prompt-{reason}",
                message=f"prompt {key[0]!r} ({_selector(key)}) could not be refreshed: {reason}",
            )
        except Exception as exc:
            reason = "error"
            self._errors.report("prompt-error", exc)
        now = self._clock()
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            if prompt is not None:
                entry.prompt, entry.reason = prompt, ""
                entry.fresh_until = float("inf") if key[1] == "version" else now + ttl_s
            else:
                entry.reason = reason
                entry.retry_at = now + min(ttl_s, RETRY_AFTER_FAILURE_S)
            entry.refreshing = False
            done = entry.done
        done.set()

    def _fetch(self, key: _Key, timeout_s: float) -> Prompt:
        name, kind, value = key
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(headers=self._headers)
            http = self._http
            self.requests += 1
        try:
            response = http.get(
                f"{self._endpoint}{PROMPTS_PATH}{quote(name, safe='')}",
                params={kind: value},
                timeout=httpx.Timeout(max(timeout_s, 0.05)),
            )
        except Exception as exc:
            raise _FetchFailed("unreachable") from exc
        status = response.status_code
        if status != 200:
            raise _FetchFailed(
                "not_found" if status == 404 else "server_error" if status >= 500 else "rejected"
            )
        try:
            return parse_prompt(orjson.loads(response.content))
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            raise _FetchFailed("invalid") from exc

    def invalidate(self, name: str | None = None) -> None:
        """Forget cached prompts (all, or those of ``name``): the next call fetches again.

        An entry whose fetch is running is kept; that fetch's answer is the new value.
        """
        with self._lock:
            for key in [k for k in self._entries if name is None or k[0] == name]:
                if not self._entries[key].refreshing:
                    del self._entries[key]

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()


def fallback(
    name: str, label: str | None, default: Template | Prompt | None, selector: str, reason: str
) -> Prompt:
    """``default`` as a fallback ``Prompt``; ``PromptUnavailable`` when there is none."""
    if isinstance(default, Prompt):
        return dataclasses.replace(default, is_fallback=True)
    if default is None:
        raise PromptUnavailable(name, selector, reason)
    return Prompt(name=name, template=default, label=label, variables=placeholders(default), is_fallback=True)


_STORES: dict[tuple[str, str | None], PromptStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(endpoint: str, api_key: str | None) -> PromptStore:
    """The process-wide store for one server and key (created on first use)."""
    with _STORES_LOCK:
        store = _STORES.get((endpoint, api_key))
        if store is None:
            store = _STORES[(endpoint, api_key)] = PromptStore(endpoint, api_key)
        return store


def get_prompt(
    name: str,
    *,
    label: str = "production",
    version: int | None = None,
    default: Template | Prompt | None = None,
    ttl_s: float = 60.0,
    timeout_s: float = 2.0,
) -> Prompt:
    """A prompt from the registry of the configured server, cached in-process for ``ttl_s``.

    ``version`` pins an immutable version (``label`` is then ignored). When nothing was
    ever fetched and the server cannot answer, ``default`` (a template or a ``Prompt``)
    comes back with ``is_fallback=True``; without it ``PromptUnavailable`` is raised.
    The prompt's name and version are set on the current span.
    """
    selector = f"version={version}" if version is not None else f"label={label}"
    try:
        config = current_client().config
        if not config.api_key:
            prompt = fallback(name, label if version is None else None, default, selector, "no_api_key")
        else:
            prompt = store_for(config.endpoint, config.api_key).get(
                name, label=label, version=version, default=default, ttl_s=ttl_s, timeout_s=timeout_s
            )
    except PromptUnavailable:
        raise
    except Exception as exc:  # an SDK bug must not break the application
        prompt = fallback(name, label if version is None else None, default, selector, "error")
        current_client().errors.report("get_prompt", exc)
    annotate_current_span(prompt)
    return prompt


def _after_fork_in_child() -> None:
    """Locks and refresh threads do not survive ``fork``: the child starts with an empty cache."""
    global _STORES_LOCK
    _STORES_LOCK = threading.Lock()
    _STORES.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
