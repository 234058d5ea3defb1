"""OpenAI-compatible HTTP endpoints (`backend: openai`): the HF inference router, `vllm serve`, Ollama, llama.cpp's
server, `transformers serve`.

Through the `openai` client, whose own retry loop already does what an evaluation needs (exponential backoff with
jitter on 408/409/429/5xx and connection errors, honouring `Retry-After`/`retry-after-ms` up to two minutes); this
module sets how many retries and maps what is left to this project's errors:

- the server cannot be reached, refuses the key, or does not serve the model: `check_endpoint` says so in one
  line before any item runs (never 164 identical tracebacks);
- a request that still fails after its retries (the server died mid-run): `HarnessError`, so the sample is infra
  (outside every score) and `--agentbench-resume` finishes it later.

The API key is read from the environment variable named by `api_key_env` and never stored in the spec, the
report or a log line; `info()` reports the variable's name only.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from pydantic import ValidationError

from ..errors import AgentbenchError, HarnessError, first_line
from ..models import EndpointSpec, OpenAISettings
from .base import Backend, Completion, Request, peak_rss_mb


def settings_of(spec) -> OpenAISettings:
    if isinstance(spec.options, OpenAISettings):  # validated with its spec (models.EndpointSpec)
        return spec.options
    try:
        return OpenAISettings.model_validate(spec.options or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        raise AgentbenchError(f"model {spec.name!r}: options.{where}: {err['msg']}") from None


def api_key(spec) -> str:
    if not spec.api_key_env:
        return "EMPTY"  # local servers (vllm serve, llama.cpp, Ollama) take any key
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise AgentbenchError(f"model {spec.name!r} reads its API key from ${spec.api_key_env}, which is not set")
    return key


def _client(spec, settings: OpenAISettings, *, retries: int | None = None, timeout: float | None = None):
    try:
        import openai
    except ImportError:
        raise AgentbenchError(f"model {spec.name!r} needs the openai client: pip install openai") from None
    if not spec.base_url:
        raise AgentbenchError(f"model {spec.name!r}: an openai model needs 'base_url' (e.g. http://127.0.0.1:8000/v1)")
    return openai.OpenAI(
        base_url=spec.base_url,
        api_key=api_key(spec),
        max_retries=settings.max_retries if retries is None else retries,
        timeout=settings.timeout if timeout is None else timeout,
    )


def served_name(spec, settings: OpenAISettings) -> str:
    return settings.model or spec.hf_id or spec.name


def check_endpoint(spec) -> None:
    """One request before the run: a wrong URL, a refused connection, a refused key or a model the server does
    not list is one line here. A server without /models (some proxies) is given the benefit of the doubt."""
    import openai

    settings = settings_of(spec)
    client = _client(spec, settings, retries=1, timeout=min(settings.timeout, 15.0))
    name = served_name(spec, settings)
    try:
        listed = [m.id for m in client.models.list()]
    except openai.AuthenticationError as exc:
        raise AgentbenchError(
            f"model {spec.name!r}: {spec.base_url} refused the API key "
            f"(HTTP {exc.status_code}{' from $' + spec.api_key_env if spec.api_key_env else ''})"
        ) from None
    except openai.APIConnectionError as exc:
        raise AgentbenchError(
            f"model {spec.name!r}: cannot reach {spec.base_url}: {first_line(str(exc.__cause__ or exc))[:160]}"
        ) from None
    except openai.APIStatusError as exc:
        if exc.status_code in (404, 405, 501):
            return
        raise AgentbenchError(f"model {spec.name!r}: {spec.base_url}/models answered HTTP {exc.status_code}") from None
    finally:
        client.close()
    if listed and name not in listed:
        raise AgentbenchError(
            f"model {spec.name!r}: {spec.base_url} does not serve {name!r} "
            f"(it serves: {', '.join(listed[:8])}); set options.model"
        )


class OpenAIBackend(Backend):
    spec_class = EndpointSpec

    def __init__(self, spec):
        super().__init__(spec)
        self.settings = settings_of(spec)
        self.client = _client(spec, self.settings)
        self.model_name = served_name(spec, self.settings)
        self._slots = threading.BoundedSemaphore(self.settings.concurrency)
        self._stream_usage = True  # cleared when the server rejects stream_options

    preflight = staticmethod(check_endpoint)

    def cache_identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "kind": "openai",
            "base_url": self.spec.base_url,
            "model": self.model_name,
            "revision": self.spec.revision,
            "api": s.api,
            "top_p": s.top_p,
            "extra_body": s.extra_body,
        }

    def info(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "base_url": self.spec.base_url,
            "served_model": self.model_name,
            "api": self.settings.api,
            "stream": self.settings.stream,
            "api_key_env": self.spec.api_key_env,
        }

    def close(self) -> None:
        self.client.close()

    def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_name,
            "temperature": request.temperature,
            "max_tokens": request.max_new_tokens,
            "seed": request.seed,
        }
        if self.settings.top_p is not None:
            params["top_p"] = self.settings.top_p
        if request.stop and request.prefix is not None and self.settings.api == "completions":
            params["stop"] = list(request.stop)[:4]  # stops are for plain completion; the API takes at most four
        if self.settings.extra_body:
            params["extra_body"] = dict(self.settings.extra_body)
        return params

    def generate(self, request: Request) -> Completion:
        import openai

        plain = self.settings.api == "completions" and request.prefix is not None
        with self._slots:
            started = time.perf_counter()
            try:
                if plain:
                    text, usage, finish, first, timings = self._complete(request, started)
                else:
                    text, usage, finish, first, timings = self._chat(request, started)
            except openai.APIStatusError as exc:
                raise HarnessError(
                    f"{self.spec.base_url} answered HTTP {exc.status_code}: {first_line(str(exc.message))[:160]}"
                ) from None
            except openai.APIError as exc:  # connection lost, timeout, a reply that is not the API's
                raise HarnessError(f"{self.spec.base_url}: {first_line(str(exc.__cause__ or exc))[:160]}") from None
            seconds = time.perf_counter() - started
        if timings:  # the server's own compute time (llama-server): a request queued behind another's is not slower
            seconds = (float(timings.get("prompt_ms") or 0) + float(timings.get("predicted_ms") or 0)) / 1000.0
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        return Completion(
            text=text,
            continues_prompt=plain,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=seconds,
            ttft_s=first,
            finish_reason=finish or "",
        )

    # -- the two APIs, streamed or not -----------------------------------------------------------------
    def _chat(self, request: Request, started: float):
        params = self._params(request)
        messages = request.messages
        if not self.settings.stream:
            reply = self.client.chat.completions.create(messages=messages, **params)
            choice = reply.choices[0]
            return choice.message.content or "", reply.usage, choice.finish_reason, None, _timings(reply)
        stream = self._open(
            lambda **extra: self.client.chat.completions.create(messages=messages, stream=True, **params, **extra)
        )
        return self._drain(stream, started, lambda choice: getattr(choice.delta, "content", None))

    def _complete(self, request: Request, started: float):
        params = self._params(request)
        if not self.settings.stream:
            reply = self.client.completions.create(prompt=request.prefix, **params)
            choice = reply.choices[0]
            return choice.text or "", reply.usage, choice.finish_reason, None, _timings(reply)
        stream = self._open(
            lambda **extra: self.client.completions.create(prompt=request.prefix, stream=True, **params, **extra)
        )
        return self._drain(stream, started, lambda choice: choice.text)

    def _open(self, create):
        """Ask for usage in the stream's last chunk; a server that rejects the field is asked without it."""
        import openai

        if self._stream_usage:
            try:
                return create(stream_options={"include_usage": True})
            except openai.BadRequestError:
                self._stream_usage = False
        return create()

    @staticmethod
    def _drain(stream, started: float, piece_of):
        parts, usage, finish, first, timings = [], None, None, None, None
        for chunk in stream:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            timings = _timings(chunk) or timings
            for choice in chunk.choices or ():
                piece = piece_of(choice)
                if piece:
                    if first is None:
                        first = time.perf_counter() - started
                    parts.append(piece)
                if choice.finish_reason:
                    finish = choice.finish_reason
        return "".join(parts), usage, finish, first, timings


def _timings(reply) -> dict | None:
    """llama-server's `timings` (prompt_ms, predicted_ms) beside the OpenAI fields, when the server sends them."""
    found = (getattr(reply, "model_extra", None) or {}).get("timings")
    return found if isinstance(found, dict) else None


class ServedBackend(OpenAIBackend):
    """A model served for this run by serving.py (one server process for all xdist workers), reached through the
    openai client on loopback. Its identity is the engine and the weights, never the port or pid, so the
    generation cache and config_sha hold across runs."""

    def __init__(self, spec, served):
        self.served = served
        api = "chat" if getattr(spec, "chat_template", True) else "completions"
        options = OpenAISettings(
            model=served.served_name, api=api, top_p=TOP_P, timeout=900.0, concurrency=8, stream=served.stream
        )
        super().__init__(
            EndpointSpec(name=spec.name, description=spec.description, base_url=served.base_url, options=options)
        )

    @classmethod
    def preflight(cls, spec) -> None:
        pass

    def cache_identity(self) -> dict[str, Any]:
        return {**self.served.identity, "api": self.settings.api, "top_p": self.settings.top_p}

    def resolved(self) -> dict[str, Any]:
        return self.cache_identity()

    def resources(self) -> dict[str, Any]:
        # The server runs on this host: its process tree's high-water mark (GPU memory of a vllm serve is not seen
        # from here).
        return {
            "process": f"{self.served.engine} server",
            "peak_rss_mb": peak_rss_mb(self.served.pid, tree=True),
            "cuda_peak_mb": None,
        }

    def info(self) -> dict[str, Any]:
        s = self.served
        return {
            **super().info(),
            "served": {
                "engine": s.engine,
                "pid": s.pid,
                "base_url": s.base_url,
                "argv": s.argv,
                "log": s.log,
                "identity": s.identity,
            },
        }


TOP_P = 0.95  # the transformers backend's nucleus when sampling: the same on every path
