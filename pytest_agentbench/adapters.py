"""Trained adapters as model variants (`adapter: PATH` in models.yaml, or `--model BASE+PATH`): what identifies an
adapter, the checks that refuse one in one line before any item runs, and how each engine gets it (docs/adapters.md).

- A PEFT folder (`adapter_config.json` + `adapter_model.safetensors` or `.bin`): the transformers backend applies it
  with peft, vLLM with its LoRA support, llama-server after a one-time conversion to a GGUF LoRA (llama.cpp's own
  `convert_lora_to_gguf.py`, cached under the adapter's identity).
- A GGUF LoRA file (`.gguf`, `general.type: adapter`): llama-server only (`--lora`).

Identity: sha256 over the weights file and a canonical adapter_config.json (sorted keys and `target_modules`, without
the fields that do not change the computation: peft writes `target_modules` in set order, so two saves of one adapter
differ byte for byte); a GGUF LoRA's own sha256. A GGUF converted here takes the identity of its PEFT source (its bytes
depend on the folder's name and model card). The identity is part of the model's config_sha (RunConfig.ran_as), the
generation cache key (each backend's cache_identity) and the report's model entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import AgentbenchError, first_line
from .provenance import sha256_file

CONFIG = "adapter_config.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
#: adapter_config.json fields that do not change what the adapter computes (left out of its identity)
NOT_COMPUTED = {"base_model_name_or_path", "revision", "peft_version", "inference_mode", "auto_mapping"}
#: where scripts/llama-server.sh keeps llama.cpp's LoRA converter (convert_lora_to_gguf.py, conversion/, gguf-py/)
CONVERTER_ENV = "AGENTBENCH_LORA_CONVERTER"


def is_gguf(path: str | Path) -> bool:
    return str(path).endswith(".gguf")


def _where(spec) -> str:
    return f"model {spec.name!r}: adapter {spec.adapter}"


def _peft_files(folder: Path) -> tuple[Path, Path] | None:
    weights = next((folder / w for w in WEIGHTS if (folder / w).is_file()), None)
    config = folder / CONFIG
    return (config, weights) if weights is not None and config.is_file() else None


def identity(path: str | Path) -> dict[str, Any]:
    """What identifies the adapter at `path` (raises AgentbenchError when it is not an adapter)."""
    path = Path(path)
    if path.is_file():
        if not is_gguf(path):
            raise AgentbenchError(f"adapter {path}: a file must be a GGUF LoRA (.gguf); a PEFT adapter is a folder")
        return {"format": "gguf", "sha256": sha256_file(path)}
    found = _peft_files(path) if path.is_dir() else None
    if found is None:
        what = "not found" if not path.exists() else f"not a PEFT adapter folder (needs {CONFIG} and {WEIGHTS[0]})"
        raise AgentbenchError(f"adapter {path}: {what}")
    config, weights = found
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AgentbenchError(f"adapter {path}: unreadable {CONFIG} ({first_line(str(exc))})") from None
    if not isinstance(cfg, dict):
        raise AgentbenchError(f"adapter {path}: {CONFIG} is not a JSON object")
    canon = {k: v for k, v in cfg.items() if k not in NOT_COMPUTED}
    if isinstance(canon.get("target_modules"), list):
        canon["target_modules"] = sorted(canon["target_modules"])
    digest = hashlib.sha256(json.dumps(canon, sort_keys=True).encode())
    digest.update(b"\0" + sha256_file(weights).encode())
    return {"format": "peft", "peft_type": cfg.get("peft_type"), "r": cfg.get("r"), "sha256": digest.hexdigest()}


# -- checks before any item (one line each) ---------------------------------------------------------------------
def check(spec, engine: str | None) -> dict[str, Any]:
    """Refuse, in one line, an adapter that cannot run on `engine` (None: in-process with spec.backend) or that does
    not fit its base model. Returns its identity."""
    ident = identity(spec.adapter)
    ident_where = _where(spec)
    if ident["format"] == "gguf":
        if engine != "llamacpp":
            raise AgentbenchError(
                f"{ident_where} is a GGUF LoRA, which only llama-server applies (serve: llamacpp); "
                "give the PEFT folder it came from for other engines"
            )
        _check_gguf_lora(spec)
        return ident
    if engine == "transformers":
        raise AgentbenchError(
            f"{ident_where}: `transformers serve` applies no adapter; run it in-process (--serve off)"
        )
    if engine in ("llamacpp", "vllm") and ident["peft_type"] != "LORA":
        raise AgentbenchError(f"{ident_where}: {engine} applies LoRA adapters only (this one is {ident['peft_type']})")
    _check_peft_fits(spec)
    return ident


def _base_config(spec):
    """The base model's transformers config, from local files only (None when there is none to read here)."""
    from transformers import AutoConfig

    from .weights import gguf_cache_dir, locate

    source, local = locate(spec)
    try:
        if spec.gguf_file:
            cached = gguf_cache_dir(source, spec.gguf_file)
            if (cached / "config.json").is_file():
                return AutoConfig.from_pretrained(cached, local_files_only=True)
            return AutoConfig.from_pretrained(source, gguf_file=spec.gguf_file, local_files_only=True)
        return AutoConfig.from_pretrained(
            source, revision=spec.revision, local_files_only=True, trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError):  # a hub model not in the local cache: peft's own check at load time says it
        return None


def _adapter_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    import torch

    state = torch.load(weights, map_location="meta", weights_only=True)
    return {k: tuple(v.shape) for k, v in state.items()}


def _check_peft_fits(spec) -> None:
    """Every LoRA matrix against the base module it adapts, on a weightless (meta) copy of the base: what peft's
    load would refuse with a size-mismatch RuntimeError or NoMatchingPeftModuleError, said before any item runs."""
    config = _base_config(spec)
    if config is None:
        return
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    modules = dict(model.named_modules())
    shapes = _adapter_shapes(_peft_files(Path(spec.adapter))[1])  # type: ignore[index]
    arch = type(model).__name__
    for key, shape in sorted(shapes.items()):
        for part, side in ((".lora_A.", "in"), (".lora_B.", "out")):
            if part not in key:
                continue
            name = key.split(part)[0].removeprefix("base_model.model.")
            module = modules.get(name)
            if module is None:
                raise AgentbenchError(
                    f"{_where(spec)} does not fit its base ({arch}): it adapts {name}, which the base does not have "
                    "(an adapter for another base model?)"
                )
            want = getattr(module, f"{side}_features", None)
            got = shape[1] if side == "in" else shape[0]
            if want is not None and got != want:
                raise AgentbenchError(
                    f"{_where(spec)} does not fit its base ({arch}): {name} has {side}_features {want}, the adapter's "
                    f"{part.strip('.')} is {list(shape)} (an adapter for another base model?)"
                )


def _gguf_field(reader, key: str) -> Any:
    found = reader.fields.get(key)
    return found.contents() if found is not None else None


def _check_gguf_lora(spec) -> None:
    """A GGUF LoRA: its kind, and each lora_a/lora_b pair against the base GGUF's tensor (what llama-server checks:
    "tensor ... has incorrect shape (hint: maybe wrong base model?)")."""
    from gguf import GGUFReader

    from .weights import gguf_path

    try:
        lora = GGUFReader(spec.adapter)
    except (OSError, ValueError) as exc:
        raise AgentbenchError(f"{_where(spec)}: not a readable GGUF file ({first_line(str(exc))})") from None
    kind = (_gguf_field(lora, "general.type"), _gguf_field(lora, "adapter.type"))
    if kind != ("adapter", "lora"):
        raise AgentbenchError(f"{_where(spec)}: not a GGUF LoRA (general.type {kind[0]!r}, adapter.type {kind[1]!r})")
    base_path = gguf_path(spec)
    base = GGUFReader(base_path)
    arch, base_arch = _gguf_field(lora, "general.architecture"), _gguf_field(base, "general.architecture")
    if arch != base_arch:
        raise AgentbenchError(f"{_where(spec)} is for a {arch} model, the base {base_path.name} is {base_arch}")
    base_shapes = {t.name: [int(x) for x in t.shape] for t in base.tensors}
    lora_shapes = {t.name: [int(x) for x in t.shape] for t in lora.tensors}
    for name, a_shape in lora_shapes.items():
        if not name.endswith(".lora_a"):
            continue
        target = name.removesuffix(".lora_a")
        want, b_shape = base_shapes.get(target), lora_shapes.get(target + ".lora_b")
        # GGUF shapes in ne[] order: base [n_in, n_out], lora_a [n_in, r], lora_b [r, n_out]
        if want is None or b_shape is None or a_shape[0] != want[0] or b_shape[1] != want[1]:
            raise AgentbenchError(
                f"{_where(spec)} does not fit {base_path.name}: {target} is {want} in the base, the adapter's A/B are "
                f"{a_shape}/{b_shape} (an adapter for another base model?)"
            )


# -- applying it ------------------------------------------------------------------------------------------------
def apply_peft(spec, model, merge: bool = True):
    """The transformers model with the adapter applied (merged into the weights unless `merge` is False: a
    bitsandbytes 4/8-bit base keeps it unmerged). A mismatch is one line; the model must then be dropped (a failed
    load leaves peft layers in it)."""
    try:
        from peft import PeftModel
    except ImportError:
        raise AgentbenchError(
            f"{_where(spec)}: applying it needs peft: pip install 'pytest-agentbench[adapters]'"
        ) from None
    try:
        adapted = PeftModel.from_pretrained(model, str(Path(spec.adapter).resolve()), is_trainable=False)
    except (RuntimeError, ValueError) as exc:  # size mismatch; NoMatchingPeftModuleError is a ValueError
        text = str(exc)
        detail = next((ln.strip() for ln in text.splitlines() if "size mismatch" in ln), first_line(text))
        raise AgentbenchError(f"{_where(spec)} does not fit its base: {detail[:300]}") from None
    adapted.eval()
    return adapted.merge_and_unload() if merge else adapted


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's max_lora_rank accepts


def vllm_max_lora_rank(ident: dict[str, Any]) -> int:
    """The smallest max_lora_rank vLLM accepts that holds the adapter's rank."""
    r = int(ident.get("r") or 16)
    return next((v for v in VLLM_LORA_RANKS if v >= r), r)


__all__ = ["CONVERTER_ENV", "apply_peft", "check", "identity", "is_gguf", "vllm_max_lora_rank"]
