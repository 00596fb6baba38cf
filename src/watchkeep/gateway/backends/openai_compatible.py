"""Any OpenAI-compatible upstream (vLLM, Ollama, TGI, llama.cpp server, OpenAI) over pooled aiohttp.

aiohttp rather than httpx on this path: its keep-alive pool costs a few tens of
microseconds per request where httpcore's pool, with anyio underneath, measured ten
times more under concurrency and became the gateway's bottleneck. The base URL and
the secret come from the route configuration, never from a request; the secret lives
only in this session's default headers. Routes made through the API connect through the
egress policy's resolver (a name that resolves inward is refused when connecting).
An upstream's error body may echo a key, an internal host name or the prompt: callers get
"upstream answered N", and the server log gets only the error's ``type`` and ``code``
(short identifiers), never its free text (issue 16: no secrets or payloads in logs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from watchkeep.gateway.backends.base import InFlight, Json
from watchkeep.gateway.config import DeploymentSpec
from watchkeep.gateway.errors import UpstreamError, parse_retry_after, upstream_status_error
from watchkeep.security.egress import AddressPolicy, EgressConnectRefused, GuardedResolver

log = logging.getLogger(__name__)
_ERROR_BYTES = 4096  # read of an error body, to find its type and code
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def error_summary(error: Any) -> str:
    """An upstream error's ``type`` and ``code`` when they are short identifiers; no free text."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if not isinstance(error, dict):
        return "(no error type)"
    parts = [
        f"{k}={v}"
        for k in ("type", "code")
        if isinstance(v := error.get(k), str | int) and _IDENTIFIER.fullmatch(str(v))
    ]
    return " ".join(parts) or "(no error type)"


def _transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamError("upstream timed out", timeout=True)
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, EgressConnectRefused):
        log.warning("upstream connection refused: %s", exc.os_error)
        return UpstreamError("upstream address refused by the egress policy", retryable=False)
    return UpstreamError(f"upstream connection failed ({type(exc).__name__})")


def _json(content: bytes) -> Json:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamError("upstream sent invalid JSON") from None
    if not isinstance(value, dict):
        raise UpstreamError("upstream sent a non-object JSON body")
    return value


def _carries_text(chunk: Json) -> bool:
    """Whether a chunk carries answer text or a tool call: what the time to first token waits for."""
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


def _events(
    lines: list[bytes], until_text: bool = False
) -> tuple[list[Json], bool, UpstreamError | None, list[bytes]]:
    """The chunks in these server-sent event lines, whether ``[DONE]`` ended them, the
    failure a malformed or error event stopped them at (the chunks before it still count:
    the client gets them, then the stream's error event), and the lines left unread.

    ``until_text`` stops after the first chunk that carries text, so the first token is
    relayed before the rest of its read is parsed (an upstream's first read often holds
    the whole answer); lines are left unread only then.
    """
    batch: list[Json] = []
    for at, raw in enumerate(lines):
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return batch, True, None, []
        try:
            chunk = _json(data)
        except UpstreamError as exc:
            return batch, False, exc, []
        if "error" in chunk and "choices" not in chunk:
            log.warning("upstream stream failed: %s", error_summary(chunk))
            return batch, False, UpstreamError("the upstream stream failed"), []
        batch.append(chunk)
        if until_text and _carries_text(chunk):
            return batch, False, None, lines[at + 1 :]
    return batch, False, None, []


async def _status_error(response: aiohttp.ClientResponse) -> UpstreamError:
    try:
        detail = error_summary(orjson.loads(await response.content.read(_ERROR_BYTES)))
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        detail = "(no error type)"
    log.warning("upstream %s answered %d: %s", response.url.origin(), response.status, detail)
    return upstream_status_error(
        response.status,
        f"upstream answered {response.status}",
        parse_retry_after(response.headers.get("Retry-After")),
    )


class OpenAICompatibleBackend:
    """One keep-alive connection pool per deployment, opened on first use (inside the loop)."""

    def __init__(self, spec: DeploymentSpec, secret: str | None, egress: AddressPolicy | None = None) -> None:
        assert spec.base_url is not None
        base = spec.base_url.rstrip("/") + "/"
        # Parsed once: aiohttp would parse a string URL on every call.
        self._urls = {path: URL(base + path) for path in ("chat/completions", "embeddings")}
        self._headers = {"Content-Type": "application/json"}
        if secret:
            self._headers["Authorization"] = f"Bearer {secret}"
        self._limit = spec.max_connections
        # Whole calls are bounded by the dispatcher's deadline and every read of a stream by the
        # relay's idle deadline (the same ``timeout_s``): no per-read timer of aiohttp's, which
        # re-armed a loop timer on every piece of a stream, first chunk included.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(spec.timeout_s, 10.0))
        self._egress = egress
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = InFlight()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit=self._limit,
                    limit_per_host=self._limit,
                    resolver=GuardedResolver(self._egress) if self._egress else None,
                ),
                json_serialize=lambda o: orjson.dumps(o).decode(),
                skip_auto_headers=("User-Agent",),
                # Never keep an upstream's cookies: they would leak from one caller to the
                # next, and the jar costs a filter and an update on every call.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def _post(self, path: str, body: Json) -> Json:
        with self.in_flight:
            try:
                async with self._client().post(
                    self._urls[path],
                    data=orjson.dumps(body),
                    allow_redirects=False,
                ) as response:
                    if response.status != 200:
                        raise await _status_error(response)
                    return _json(await response.read())
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _transport_error(exc) from None

    async def chat(self, body: Json) -> Json:
        return await self._post("chat/completions", body)

    async def embeddings(self, body: Json) -> Json:
        return await self._post("embeddings", body)

    async def stream(self, body: Json) -> AsyncIterator[list[Json]]:
        with self.in_flight:
            try:
                response = await self._client().post(
                    self._urls["chat/completions"], data=orjson.dumps(body), allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _transport_error(exc) from None
            finished = False
            try:
                if response.status != 200:
                    raise await _status_error(response)
                pending = b""
                texted = False
                # Whatever has arrived, at once: the chunks that came together make one batch,
                # except that the batch ends at the first text until there has been some.
                async for data in response.content.iter_any():
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    while lines:
                        batch, done, failure, rest = _events(lines, until_text=not texted)
                        texted = texted or (bool(batch) and _carries_text(batch[-1]))
                        if batch:
                            yield batch
                        if failure is not None:
                            raise failure
                        if done:
                            finished = True
                            return
                        lines = rest
                batch, _, failure, _ = _events([pending])
                if batch:
                    yield batch
                if failure is not None:
                    raise failure
                finished = True
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _transport_error(exc) from None
            finally:
                if finished:
                    response.release()  # back to the pool
                else:
                    response.close()  # drop the connection: the upstream stops generating

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
