"""vLLM's offline engine (`backend: vllm`), falling back to the transformers backend when vllm is not importable or
no CUDA device is visible (one warning line at the start of the run; the report's `run.serving` and each
sample's config_sha record the fallback). With `serve: vllm` the controller starts `vllm serve` instead
(serving.py) and workers talk to it over HTTP.

Written against vLLM's documented API (`vllm.LLM`, `LLM.chat`, `LLM.generate`, `SamplingParams`). NOT EXECUTED in
this project's CI or on its development machines (CPU only, vllm not installable): only the fallback and the
command line of `vllm serve` are tested.

Native function calling (`Request.tools`): `LLM.chat(..., tools=, chat_template=)` renders them (with the model's
tool_template when it names one) and the reply is read with transformers' parser, as on the transformers backend
(native.read_calls); with `serve: vllm`, vllm serve's own tool parser (`options.tool_call_parser`) reads them.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from typing import Any

from ..errors import HarnessError, first_line
from ..models import WeightsSpec
from .base import IN_PROCESS, Backend, Completion, Request, in_process_resources, reply_end
from .transformers import _tool_template_identity, check_weights

ENGINE_ARGS = ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "quantization", "enforce_eager")


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why vLLM cannot run here, or None."""
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install 'pytest-agentbench[vllm]': Linux with a CUDA GPU)"
    try:
        import torch
    except ImportError:
        return "torch is not importable"
    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


class VLLMBackend(Backend):
    adapter: dict[str, Any] | None = None
    lora_request: Any = None  # vllm.lora.request.LoRARequest for a model with an adapter

    spec_class = WeightsSpec
    spec: WeightsSpec
    fallback = "transformers"
    unavailable = staticmethod(unavailable)
    preflight = staticmethod(check_weights)  # the same weights, whether vLLM or its transformers fallback loads them

    @classmethod
    def create(cls, spec) -> Backend:
        why = unavailable()
        if why is None:
            return cls(spec)
        from .transformers import TransformersBackend

        backend = TransformersBackend(spec)
        backend.fallback_from = {"from": "vllm", "reason": why}
        return backend

    def __init__(self, spec):
        super().__init__(spec)
        from vllm import LLM

        source = spec.path or spec.hf_id
        kwargs: dict[str, Any] = {
            "model": source,
            "dtype": spec.dtype,
            "seed": 0,
            "trust_remote_code": spec.trust_remote_code,
        }
        if spec.revision:
            kwargs["revision"] = spec.revision
        if spec.load_in_4bit or spec.load_in_8bit:
            kwargs["quantization"] = "bitsandbytes"
        kwargs.update({k: v for k, v in spec.options.model_dump(exclude_none=True).items() if k in ENGINE_ARGS})
        # vLLM's LoRA support (docs: "LoRA Adapters"): enable_lora on the engine, a LoRARequest with each call
        if spec.adapter:
            from vllm.lora.request import LoRARequest

            from ..adapters import identity, vllm_max_lora_rank

            self.adapter = identity(spec.adapter)
            kwargs.update(enable_lora=True, max_lora_rank=vllm_max_lora_rank(self.adapter), max_loras=1)
            self.lora_request = LoRARequest(spec.name, 1, spec.adapter)
        started = time.perf_counter()
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:  # vLLM's own errors (CUDA out of memory, unknown architecture)
            raise HarnessError(f"vllm cannot load {source}: {first_line(str(exc))[:200]}") from exc
        self.load_seconds = time.perf_counter() - started
        IN_PROCESS.add(spec.name)
        import vllm

        self.version = vllm.__version__

    def _lora(self) -> dict[str, Any]:
        """The adapter's LoRARequest for generate/chat, when the model has one."""
        return {"lora_request": self.lora_request} if self.lora_request is not None else {}

    def _sampling(self, request: Request, max_tokens: int | None = None, stop: list[str] | None = None):
        from vllm import SamplingParams

        greedy = request.temperature <= 0
        return SamplingParams(
            temperature=0.0 if greedy else request.temperature,
            top_p=1.0 if greedy else 0.95,
            max_tokens=max_tokens or request.max_new_tokens,
            seed=request.seed,
            stop=stop or list(request.stop) or None,
        )

    def generate(self, request: Request) -> Completion:
        plain = request.prefix is not None and not self.spec.chat_template
        started = time.perf_counter()
        try:
            if plain:
                outputs = self.llm.generate([request.prefix], self._sampling(request), use_tqdm=False, **self._lora())
            elif request.tools:  # native function calling: LLM.chat renders the tools; the calls are parsed below
                from .native import tool_template

                outputs = self.llm.chat(
                    request.messages,
                    self._sampling(request),
                    use_tqdm=False,
                    tools=list(request.tools),
                    chat_template=tool_template(self.spec),
                    **self._lora(),
                )
            elif request.end_after:
                return self._chat_until_complete(request, started)
            else:
                outputs = self.llm.chat(request.messages, self._sampling(request), use_tqdm=False, **self._lora())
        except HarnessError:
            raise
        except Exception as exc:
            raise HarnessError(f"vllm generation failed: {first_line(str(exc))[:200]}") from exc
        seconds = time.perf_counter() - started
        out = outputs[0]
        choice = out.outputs[0]
        text, malformed = choice.text, None
        calls: list[dict[str, Any]] = []
        if request.tools:
            from .native import read_calls

            text, calls, malformed = read_calls(self.llm.get_tokenizer(), text, out.prompt or "", list(request.tools))
        return Completion(
            tool_calls=calls,
            protocol_error=malformed,
            text=text,
            continues_prompt=plain,
            prompt_tokens=len(out.prompt_token_ids or ()),
            completion_tokens=len(choice.token_ids),
            seconds=seconds,
            finish_reason=choice.finish_reason or "",
        )

    def _chat_until_complete(self, request: Request, started: float) -> Completion:
        """A chat reply that ends once complete (`Request.end_after`: the first closed code block), through vLLM's
        documented stop strings: the engine stops at every fence (` ``` `); while the reply is not complete, the
        generation goes on from the exact tokens so far (`LLM.generate` on `prompt_token_ids`, whose shared prefix
        vLLM's prefix cache does not recompute). The reply is the tokens decoded once by the engine's tokenizer and cut
        where the rule says: a stop string may end inside a token (` ```python `), the tokens do not."""
        tokenizer = self.llm.get_tokenizer()
        budget = request.max_new_tokens
        out = self.llm.chat(request.messages, self._sampling(request, stop=["```"]), use_tqdm=False, **self._lora())[0]
        prompt_ids, ids = list(out.prompt_token_ids), list(out.outputs[0].token_ids)
        choice = out.outputs[0]
        while True:
            text = tokenizer.decode(ids, skip_special_tokens=True)
            end = reply_end(request, text)
            if end is not None:
                text, finish = text[:end], "stop"
                break
            if choice.finish_reason != "stop" or choice.stop_reason != "```" or len(ids) >= budget:
                finish = "length" if len(ids) >= budget else (choice.finish_reason or "")
                break
            more = self.llm.generate(
                [{"prompt_token_ids": prompt_ids + ids}],
                self._sampling(request, max_tokens=budget - len(ids), stop=["```"]),
                use_tqdm=False,
                **self._lora(),
            )[0]
            choice = more.outputs[0]
            ids += list(choice.token_ids)
        return Completion(
            text=text,
            continues_prompt=False,
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(ids),
            seconds=time.perf_counter() - started,
            finish_reason=finish,
        )

    def resources(self) -> dict[str, Any]:
        # vLLM's engine core may run in a process of its own and preallocates its KV cache: the device's memory in
        # use (all processes) is the honest figure, not this process's torch allocations.
        import torch

        free, total = torch.cuda.mem_get_info()
        return {
            **in_process_resources(model=self.spec.name),
            "cuda_peak_mb": None,
            "cuda_used_mb": round((total - free) / 2**20, 1),
        }

    def cache_identity(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "kind": "vllm",
            "vllm": self.version,
            "weights": spec.path or spec.hf_id,
            "revision": spec.revision,
            "dtype": spec.dtype,
            "quantization": "bitsandbytes" if spec.load_in_4bit or spec.load_in_8bit else spec.options.quantization,
            "top_p": 0.95,
            **({"adapter": self.adapter} if self.adapter else {}),
            **_tool_template_identity(spec),
        }

    def info(self) -> dict[str, Any]:
        return {
            "backend": "vllm",
            "vllm": self.version,
            "load_seconds": round(self.load_seconds, 2),
            **({"adapter": {"path": self.spec.adapter, **self.adapter}} if self.adapter else {}),
            "engine_args": {
                k: v for k, v in self.spec.options.model_dump(exclude_none=True).items() if k in ENGINE_ARGS
            },
        }
