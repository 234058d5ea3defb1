"""`llamacpp`: llama.cpp's own `llama-server` on a GGUF file (the embedded default's native form; measured the fastest
CPU path here: benchmarks/perf/bench_backends.py). It queues requests itself, so xdist workers need no turns. One
slot by default, with prompt caching off: each reply is computed alone from a fresh prefill, so the replies do not
depend on how requests interleave, and `-n 2` gives the same replies as `-n 0`. `options.parallel: N` batches N
requests at once (more tokens per second with several workers), at the price of replies that depend on what was
batched together (floating-point sums in another order). `scripts/llama-server.sh` builds the binary from the
llama.cpp sources PyPI's llama-cpp-python ships; any `llama-server` on PATH (or AGENTBENCH_LLAMA_SERVER) does too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..models import WeightsSpec
from ..weights import gguf_path
from .engine import HOST, Engine, omp_env, tool_template


class LlamaCpp(Engine):
    name = "llamacpp"
    runs_gguf = True

    def missing(self) -> str | None:
        if llama_server() is None:
            return (
                "llama.cpp's llama-server is not installed: bash scripts/llama-server.sh builds it into .venv/bin "
                "(or put one on PATH, or set AGENTBENCH_LLAMA_SERVER)"
            )
        return None

    def refuse(self, spec: WeightsSpec) -> str | None:
        return None if spec.gguf_file else "serves a GGUF file: set gguf_file"

    def check(self, spec: WeightsSpec) -> None:
        gguf_path(spec)

    def command(self, spec: WeightsSpec, port: int, threads: int) -> list[str]:
        slots = spec.options.parallel or 1
        argv = [
            llama_server() or "llama-server",
            "--model",
            str(gguf_path(spec)),
            "--alias",
            spec.name,
            "--host",
            HOST,
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--threads-batch",
            str(threads),
            "--ctx-size",
            str((spec.options.n_ctx or 8192) * slots),
            "--parallel",
            str(slots),
        ]
        if slots == 1:  # a fresh prefill per request: the reply never depends on what the slot held before
            argv.append("--no-cache-prompt")
        # No host-RAM copies of old prompts in either mode: benchmark prompts are never asked twice, and that cache
        # grew the one-slot server to 1.5 GB and the four-slot one to 3 GB over the main job.
        argv += ["--cache-ram", "0"]
        if spec.adapter:  # a GGUF LoRA (a PEFT folder is converted once and cached: adapters.gguf_lora)
            from .lora import gguf_lora

            argv += ["--lora", str(gguf_lora(spec))]
        # Jinja chat templates: OpenAI `tools` are rendered and calls parsed (native function calling). A model whose
        # own template ignores tools names a tool template (models.yaml), used on every request: it renders exactly
        # like the model's own without tools, so a run's formats never change another format's prompts.
        argv.append("--jinja")
        template = tool_template(spec)
        if template is not None:
            argv += ["--chat-template-file", str(template)]
        return argv

    def env(self, spec: WeightsSpec) -> dict[str, str]:
        return omp_env()

    def identity(self, spec: WeightsSpec) -> dict[str, Any]:
        from ..provenance import sha256_file

        ident: dict[str, Any] = {
            "llama_server": llama_server_version(),
            "weights": "sha256:" + sha256_file(gguf_path(spec)),
        }
        if (spec.options.parallel or 1) > 1:  # batched replies depend on their batch-mates
            ident["parallel"] = spec.options.parallel
        return ident


def llama_server() -> str | None:
    """The llama-server binary: $AGENTBENCH_LLAMA_SERVER, else beside this Python (the project's .venv/bin), else on
    PATH."""
    named = os.environ.get("AGENTBENCH_LLAMA_SERVER")
    if named:
        return named if os.access(named, os.X_OK) else None
    beside = Path(sys.executable).with_name("llama-server")
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("llama-server")


def llama_server_version() -> str:
    """`llama-server --version` (its build and commit): part of a served model's identity."""
    if not hasattr(llama_server_version, "cached"):
        try:
            out = subprocess.run(
                [llama_server() or "llama-server", "--version"], capture_output=True, text=True, timeout=30
            )
            lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.startswith("version")]
            llama_server_version.cached = lines[0] if lines else "unknown"  # type: ignore[attr-defined]
        except (OSError, subprocess.TimeoutExpired):
            llama_server_version.cached = "unknown"  # type: ignore[attr-defined]
    return llama_server_version.cached  # type: ignore[attr-defined]
