"""OpenAI-compatible HTTP endpoints (`backend: openai`): the HF inference router, `vllm serve`, Ollama, llama.cpp's
server, `transformers serve`.

Through the `openai` client, whose own retry loop already does what an evaluation needs (exponential backoff with
jitter on 408/409/429/5xx and connection errors, honouring `Retry-After`/`retry-after-ms` up to two minutes); this
module sets how many retries and maps what is left to this project's errors:

- the server cannot be reached, refuses the key, or does not serve the model: `check_endpoint` says so in one
  line before any item runs (never 164 identical tracebacks);
- a request that still fails after its retries (the server died mid-run): `HarnessError`, so the sample is infra
  (outside every score) and `--agentbench-resume` finishes it later;
- native function calling (`Request.tools`, docs/function-calling.md): the tools go out as `tools`/`tool_choice`,
  the calls come back from `message.tool_calls` (or the stream's `delta.tool_calls`). A call the server cannot
  parse is llama-server's HTTP 500 "... does not match the expected ... format" (or the same error mid-stream):
  the model's reply, so a `Completion.protocol_error`, and never retried (the client would retry any 5xx).

Several `base_url`s make a pool (backends/pool.py): each attempt goes to the endpoint with the fewest requests in
flight, a failing endpoint is taken out for a while and the client's retries move the request to another one; the
preflight checks every endpoint (a dead one is a warning while another one answers).

The API key is read from the environment variable named by `api_key_env` and never stored in the spec, the
report or a log line; `info()` reports the variable's name only.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import AgentbenchError, AgentbenchWarning, HarnessError, first_line
from ..models import EndpointSpec, OpenAISettings
from .base import Backend, Completion, Request, peak_rss_mb, reply_end
from .pool import PREFIX, EndpointPool


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


#: what llama-server answers (HTTP 500, or an error event mid-stream) when the model's native call does not parse
MALFORMED_CALL = "does not match the expected"


def _malformed_not_retried(response) -> None:
    """httpx response hook: a 5xx that says the model's native call is malformed is marked `x-should-retry: false`
    (the openai client obeys it), so the reply is read once as the protocol error it is; other 5xx retry as before."""
    if response.status_code >= 500:
        response.read()  # an error body: short
        if MALFORMED_CALL in response.text:
            response.headers["x-should-retry"] = "false"


def base_urls(spec) -> list[str]:
    """The spec's endpoints: one `base_url`, or a pool's list."""
    urls = spec.base_url if isinstance(spec.base_url, (list, tuple)) else [spec.base_url] if spec.base_url else []
    if not urls:
        raise AgentbenchError(f"model {spec.name!r}: an openai model needs 'base_url' (e.g. http://127.0.0.1:8000/v1)")
    return list(urls)


def _client(
    spec,
    settings: OpenAISettings,
    *,
    retries: int | None = None,
    timeout: float | None = None,
    url: str | None = None,
    pool: EndpointPool | None = None,
):
    """A client of one endpoint (`url`, default the spec's only one), or of a pool through its transport."""
    try:
        import openai
    except ImportError:
        raise AgentbenchError(f"model {spec.name!r} needs the openai client: pip install openai") from None
    urls = base_urls(spec)
    extra: dict[str, Any] = {}
    if pool is not None:
        extra = {"transport": pool.client_transport()}
        retries = (settings.max_retries if retries is None else retries) + len(pool.endpoints) - 1
    return openai.OpenAI(
        base_url=PREFIX if pool is not None else url or urls[0],
        api_key=api_key(spec),
        max_retries=settings.max_retries if retries is None else retries,
        timeout=settings.timeout if timeout is None else timeout,
        http_client=openai.DefaultHttpxClient(event_hooks={"response": [_malformed_not_retried]}, **extra),
    )


def served_name(spec, settings: OpenAISettings) -> str:
    return settings.model or spec.hf_id or spec.name


def check_endpoint(spec) -> None:
    """One request before the run: a wrong URL, a refused connection, a refused key or a model the server does
    not list is one line here. A server without /models (some proxies) is given the benefit of the doubt. Of a pool
    every endpoint is asked: one that cannot be reached is a warning while another one answers (the run goes on
    without it; the pool tries it again later); a refused key or a model not served is an error on any of them."""
    urls = base_urls(spec)
    dead = []
    for url in urls:
        try:
            _check_one(spec, url)
        except _Unreachable as exc:
            if len(urls) == 1:
                raise AgentbenchError(str(exc)) from None
            dead.append(str(exc))
    if dead and len(dead) == len(urls):
        raise AgentbenchError(f"model {spec.name!r}: none of its {len(urls)} endpoints answers; {dead[0]}")
    for line in dead:
        warnings.warn(AgentbenchWarning(f"{line}; the run goes on with the other endpoints"), stacklevel=2)


class _Unreachable(Exception):
    pass


def _check_one(spec, url: str) -> None:
    import openai

    settings = settings_of(spec)
    client = _client(spec, settings, retries=1, timeout=min(settings.timeout, 15.0), url=url)
    name = served_name(spec, settings)
    try:
        listed = [m.id for m in client.models.list()]
    except openai.AuthenticationError as exc:
        raise AgentbenchError(
            f"model {spec.name!r}: {url} refused the API key "
            f"(HTTP {exc.status_code}{' from $' + spec.api_key_env if spec.api_key_env else ''})"
        ) from None
    except openai.APIConnectionError as exc:
        raise _Unreachable(
            f"model {spec.name!r}: cannot reach {url}: {first_line(str(exc.__cause__ or exc))[:160]}"
        ) from None
    except openai.APIStatusError as exc:
        if exc.status_code in (404, 405, 501):
            return
        if exc.status_code >= 500:
            raise _Unreachable(f"model {spec.name!r}: {url}/models answered HTTP {exc.status_code}") from None
        raise AgentbenchError(f"model {spec.name!r}: {url}/models answered HTTP {exc.status_code}") from None
    finally:
        client.close()
    if listed and name not in listed:
        raise AgentbenchError(
            f"model {spec.name!r}: {url} does not serve {name!r} (it serves: {', '.join(listed[:8])}); set options.model"
        )


class OpenAIBackend(Backend):
    spec_class = EndpointSpec
    spec: EndpointSpec

    def __init__(self, spec):
        super().__init__(spec)
        self.settings = settings_of(spec)
        urls = base_urls(spec)
        self.where = urls[0] if len(urls) == 1 else f"the pool of {len(urls)} endpoints"
        self.pool = EndpointPool(urls, self.settings.backoff, spec.name) if len(urls) > 1 else None
        self.client = _client(spec, self.settings, pool=self.pool)
        self.model_name = served_name(spec, self.settings)
        self._slots = threading.BoundedSemaphore(self.settings.concurrency)
        self._stream_usage = True  # cleared when the server rejects stream_options
        # llama-server: ask for `timings` in every chunk, so a stream closed once the reply is complete (end_after)
        # still has the server's token counts; without them a stream is read to its end
        self.per_token_timings = False

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
        extra = dict(self.settings.extra_body)
        if request.end_after and self.per_token_timings:
            extra["timings_per_token"] = True  # a stream we close early still has the server's counts and times
        if extra:
            params["extra_body"] = extra
        if request.tools:
            params["tools"] = list(request.tools)
            params["tool_choice"] = request.tool_choice  # the string forms only: llama-server ignores the object form
        return params

    def generate(self, request: Request) -> Completion:
        import openai

        plain = self.settings.api == "completions" and request.prefix is not None
        calls: list[dict[str, Any]] = []
        with self._slots:
            started = time.perf_counter()
            try:
                if plain:
                    (text, finish), usage, first, timings = self._complete(request, started)
                else:
                    (text, finish), usage, first, timings, calls = self._chat(request, started)
            except openai.APIError as exc:
                malformed = _malformed(request, exc)
                if malformed is None:
                    raise self._harness_error(exc) from None
                return Completion(text="", protocol_error=malformed, seconds=time.perf_counter() - started)
            seconds = time.perf_counter() - started
            endpoint = None
            if self.pool is not None:  # the reply was read whole by the pool: first token = its first chunk's arrival
                endpoint, first_chunk = self.pool.answered()
                if first is not None and first_chunk is not None:
                    first = first_chunk - started
        if timings:  # the server's own compute time (llama-server): a request queued behind another's is not slower
            seconds = (float(timings.get("prompt_ms") or 0) + float(timings.get("predicted_ms") or 0)) / 1000.0
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        if usage is None and timings:  # a stream closed early: the server's counts so far
            prompt_tokens = int(timings.get("prompt_n") or 0)
            completion_tokens = int(timings.get("predicted_n") or 0)
        return Completion(
            text=text,
            continues_prompt=plain,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=seconds,
            ttft_s=first,
            finish_reason=finish or "",
            tool_calls=calls,
            endpoint=endpoint,
        )

    def _harness_error(self, exc) -> HarnessError:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return HarnessError(f"{self.where} answered HTTP {exc.status_code}: {first_line(str(exc.message))[:160]}")
        # connection lost, timeout, a reply that is not the API's
        return HarnessError(f"{self.where}: {first_line(str(exc.__cause__ or exc))[:160]}")

    # -- the two APIs, streamed or not -----------------------------------------------------------------
    def _chat(self, request: Request, started: float):
        params = self._params(request)
        messages = request.messages
        if not self.settings.stream:  # the whole reply is generated; with end_after it is cut where a stream stops
            reply = self.client.chat.completions.create(messages=messages, **params)
            choice = reply.choices[0]
            text, finish = choice.message.content or "", choice.finish_reason
            calls = [
                {"name": c.function.name, "arguments": c.function.arguments or ""}
                for c in choice.message.tool_calls or ()
                if getattr(c, "function", None) is not None
            ]
            end = reply_end(request, text)
            return (text, finish) if end is None else (text[:end], "stop"), reply.usage, None, _timings(reply), calls
        stream = self._open(
            lambda **extra: self.client.chat.completions.create(messages=messages, stream=True, **params, **extra)
        )
        calls_by_index: dict[int, dict[str, Any]] = {}
        add_calls = _call_deltas(calls_by_index)

        def gathered() -> list[dict[str, Any]]:
            return [calls_by_index[i] for i in sorted(calls_by_index)]

        if self.per_token_timings:  # the server counts every token as it goes: the stream may close mid-reply
            ends = (lambda text: reply_end(request, text)) if request.end_after else None
            drained = self._drain(
                stream, started, lambda choice: getattr(choice.delta, "content", None), ends, add_calls
            )
            return (*drained, gathered())
        # Any other endpoint reports its counts (usage) only at the end of the stream: it is read whole, so prompt
        # and completion tokens stay the server's own, and the reply is cut where a closed stream would have ended.
        (text, finish), usage, first, timings = self._drain(
            stream, started, lambda choice: getattr(choice.delta, "content", None), None, add_calls
        )
        end = reply_end(request, text)
        return (text, finish) if end is None else (text[:end], "stop"), usage, first, timings, gathered()

    def _complete(self, request: Request, started: float):
        params = self._params(request)
        if not self.settings.stream:
            reply = self.client.completions.create(prompt=request.prefix, **params)
            choice = reply.choices[0]
            return (choice.text or "", choice.finish_reason), reply.usage, None, _timings(reply)
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
    def _drain(stream, started: float, piece_of, end_of=None, calls_of=None):
        """Read a stream to its end, or with `end_of` (text -> where the reply may stop, or None) until the reply is
        complete: the stream is then closed, which makes llama-server and vLLM stop generating, and the reply is the
        text up to that point, finished as "stop". A closed stream carries no usage: its counts are then the server's
        per-token `timings` (llama-server) or, failing those, one completion token per streamed piece. `calls_of`
        gathers native calls (their first delta is the first token)."""
        text, pieces, usage, finish, first, timings = "", 0, None, None, None, None
        for chunk in stream:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            timings = _timings(chunk) or timings
            fence = False
            for choice in chunk.choices or ():
                piece = piece_of(choice)
                called = calls_of(choice) if calls_of is not None else False
                if piece or called:
                    if first is None:
                        first = time.perf_counter() - started
                    if piece:
                        text += piece
                        pieces += 1
                        fence = fence or "`" in piece  # only a backtick can close a fence
                if choice.finish_reason:
                    finish = choice.finish_reason
            if fence and end_of is not None and finish is None:
                end = end_of(text)
                if end is not None:
                    stream.close()
                    if usage is None and not timings:
                        usage = _Usage(0, pieces)
                    return (text[:end], "stop"), usage, first, timings
        return (text, finish), usage, first, timings


@dataclass
class _Usage:
    prompt_tokens: int
    completion_tokens: int


def _call_deltas(calls: dict[int, dict[str, Any]]):
    """A stream reader's step for native calls: `delta.tool_calls` pieces gathered by index (name from the first
    piece that has one, arguments concatenated); True when the chunk held any."""

    def add(choice) -> bool:
        deltas = getattr(choice.delta, "tool_calls", None) or ()
        for delta in deltas:
            call = calls.setdefault(getattr(delta, "index", 0) or 0, {"name": "", "arguments": ""})
            fn = getattr(delta, "function", None)
            if fn is not None:
                call["name"] = call["name"] or (fn.name or "")
                call["arguments"] += fn.arguments or ""
        return bool(deltas)

    return add


def _malformed(request: Request, exc) -> str | None:
    """The server's words when `exc` says the model's native call did not parse (a request with tools only)."""
    message = first_line(str(getattr(exc, "message", None) or exc))
    if request.tools and MALFORMED_CALL in message:
        return message[:300]
    return None


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
            EndpointSpec(
                name=spec.name,
                description=spec.description,
                base_url=[r["base_url"] for r in served.replicas] or served.base_url,
                options=options,
            )
        )
        self.per_token_timings = served.engine == "llamacpp"

    @classmethod
    def preflight(cls, spec) -> None:
        pass

    def generate(self, request: Request) -> Completion:
        if request.tools and not getattr(self, "_tools_checked", False):
            self._check_tools()
        return super().generate(request)

    def _check_tools(self) -> None:
        """llama-server drops `tools` without a word when the model's chat template does not use them (its
        /props says so): a native run on such a template would measure nothing. One line instead."""
        if self.served.engine == "llamacpp":
            import json
            import urllib.request

            url = self.served.base_url.removesuffix("/v1") + "/props"
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    caps = json.loads(resp.read()).get("chat_template_caps") or {}
            except (OSError, ValueError):
                caps = {"supports_tools": True}  # cannot tell: the replies will
            if not caps.get("supports_tools", False):
                raise AgentbenchError(
                    f"model {self.spec.name!r}: its chat template does not describe tools, and llama-server ignores "
                    "them; set tool_template in models.yaml (docs/function-calling.md)"
                )
        if self.served.engine == "vllm" and not self.served.identity.get("tool_call_parser"):
            raise AgentbenchError(
                f"model {self.spec.name!r}: vllm serve reads native calls only with a tool parser; set "
                "options.tool_call_parser in models.yaml (e.g. hermes; docs/function-calling.md)"
            )
        self._tools_checked = True

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
