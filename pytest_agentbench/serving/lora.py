"""A model's LoRA adapter as llama-server loads it: a GGUF LoRA, or a PEFT folder converted once with llama.cpp's own
converter (convert_lora_to_gguf.py) and cached under the adapter's identity (adapters.identity)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..adapters import CONVERTER_ENV, _where, identity, is_gguf
from ..errors import AgentbenchError
from ..provenance import CACHE_DIR
from ..steps import step
from .transformers import serve_folder


def converter() -> Path | None:
    """llama.cpp's convert_lora_to_gguf.py with the sources it imports: $AGENTBENCH_LORA_CONVERTER, else the copy
    scripts/llama-server.sh keeps beside this Python (.venv/share/llama.cpp-convert)."""
    named = os.environ.get(CONVERTER_ENV)
    folder = Path(named) if named else Path(sys.executable).parent.parent / "share" / "llama.cpp-convert"
    script = folder / "convert_lora_to_gguf.py"
    return script if script.is_file() and (folder / "gguf-py").is_dir() else None


def gguf_lora(spec) -> Path:
    """The GGUF LoRA llama-server loads for `spec`: the adapter itself, or its PEFT folder converted once and cached
    under its identity (about 10 s for a small adapter)."""
    adapter = Path(spec.adapter)
    if is_gguf(adapter):
        return adapter.resolve()
    ident = identity(adapter)
    target = CACHE_DIR / "lora-gguf" / f"{ident['sha256'][:24]}.gguf"
    if target.is_file():
        return target
    script = converter()
    if script is None:
        raise AgentbenchError(
            f"{_where(spec)}: llama-server needs it as a GGUF LoRA, and llama.cpp's converter is not installed: "
            f"bash scripts/llama-server.sh keeps it in .venv/share/llama.cpp-convert (or set {CONVERTER_ENV})"
        )
    base = serve_folder(spec)  # a folder with the base's config.json (the dequantized copy of a GGUF)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".gguf")
    os.close(fd)
    argv = [sys.executable, str(script), "--base", str(base), "--outtype", "f32", "--outfile", tmp, str(adapter)]
    try:
        with step(f"converting the adapter of {spec.name} to a GGUF LoRA for llama-server (once: then cached)"):
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"}
            )
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            raise AgentbenchError(
                f"{_where(spec)}: llama.cpp's converter failed (status {done.returncode}): "
                f"{(lines[-1] if lines else '')[:300]}"
            )
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise AgentbenchError(f"{_where(spec)}: llama.cpp's converter did not finish within 600 s") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
