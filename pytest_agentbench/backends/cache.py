"""The generation cache (`--agentbench-cache DIR`): a model's reply, stored under the hash of everything that decides
it, so that a re-run with `-k`, `--lf` or another sandbox reuses generations exactly.

The key holds a schema version, the backend's identity (`Backend.cache_identity()`: kind, endpoint or weights with
an immutable revision, dtype, chat template hash, sampling settings of its own), the full messages or prompt, every
sampling parameter of the request, and the sample index (samples at temperature > 0 never collapse into one).
Transport settings (timeouts, concurrency, retries) are not in it. A backend without an identity (reference, replay:
they answer from data) is not cached.

Content-addressed files, written to a temporary name and renamed (atomic), so xdist workers that race on one key
each write a whole file and the last rename wins with the same content. Errors never reach the cache (an exception
is not a reply), nor does a stream that ended without a finish reason (incomplete), nor a native call the
engine could not read. A reply cut by the token limit is stored: it is the reply at that limit, and the
limit (`max_new_tokens`) is in the key. A request with native tools has them (and `tool_choice`) in its key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..results.storage import write_atomic
from .base import Backend, Completion, Request

CACHE_SCHEMA = "pytest-agentbench/generation-cache/v1"
STORED = ("text", "continues_prompt", "prompt_tokens", "completion_tokens", "finish_reason", "tool_calls")


def request_key(identity: dict[str, Any], request: Request) -> str:
    what = {
        "schema": CACHE_SCHEMA,
        "backend": identity,
        "messages": request.messages,
        "prefix": request.prefix,
        "stop": list(request.stop),
        "temperature": request.temperature,
        "max_new_tokens": request.max_new_tokens,
        "seed": request.seed,
        "sample": request.sample.index,
    }
    if request.tools:  # native function calling (only then: the keys of text requests stay what they were)
        what["tools"], what["tool_choice"] = list(request.tools), request.tool_choice
    if request.end_after:  # only when set: keys of requests without it stay those of earlier runs
        what["end_after"] = request.end_after
    return hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class CachedBackend(Backend):
    """Wraps a loaded backend; counts hits and misses (the worker puts them in each sample's record)."""

    def __init__(self, inner: Backend, folder: Path, identity: dict[str, Any]):
        super().__init__(inner.spec)
        self.inner, self.folder, self.identity = inner, Path(folder), identity
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def generate(self, request: Request) -> Completion:
        key = request_key(self.identity, request)
        path = self._path(key)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if isinstance(stored, dict) and stored.get("schema") == CACHE_SCHEMA and isinstance(stored.get("text"), str):
            self.hits += 1
            return Completion(**{k: stored[k] for k in STORED if k in stored}, seconds=0.0, cached=True)
        completion = self.inner.generate(request)
        self.misses += 1
        if completion.finish_reason and completion.protocol_error is None:  # "": a stream cut off
            self._store(path, completion)
        return completion

    def _store(self, path: Path, completion: Completion) -> None:
        data = {"schema": CACHE_SCHEMA, **{k: getattr(completion, k) for k in STORED}}
        try:
            write_atomic(path, json.dumps(data, ensure_ascii=False))
        except OSError:
            pass  # a cache that cannot be written costs the next run time, never this run its result

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "generation_cache": str(self.folder)}

    def resources(self) -> dict[str, Any] | None:
        return self.inner.resources()

    def close(self) -> None:
        self.inner.close()


def wrap(backend: Backend, folder: str | None) -> Backend:
    if not folder:
        return backend
    identity = backend.cache_identity()
    return backend if identity is None else CachedBackend(backend, Path(folder), identity)


def counts(backend: Backend) -> tuple[int, int] | None:
    return (backend.hits, backend.misses) if isinstance(backend, CachedBackend) else None


__all__ = ["CACHE_SCHEMA", "CachedBackend", "counts", "request_key", "wrap"]
