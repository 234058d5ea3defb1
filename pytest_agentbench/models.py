"""models.yaml: named model specs, and the resolution of --model to one of them.

A name resolves, in order: an alias in models.yaml, a built-in (`reference`, `replay:PATH`), a local
path (folder or .gguf file), a hub id (`org/name`). Anything else is a one-line error at start.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AgentbenchError

PACKAGED_MODELS_FILE = Path(__file__).with_name("models.yaml")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str = "transformers"
    hf_id: str | None = None          # hub id or local folder
    path: str | None = None           # local file or folder (GGUF file, replay JSONL)
    package: str | None = None        # a Python package that ships the weights (the embedded default)
    gguf_file: str | None = None      # GGUF file name inside hf_id / path / package
    revision: str | None = None
    dtype: str = "auto"               # auto | float32 | bfloat16 | float16
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    max_tokens: int | None = None     # default --max-new-tokens for this model
    temperature: float | None = None  # default --temperature for this model
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    chat_template: bool = True        # use the tokenizer's chat template when it has one
    trust_remote_code: bool = False
    base_url: str | None = None       # OpenAI-compatible endpoints
    api_key_env: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific extras

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}, "")}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


_FIELDS = {f.name: f for f in dataclasses.fields(ModelSpec)}
_TYPES = {"str": str, "str | None": str, "int | None": int, "float | None": (int, float), "bool": bool,
          "dict[str, Any]": dict}


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
        specs[str(name)] = _spec(path, str(name), raw)
    return specs


def _spec(path: Path, name: str, raw: Any) -> ModelSpec:
    where = f"{path}: model {name!r}"
    if not isinstance(raw, dict):
        raise AgentbenchError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_FIELDS) - {"name"})
    if unknown:
        raise AgentbenchError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    for key, value in raw.items():
        if key == "name" or value is None:
            continue
        want = _TYPES[str(_FIELDS[key].type)]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise AgentbenchError(f"{where}: field {key!r} should be {_FIELDS[key].type}, got {value!r}")
    spec = ModelSpec(**{**raw, "name": name})
    if spec.backend == "transformers" and not (spec.hf_id or spec.path or spec.package):
        raise AgentbenchError(f"{where}: a transformers model needs 'hf_id', 'path' or 'package'")
    if spec.backend == "openai":
        if not spec.base_url:
            raise AgentbenchError(f"{where}: an openai model needs 'base_url' (e.g. http://127.0.0.1:8000/v1)")
        from .backends.openai_api import settings_of

        try:
            settings_of(spec)
        except AgentbenchError as exc:
            raise AgentbenchError(f"{path}: {exc}") from None
    if spec.load_in_4bit and spec.load_in_8bit:
        raise AgentbenchError(f"{where}: choose one of load_in_4bit and load_in_8bit")
    return spec


def default_models_file(invocation_dir: Path) -> Path:
    local = invocation_dir / "models.yaml"
    return local if local.is_file() else PACKAGED_MODELS_FILE


def resolve(name: str, specs: dict[str, ModelSpec], models_file: Path) -> ModelSpec:
    name = name.strip()
    if name in specs:
        return specs[name]
    if name == "reference":
        return ModelSpec(name="reference", backend="reference")
    if name.startswith("replay:"):
        path = Path(name[len("replay:"):]).expanduser()
        if not path.is_file():
            raise AgentbenchError(f"replay file not found: {path}")
        return ModelSpec(name=name, backend="replay", path=str(path.resolve()))
    local = Path(name).expanduser()
    if local.exists():
        if local.is_file() and local.suffix == ".gguf":
            return ModelSpec(name=name, path=str(local.parent.resolve()), gguf_file=local.name)
        return ModelSpec(name=name, path=str(local.resolve()))
    if _HUB_ID.match(name) and not os.path.isabs(name):
        return ModelSpec(name=name, hf_id=name)
    known = ", ".join(sorted(specs)) or "none"
    raise AgentbenchError(f"unknown model {name!r}: not an alias in {models_file} (known: {known}), "
                          "not 'reference' or 'replay:PATH', not a local path, not a hub id like org/name")
