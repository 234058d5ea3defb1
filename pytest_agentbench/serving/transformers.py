"""`transformers`: `transformers serve` on a folder (a GGUF is served as the dequantized folder the transformers
backend caches: its GGUF form fails on configs without `architectures`, FACTS.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError
from ..models import WeightsSpec
from ..weights import gguf_cache_dir, gguf_path, locate
from .engine import HOST, Engine, executable, omp_env


class TransformersServe(Engine):
    name = "transformers"

    def missing(self) -> str | None:
        if [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]:
            return "transformers serve needs its serving extra: pip install 'transformers[serving]'"
        return None

    def check(self, spec: WeightsSpec) -> None:
        if not spec.gguf_file:
            if not locate(spec)[1]:
                raise AgentbenchError(
                    f"model {spec.name!r}: transformers serve is given local folders here (hub ids need network)"
                )

    def command(self, spec: WeightsSpec, port: int, threads: int) -> list[str]:
        return [executable("transformers"), "serve", str(serve_folder(spec)), "--host", HOST, "--port", str(port)]

    def env(self, spec: WeightsSpec) -> dict[str, str]:
        return omp_env()

    def served_name(self, spec: WeightsSpec) -> str:
        return str(serve_folder(spec))

    def identity(self, spec: WeightsSpec) -> dict[str, Any]:
        import transformers

        from ..provenance import sha256_file

        weights = spec.hf_id or spec.package or spec.path
        if spec.gguf_file:
            weights = "sha256:" + sha256_file(gguf_path(spec))
        return {"transformers": transformers.__version__, "weights": weights}


def serve_folder(spec: WeightsSpec) -> Path:
    """A folder `transformers serve` can load: the model's own, or for a GGUF the dequantized copy the
    transformers backend caches (made here once if it is missing)."""
    source, local = locate(spec)
    if not spec.gguf_file:
        if not local:
            raise AgentbenchError(
                f"model {spec.name!r}: transformers serve is given local folders here (hub ids need network)"
            )
        return Path(source)
    cached = gguf_cache_dir(source, spec.gguf_file)
    if not (cached / "config.json").is_file():
        from ..backends.transformers import TransformersBackend

        TransformersBackend(spec).close()  # loads the GGUF once and saves the dequantized folder
    if not (cached / "config.json").is_file():
        raise AgentbenchError(f"model {spec.name!r}: could not prepare a dequantized folder at {cached}")
    return cached
