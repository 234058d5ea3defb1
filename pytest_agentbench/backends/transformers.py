"""Hugging Face transformers backend: hub ids, local folders, GGUF files, CPU or GPU, 4/8-bit via bitsandbytes.

GGUF weights are dequantized by transformers on every load (about 15 s for 135M on 2 cores); the
dequantized model is cached once under ~/.cache/pytest-agentbench so later loads take about a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError, HarnessError, first_line
from ..models import WeightsSpec
from ..provenance import sha256_file
from ..steps import step
from ..weights import gguf_cache_dir, locate
from .base import IN_PROCESS, Backend, Completion, Request, in_process_resources, omp_env, reply_end

log = logging.getLogger(__name__)


def check_weights(spec) -> None:
    """Before any item: weights that cannot load here are one line (a missing file or folder, or a hub id that is not
    in the local Hugging Face cache while the hub cannot be reached), not the same failure in every item."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise AgentbenchError(
            f"model {spec.name!r} runs in-process with transformers, and {' and '.join(missing)} "
            "is not installed here: pip install 'pytest-agentbench[hf]' (torch first), or serve the model"
        )
    source, local = locate(spec)
    if spec.path and not local:
        raise AgentbenchError(f"model {spec.name!r}: path not found: {spec.path}")
    if local:
        if spec.gguf_file and not (Path(source).expanduser() / spec.gguf_file).is_file():
            raise AgentbenchError(f"model {spec.name!r}: GGUF file not found: {Path(source) / spec.gguf_file}")
        return
    from huggingface_hub import try_to_load_from_cache

    from ..provenance import hub_reachable

    wanted = spec.gguf_file or "config.json"
    cached = try_to_load_from_cache(source, wanted, revision=spec.revision)
    dequantized = spec.gguf_file and (gguf_cache_dir(source, spec.gguf_file) / "config.json").is_file()
    if not isinstance(cached, str) and not dequantized and not hub_reachable():
        raise AgentbenchError(
            f"model {spec.name!r}: {source} is not in the local Hugging Face cache and the hub "
            "cannot be reached (offline): download it once with network access, or give a local "
            "path"
        )


class TransformersBackend(Backend):
    spec_class = WeightsSpec
    spec: WeightsSpec
    fallback_from: dict[str, str] | None = None  # set when this runs in place of another backend (vllm)
    preflight = staticmethod(check_weights)

    def __init__(self, spec):
        super().__init__(spec)
        # Read by torch's OpenMP when torch loads (here, unless something imported it before): a short spin at
        # barriers, then sleep, so a shared machine's descheduled threads are not waited for by spinning ones.
        os.environ.update(omp_env())
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # per-item captured output stays readable
        _set_threads(torch)
        source, local = locate(spec)
        self._source, self._local = source, local
        self.device = _device(torch, spec.device)
        kwargs: dict[str, Any] = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
        if local:
            kwargs["local_files_only"] = True
        started = time.perf_counter()
        try:
            # The GGUF conversion draws a tqdm bar on stderr (transformers' own switch does not reach it): kept out
            # of the first test's captured output.
            with contextlib.redirect_stderr(io.StringIO()):
                self.tokenizer, self.model = self._load(torch, source, kwargs)
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            hint = " (offline? set HF_HUB_OFFLINE=0 or give a local path)" if not local else ""
            raise HarnessError(
                f"cannot load model {spec.name!r} from {source}: {first_line(str(exc))[:200]}{hint}"
            ) from exc
        self.adapter: dict[str, Any] | None = None
        if spec.adapter:  # after the (cached, adapter-free) base is loaded: a mismatch is one line, the model dropped
            from ..adapters import apply_peft, identity

            self.adapter = identity(spec.adapter)
            with step(f"applying the adapter of {spec.name} with peft"):
                self.model = apply_peft(spec, self.model, merge=not (spec.load_in_4bit or spec.load_in_8bit))
        self.load_seconds = time.perf_counter() - started
        IN_PROCESS.add(spec.name)
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.use_chat = bool(spec.chat_template and getattr(self.tokenizer, "chat_template", None))
        self._torch = torch

    # -- loading -------------------------------------------------------------------------------
    def _load(self, torch, source: str, kwargs: dict[str, Any]):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        spec = self.spec
        model_kwargs = dict(kwargs, dtype=_dtype(torch, spec.dtype, self.device))
        if spec.load_in_4bit or spec.load_in_8bit:
            model_kwargs["quantization_config"] = _bnb_config(torch, spec)
            model_kwargs["device_map"] = "auto"
        if spec.gguf_file:
            cached = gguf_cache_dir(source, spec.gguf_file)
            if (cached / "config.json").is_file():
                source, kwargs = str(cached), {"local_files_only": True}
                model_kwargs = dict(model_kwargs, local_files_only=True)
                model_kwargs.pop("revision", None)
                model_kwargs.pop("trust_remote_code", None)
            else:
                with step(f"dequantizing the GGUF of {spec.name} for transformers (once: then cached in {cached})"):
                    tok = AutoTokenizer.from_pretrained(source, gguf_file=spec.gguf_file, **kwargs)
                    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=spec.gguf_file, **model_kwargs)
                    _save_dequantized(tok, model, cached)
                return tok, model.to(self.device)
        with step(f"loading {spec.name} with transformers"):
            tok = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
        if "device_map" not in model_kwargs:
            model = model.to(self.device)
        return tok, model

    def cache_identity(self) -> dict[str, Any]:
        import transformers

        spec = self.spec
        return {
            "kind": "transformers",
            "transformers": transformers.__version__,
            "weights": spec.hf_id or spec.package or spec.path,
            "revision": _revision(spec, self._source, self._local),
            "dtype": str(self.model.dtype),
            "device": self.device.type,
            "chat": self.use_chat,
            "chat_template_sha256": self._template_sha256(),
            "top_p": 0.95,
            "quantization": "4bit" if spec.load_in_4bit else "8bit" if spec.load_in_8bit else None,
            **({"adapter": self.adapter} if self.adapter else {}),
            **_tool_template_identity(spec),
        }

    def _tools_template(self) -> str | None:
        """The template that renders tools: the model's tool_template, else its own when that one reads them."""
        from .native import renders_tools, tool_template

        template = tool_template(self.spec)
        if template is None and not renders_tools(getattr(self.tokenizer, "chat_template", None)):
            raise AgentbenchError(
                f"model {self.spec.name!r}: its chat template does not describe tools (native function calling); "
                "set tool_template in models.yaml (docs/function-calling.md)"
            )
        return template

    def _template_sha256(self) -> str | None:
        template = getattr(self.tokenizer, "chat_template", None) or ""
        return hashlib.sha256(template.encode()).hexdigest() if template else None

    def info(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model_class": type(self.model).__name__,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "dtype": str(self.model.dtype).replace("torch.", ""),
            "device": str(self.device),
            "chat_template": self.use_chat,
            "chat_template_sha256": self._template_sha256(),
            **_tool_template_identity(self.spec),
            "load_seconds": round(self.load_seconds, 2),
            "torch_threads": self._torch.get_num_threads(),
            **({"adapter": {"path": self.spec.adapter, **self.adapter}} if self.adapter else {}),
            **({"fallback_from": self.fallback_from} if self.fallback_from else {}),
        }

    def resources(self) -> dict[str, Any]:
        return in_process_resources(self.device, self.spec.name)

    # -- generation ----------------------------------------------------------------------------
    def generate(self, request: Request) -> Completion:
        torch = self._torch
        tok = self.tokenizer
        native = bool(request.tools)
        if native:  # native function calling: the tools rendered by the (tool) template, the calls parsed back
            template = self._tools_template()
            enc = tok.apply_chat_template(
                request.messages,
                tools=list(request.tools),
                chat_template=template,
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            continues, stop = False, None
        elif self.use_chat or request.prefix is None:
            if self.use_chat:
                enc = tok.apply_chat_template(
                    request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
            else:  # no template: flatten the conversation into plain text
                text = "\n\n".join(m["content"] for m in request.messages) + "\n"
                enc = tok(text, return_tensors="pt")
            continues = False
            stop = None
        else:
            enc = tok(request.prefix, return_tensors="pt")
            continues = True
            stop = list(request.stop) or None
        enc = {k: v.to(self.device) for k, v in enc.items()}
        gen: dict[str, Any] = {"max_new_tokens": request.max_new_tokens, "pad_token_id": tok.pad_token_id}
        if request.temperature > 0:
            torch.manual_seed(request.seed)
            gen.update(do_sample=True, temperature=request.temperature, top_p=0.95)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            gen.update(stop_strings=stop, tokenizer=tok)
        elif request.end_after:
            gen["stopping_criteria"] = _reply_complete(request, tok, enc["input_ids"].shape[1])
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.model.generate(**enc, **gen)
        except (RuntimeError, ValueError) as exc:
            raise HarnessError(f"generation failed: {first_line(str(exc))[:200]}") from exc
        seconds = time.perf_counter() - started
        prompt_len = enc["input_ids"].shape[1]
        new = out[0][prompt_len:]
        text = tok.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= request.max_new_tokens else "stop"
        if stop:
            text = _cut_at_stop(text, stop)
        elif request.end_after and (end := reply_end(request, text)) is not None:
            text, finish = text[:end], "stop"  # the reply is complete (possibly on the last token the limit allowed)
        n_new = int((new != tok.pad_token_id).sum()) if tok.pad_token_id is not None else len(new)
        calls: list[dict[str, Any]] = []
        malformed = None
        if native:
            from .native import read_calls

            prompt = tok.decode(enc["input_ids"][0], skip_special_tokens=False)
            text, calls, malformed = read_calls(tok, text, prompt, list(request.tools))
        return Completion(
            tool_calls=calls,
            protocol_error=malformed,
            text=text,
            continues_prompt=continues,
            prompt_tokens=int(prompt_len),
            completion_tokens=max(n_new, 1 if len(new) else 0),
            seconds=seconds,
            finish_reason=finish,
        )


def _tool_template_identity(spec) -> dict[str, Any]:
    from .native import tool_template_sha256

    sha = tool_template_sha256(spec)
    return {"tool_template_sha256": sha} if sha else {}


def _revision(spec, source: str, local: bool) -> str | None:
    """An immutable name for the weights: the GGUF file's sha256, a hub commit when one was pinned, else the local
    folder's config and weight files' sizes and mtimes (a changed file is a new revision)."""
    folder = Path(source)
    if spec.gguf_file and (folder / spec.gguf_file).is_file():
        return "sha256:" + sha256_file(folder / spec.gguf_file)
    if spec.revision:
        return spec.revision
    if local and folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin", ".model"))
        return (
            "files:"
            + hashlib.sha256(
                json.dumps([(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]).encode()
            ).hexdigest()
        )
    return None  # a hub id without a pinned revision: the cache trusts the name


def _reply_complete(request: Request, tok, prompt_len: int):
    """A stopping criterion: the new tokens, decoded, hold a complete reply (`Request.end_after`). Checked after each
    token whose text has a backtick, the only character that can close a fence."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class ReplyComplete(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            last = tok.decode(input_ids[0, -1:], skip_special_tokens=True)
            done = (
                "`" in last
                and reply_end(request, tok.decode(input_ids[0, prompt_len:], skip_special_tokens=True)) is not None
            )
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([ReplyComplete()])


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def _set_threads(torch) -> None:
    """Split the cores between xdist workers: oversubscribed BLAS threads make every worker slower."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _device(torch, wanted: str):
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise AgentbenchError(f"device {wanted!r} asked but torch sees no CUDA device")
    return torch.device(wanted)


def _dtype(torch, name: str, device):
    if name == "auto":
        # fp32 on CPU: bf16 matmuls measured 4x slower on these CPUs (FACTS.md).
        return torch.float32 if device.type == "cpu" else "auto"
    try:
        return getattr(torch, name)
    except AttributeError:
        raise AgentbenchError(f"unknown dtype {name!r} (auto, float32, bfloat16, float16)") from None


def _bnb_config(torch, spec):
    if importlib.util.find_spec("bitsandbytes") is None:
        raise AgentbenchError(f"model {spec.name!r} asks for 4/8-bit loading: pip install 'pytest-agentbench[quant]'")
    if not torch.cuda.is_available():
        raise AgentbenchError(f"model {spec.name!r} asks for 4/8-bit loading, which bitsandbytes supports on CUDA only")
    from transformers import BitsAndBytesConfig

    if spec.load_in_4bit:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def _save_dequantized(tokenizer, model, target: Path) -> None:
    """Best effort: a failed or racing save only costs the next run the slow path."""
    if target.exists():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        quantizer = getattr(model, "hf_quantizer", None)
        qconfig = getattr(model.config, "quantization_config", None)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        finally:
            model.hf_quantizer = quantizer
            if qconfig is not None:
                model.config.quantization_config = qconfig
        os.rename(tmp, target)
    except OSError as exc:
        log.info("not caching dequantized GGUF: %s", exc)
        shutil.rmtree(locals().get("tmp", ""), ignore_errors=True)
