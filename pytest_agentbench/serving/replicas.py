"""Several servers of one model (`replicas: N` beside `serve:` in models.yaml), behind one pool of endpoints.

Each replica is a `ModelServer` on its own free port with its share of the machine: llama.cpp and transformers get
the CPU threads divided (at least one each), vLLM gets the visible GPUs divided (`CUDA_VISIBLE_DEVICES`, contiguous
groups). The workers reach them through the openai backend's pool (backends/pool.py): each request goes to the
replica with the fewest in flight, and a replica that dies is taken out while the others finish the run.

On one multi-GPU box vLLM's own `--data-parallel-size` (one engine, one port) usually does better than replicas;
replicas are for engines without data parallelism (llama.cpp on a many-core CPU) and for trying the pool locally.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

from ..errors import AgentbenchError
from .engine import plan
from .server import ModelServer, Served


def make_server(spec, engine: str, log_dir: Path) -> ModelServer | Replicas:
    """What the broker starts for `spec`: one server, or `replicas: N` of them."""
    n = getattr(spec, "replicas", None) or 1
    return Replicas(spec, engine, log_dir, n) if n > 1 else ModelServer(spec, engine, log_dir)


def shares(engine: str, n: int, cpus: int | None = None, gpus: list[str] | None = None) -> list[dict]:
    """Each replica's share: {"threads": T} for CPU engines, {"env": {"CUDA_VISIBLE_DEVICES": ...}} for vLLM."""
    if engine != "vllm":
        threads = max(1, (cpus or os.cpu_count() or 1) // n)
        return [{"threads": threads} for _ in range(n)]
    gpus = gpus if gpus is not None else visible_gpus()
    per = len(gpus) // n
    if per == 0:
        raise AgentbenchError(f"replicas: {n} of a vllm server need at least {n} GPUs; {len(gpus)} visible")
    return [{"env": {"CUDA_VISIBLE_DEVICES": ",".join(gpus[i * per : (i + 1) * per])}} for i in range(n)]


def visible_gpus() -> list[str]:
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [g.strip() for g in named.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch, no driver: no GPU
        return []


class Replicas:
    """N `ModelServer`s started and stopped together; answers the broker as one server does (start, stop, tail,
    log_path, cancelled), its `Served` naming every replica."""

    def __init__(self, spec, engine: str, log_dir: Path, n: int):
        self.spec, self.engine = spec, engine
        self.cancelled = threading.Event()
        self.servers: list[ModelServer] = []
        for i, share in enumerate(shares(engine, n)):
            server = ModelServer(spec, engine, log_dir / f"replica-{i}")
            made = plan(spec, engine, port=server.plan.port, threads=share.get("threads"))
            server.plan = replace(made, env={**made.env, **share.get("env", {})})
            server.cancelled = self.cancelled
            self.servers.append(server)
        self.log_path = self.servers[0].log_path

    def start(self) -> Served:
        """Start the replicas one after another, in the calling thread (the broker's: PR_SET_PDEATHSIG follows the
        thread that started a child, so a helper thread's end would kill them); one that fails stops the others."""
        started: list[Served] = []
        try:
            for server in self.servers:
                started.append(server.start())
        except BaseException:
            self.stop()
            raise
        return replace(
            started[0], replicas=[{"pid": s.pid, "base_url": s.base_url, "log": s.log, "argv": s.argv} for s in started]
        )

    def tail(self, lines: int = 3) -> str:
        return self.servers[0].tail(lines)

    def stop(self, grace: float = 5.0) -> None:
        for server in self.servers:
            server.stop(grace)
