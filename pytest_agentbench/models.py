"""models.yaml: named model specs, and the resolution of --model to one of them.

A name resolves, in order: an alias in models.yaml, a built-in (`reference`, `replay:PATH`), a local
path (folder or .gguf file), a hub id (`org/name`). Anything else is a one-line error at start; so is a name written
as a path (`./x`, `/x`, `~/x`, `*.gguf`) that is not there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import AgentbenchError

PACKAGED_MODELS_FILE = Path(__file__).with_name("models.yaml")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelSpec(BaseModel):
    """What every model has. Each backend's own settings live in its subclass below (one validated shape per
    backend, unknown keys refused); `spec_of` picks the shape by the `backend` field."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)  # strict: `max_tokens: true` is not 1

    name: str
    backend: str = "transformers"
    description: str = ""
    max_tokens: Optional[PositiveInt] = None  # default --max-new-tokens for this model
    temperature: Optional[NonNegativeFloat] = None  # default --temperature for this model

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(mode="json").items() if v not in (None, {}, "")}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


class EngineOptions(BaseModel):
    """`options:` of a transformers or vllm model: settings of the engine that serves or runs it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    n_ctx: Optional[PositiveInt] = None  # llamacpp server: context per slot (default 8192)
    parallel: Optional[PositiveInt] = None  # llamacpp server: requests batched at once (default 1)
    max_model_len: Optional[PositiveInt] = None  # vllm
    gpu_memory_utilization: Optional[float] = Field(default=None, gt=0.0, le=1.0)
    tensor_parallel_size: Optional[PositiveInt] = None
    quantization: Optional[str] = None  # vllm's own (awq, gptq, fp8, ...)
    enforce_eager: Optional[bool] = None
    tool_call_parser: Optional[str] = None  # vllm serve: --enable-auto-tool-choice --tool-call-parser (native calls)


class WeightsSpec(ModelSpec):
    """Weights this process (or a server it starts) loads: backend transformers, or vllm (falls back to
    transformers where vllm or CUDA is missing)."""

    backend: Literal["transformers", "vllm"] = "transformers"
    hf_id: Optional[str] = None  # hub id or local folder
    path: Optional[str] = None  # local file or folder
    package: Optional[str] = None  # a Python package that ships the weights (the embedded default)
    gguf_file: Optional[str] = None  # GGUF file name inside hf_id / path / package
    revision: Optional[str] = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    load_in_4bit: bool = False  # bitsandbytes, CUDA only
    load_in_8bit: bool = False
    chat_template: bool = True  # use the tokenizer's chat template when it has one
    # A chat template that renders tools (native function calling, docs/function-calling.md): a packaged one by name
    # (`smollm2-tools`) or a .jinja file; for a model whose own template ignores tools. Used on every request (it must
    # render exactly like the model's own template without tools), and part of the model's identity.
    tool_template: Optional[str] = None
    trust_remote_code: bool = False
    serve: Optional[str] = None  # an engine of registry.engines: one server for the run (serving/)
    replicas: Optional[PositiveInt] = None  # with serve: N servers behind a pool (serving/replicas.py)
    adapter: Optional[str] = None  # a LoRA/PEFT adapter folder, or a GGUF LoRA for llama.cpp (adapters.py)
    options: EngineOptions = EngineOptions()

    @field_validator("serve")
    @classmethod
    def _engine(cls, value: Optional[str]) -> Optional[str]:
        from . import registry

        names = registry.engines.names()
        if value is not None and value not in names:
            raise ValueError("should be " + " or ".join([", ".join(map(repr, names[:-1])), repr(names[-1])][-2:]))
        return value

    @model_validator(mode="after")
    def _coherent(self) -> WeightsSpec:
        if not (self.hf_id or self.path or self.package):
            raise ValueError(f"a {self.backend} model needs 'hf_id', 'path' or 'package'")
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("choose one of load_in_4bit and load_in_8bit")
        if (self.replicas or 1) > 1 and not self.serve:
            raise ValueError("replicas are servers: set serve (an engine: llamacpp, transformers or vllm) too")
        if self.adapter and self.adapter.endswith(".gguf") and self.serve != "llamacpp":
            raise ValueError("a GGUF LoRA adapter is applied by llama-server only: set serve: llamacpp")
        if self.serve is not None:
            from . import registry

            lacks = registry.engines.get(self.serve)().refuse(self)
            if lacks:
                raise ValueError(f"serve: {self.serve} {lacks}")
        return self


class OpenAISettings(BaseModel):
    """`options:` of an openai model in models.yaml (besides the common base_url, api_key_env and hf_id)."""

    model_config = ConfigDict(extra="forbid")

    model: Optional[str] = None  # the name the server knows the model by (default: hf_id, or the alias)
    api: Literal["chat", "completions"] = "chat"  # completions: plain-completion prompts for base models
    stream: bool = True  # stream replies: time to first token is measured
    timeout: float = 120.0  # seconds per request (transport: not part of any result's identity)
    max_retries: int = 4  # with a pool of n endpoints the client gets n - 1 more, so each can be tried
    # a pool's endpoint that failed stays out this long (doubling while it fails)
    backoff: float = Field(default=30.0, gt=0)
    concurrency: int = 4  # requests in flight from one process at most
    top_p: Optional[float] = None
    extra_body: dict[str, Any] = {}  # server-specific fields (e.g. {"top_k": 1} for vLLM)


class EndpointSpec(ModelSpec):
    """An OpenAI-compatible endpoint (backend openai). The key is read from the environment variable named by
    api_key_env and never stored."""

    backend: Literal["openai"] = "openai"
    base_url: Union[str, list[str]]  # several: a pool (backends/pool.py)
    api_key_env: Optional[str] = None
    hf_id: Optional[str] = None  # the served model's name (options.model overrides)
    revision: Optional[str] = None
    chat_template: bool = True
    options: OpenAISettings = OpenAISettings()

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | list[str]) -> str | list[str]:
        urls = [value] if isinstance(value, str) else value
        if not urls:
            raise ValueError("is an empty list (give one URL, or several for a pool)")
        for url in urls:
            if not re.match(r"^https?://", url):
                raise ValueError(
                    "should start with http:// or https://" + ("" if isinstance(value, str) else f": {url!r}")
                )
        if len(set(urls)) < len(urls):
            raise ValueError("names an endpoint twice")
        return value


class ReferenceSpec(ModelSpec):
    backend: Literal["reference"] = "reference"


class ReplaySpec(ModelSpec):
    backend: Literal["replay"] = "replay"
    path: str


class ScriptedSpec(ModelSpec):
    """Replies from a file, turn by turn (backends/scripted.py); a relative path is relative to models.yaml."""

    backend: Literal["scripted"] = "scripted"
    replies: Optional[str] = None  # required by the built-in backend
    options: dict[str, Any] = {}  # for a conftest's own scripted backend (pytest_agentbench_make_backend)


class PluginSpec(ModelSpec):
    """A backend from a plugin (`package.module:Class`, an entry point, or the make_backend hook): the common
    locators, and `options` for whatever else it reads (unknown keys outside `options` are refused)."""

    hf_id: Optional[str] = None
    path: Optional[str] = None
    revision: Optional[str] = None
    base_url: Optional[str] = None
    api_key_env: Optional[str] = None
    options: dict[str, Any] = {}


def spec_class(backend: str) -> type[ModelSpec]:
    """The settings a backend validates: the `spec` of the class registered under that name (registry.backends),
    or PluginSpec for a backend made elsewhere (a `package.module:Class`, the make_backend hook)."""
    from . import registry

    try:
        cls = registry.backends.find(backend)
    except AgentbenchError:  # an entry point that does not load: said where the backend is made
        cls = None
    spec = getattr(cls, "spec_class", None)
    return spec if isinstance(spec, type) and issubclass(spec, ModelSpec) else PluginSpec


def spec_of(raw: dict[str, Any], where: str = "") -> ModelSpec:
    """A validated spec of the right shape for its backend; every problem is one line naming the key."""
    backend = raw.get("backend", "transformers")
    try:
        return spec_class(backend if isinstance(backend, str) else "").model_validate(raw)
    except ValidationError as exc:
        raise AgentbenchError(f"{where or 'model ' + repr(raw.get('name'))}: {_one_line(exc, raw)}") from None


def _one_line(exc: ValidationError, raw: dict[str, Any]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    backend = raw.get("backend", "transformers")
    if err["type"] == "extra_forbidden":
        if len(loc) == 1:
            known = ", ".join(sorted(spec_class(str(backend)).model_fields))
            return f"unknown field {key!r} for backend {backend} (known: {known})"
        return f"unknown key {key!r}"
    msg = err["msg"]
    for prefix in ("Value error, ", "Input should be ", "String should match pattern "):
        if msg.startswith(prefix):
            msg = {"Input should be ": "should be ", "String should match pattern ": "should match "}.get(
                prefix, ""
            ) + msg[len(prefix) :]
    if not key:
        return msg
    got = err.get("input")
    shown = "" if err["type"] == "missing" or isinstance(got, dict) else f" (got {got!r})"
    return f"field {key!r} {msg}{shown}" if err["type"] != "missing" else f"field {key!r} is required"


def load_models_file(path: Path) -> dict[str, ModelSpec]:
    """Parse and validate models.yaml; every problem is an AgentbenchError naming file, model and field."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentbenchError(f"cannot read models file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise AgentbenchError(f"{path}:{where} is not valid YAML ({problem})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise AgentbenchError(f"{path}: expected a mapping with a 'models:' mapping of name -> settings")
    specs = {}
    for name, raw in doc["models"].items():
        where = f"{path}: model {str(name)!r}"
        if not isinstance(raw, dict):
            raise AgentbenchError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
        raw = {k: v for k, v in raw.items() if k != "name" and v is not None}
        if raw.get("backend") == "scripted" and isinstance(raw.get("replies"), str):
            raw["replies"] = str((path.parent / Path(raw["replies"]).expanduser()).resolve())
        if isinstance(raw.get("adapter"), str):  # relative to models.yaml, like a scripted model's replies
            raw["adapter"] = str((path.parent / Path(raw["adapter"]).expanduser()).resolve())
        if isinstance(raw.get("tool_template"), str) and raw["tool_template"].endswith(".jinja"):
            raw["tool_template"] = str((path.parent / Path(raw["tool_template"]).expanduser()).resolve())
        specs[str(name)] = spec_of({**raw, "name": str(name)}, where)
    return specs


def default_models_file(invocation_dir: Path) -> Path:
    local = invocation_dir / "models.yaml"
    return local if local.is_file() else PACKAGED_MODELS_FILE


def _exists(path: Path, file: bool = False) -> bool:
    try:
        return path.is_file() if file else path.exists()
    except OSError:  # not a name a file could have (too long): no such file
        return False


def resolve(name: str, specs: dict[str, ModelSpec], models_file: Path) -> ModelSpec:
    name = name.strip()
    if name in specs:
        return specs[name]
    if name == "reference":
        return ReferenceSpec(name="reference")
    if name.startswith("replay:"):
        path = Path(name[len("replay:") :]).expanduser()
        if not _exists(path, file=True):
            raise AgentbenchError(f"replay file not found: {path}")
        return ReplaySpec(name=name, path=str(path.resolve()))
    local = Path(name).expanduser()
    if _exists(local):
        if local.is_file() and local.suffix == ".gguf":
            return WeightsSpec(name=name, path=str(local.parent.resolve()), gguf_file=local.name)
        return WeightsSpec(name=name, path=str(local.resolve()))
    if "+" in name:
        return with_adapter(name, specs, models_file)
    if name.startswith((".", "/", "~")) or local.suffix == ".gguf":  # a path (a hub id starts with a letter or digit)
        where = str(local.resolve())
        raise AgentbenchError(f"model file not found: {name}" + (f" ({where})" if where != name else ""))
    if _HUB_ID.match(name) and not os.path.isabs(name):
        return WeightsSpec(name=name, hf_id=name)
    known = ", ".join(sorted(specs)) or "none"
    raise AgentbenchError(
        f"unknown model {name!r}: not an alias in {models_file} (known: {known}), "
        "not 'reference' or 'replay:PATH', not a local path, not a hub id like org/name"
    )


def with_adapter(name: str, specs: dict[str, ModelSpec], models_file: Path) -> ModelSpec:
    """`BASE+ADAPTER`: the model BASE (any name --model takes) with the adapter at path ADAPTER applied, named
    `BASE+ADAPTER` in the report (docs/adapters.md)."""
    base_name, _, adapter = name.partition("+")
    base = resolve(base_name, specs, models_file)
    if not isinstance(base, WeightsSpec):
        raise AgentbenchError(f"model {name!r}: {base_name} is not a model with weights here, it takes no adapter")
    if base.adapter:
        raise AgentbenchError(f"model {name!r}: {base_name} already has an adapter ({base.adapter}); one per model")
    path = Path(adapter.strip()).expanduser()
    if not adapter.strip() or not _exists(path):
        raise AgentbenchError(f"model {name!r}: adapter not found: {adapter.strip() or '(empty)'}")
    return spec_of({**base.model_dump(), "name": name, "adapter": str(path.resolve())}, f"model {name!r}")


_GGUF_TYPE = re.compile(r"(?:^|[.\-_])((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|F32|BF16)(?=[.\-_]|$)", re.I)


def _engine_class(name: str) -> Any:
    from . import registry

    try:
        return registry.engines.find(name)
    except AgentbenchError:
        return None


def quantization(spec: ModelSpec, ran_as: dict[str, Any], loaded_dtype: str | None = None) -> str | None:
    """How the weights are held where the model runs this run (the comparison table's quantization column): a
    bitsandbytes mode, vLLM's quantization, a GGUF type as llama.cpp runs it, a GGUF dequantized by transformers, or
    the dtype of unquantized weights (`loaded_dtype`, what an in-process backend loaded, resolves `dtype: auto`).
    None when this host does not know (an endpoint, a plugin backend, data)."""
    if not isinstance(spec, WeightsSpec):
        return None
    if spec.load_in_4bit:
        return "bnb-nf4"
    if spec.load_in_8bit:
        return "bnb-int8"
    if spec.options.quantization:
        return spec.options.quantization
    if spec.gguf_file:
        found = _GGUF_TYPE.search(Path(spec.gguf_file).stem)
        kind = f"gguf {found.group(1).upper()}" if found else "gguf"
        engine = (ran_as.get("served") or {}).get("engine")
        if engine and getattr(_engine_class(engine), "runs_gguf", False):
            return kind
        dtype = loaded_dtype or ("float32" if spec.dtype == "auto" else spec.dtype)
        return f"{dtype} (dequantized {kind})"
    return loaded_dtype or spec.dtype
