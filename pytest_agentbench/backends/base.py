"""The Backend interface. A backend knows nothing of pytest, sandboxes or suites."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from ..models import ModelSpec, PluginSpec


@dataclass(frozen=True)
class SampleRef:
    """Which sample asks: read by backends that answer from data (reference, replay) and by the generation cache
    (`index`, so samples at temperature > 0 never collapse into one); never part of what a model is shown."""

    task_id: str = ""
    index: int = 0
    reference: str | tuple[str, ...] | None = None  # a tuple: one reply per assistant turn
    reference_continues_prompt: bool = False


@dataclass(frozen=True)
class Request:
    """What to generate, and (`sample`) for whom."""

    messages: list[dict[str, Any]]  # chat form: [{"role": ..., "content": ...}] (native calls: tool_calls, role tool)
    prefix: str | None = None  # plain-completion form, for models without a chat template
    temperature: float = 0.0
    max_new_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = ()  # stop strings for plain completion
    sample: SampleRef = SampleRef()
    # Native function calling (--prompt-format native, docs/function-calling.md): OpenAI-style function schemas
    # passed through the model API's own interface, and how free the model is to call one (auto, required, none).
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str = "auto"
    end_after: str | None = None  # a chat reply may end early: "code_block[:ENTRY]" (extract.code_block_end)


@dataclass
class Completion:
    text: str
    continues_prompt: bool = False  # True: `text` continues `Request.prefix` (no chat reply to extract from)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    ttft_s: float | None = None  # time to the first token, where the backend streams
    cached: bool = False  # served from the generation cache: no model time
    finish_reason: str = ""
    started_at: float | None = None  # wall-clock Unix times of the request (set by the agent's context)
    ended_at: float | None = None
    # Native function calling: the calls the engine read from the reply, each {"name": ..., "arguments": JSON text}
    # in the order given, and `protocol_error` when the reply held a call the engine could not read (malformed):
    # the model's failure, never the harness's (the agent reports it as a protocol error).
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    protocol_error: str | None = None
    endpoint: str | None = None  # which of a pool's endpoints answered (backends/pool.py)


def reply_end(request: Request, text: str) -> int | None:
    """Where a chat reply to `request` may stop (its `end_after` rule), or None: generate on."""
    if request.end_after is None:
        return None
    from ..extract import CODE_BLOCK, code_block_end

    rule, _, entry_point = request.end_after.partition(":")
    if rule != CODE_BLOCK:
        raise ValueError(f"unknown end_after rule {request.end_after!r}")
    return code_block_end(text, entry_point or None)


class Backend(ABC):
    """Loaded once per process per model (a session fixture); must be safe to call sequentially. Register a
    subclass with `@registry.backends.register("name")`; `backend: name` in models.yaml then picks it."""

    #: the settings a models.yaml entry of this backend validates (unknown keys refused)
    spec_class: ClassVar[type[ModelSpec]] = PluginSpec
    #: the backend that runs the model instead when `unavailable()` says why this one cannot (vllm -> transformers)
    fallback: ClassVar[Optional[str]] = None

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    @classmethod
    def create(cls, spec: ModelSpec) -> Backend:
        """Load the backend for `spec`; a backend that cannot run here may return another one (vllm -> transformers)
        that records the fallback in `info()`."""
        return cls(spec)

    @abstractmethod
    def generate(self, request: Request) -> Completion: ...

    @classmethod
    def preflight(cls, spec: ModelSpec) -> None:
        """Raise AgentbenchError (one line) when this model cannot work at all; runs once, before any item."""

    @classmethod
    def unavailable(cls) -> Optional[str]:
        """Why this backend cannot run on this host (a one-line install hint), or None; with a `fallback` the run
        uses that backend instead and says so once."""
        return None

    def cache_identity(self) -> dict[str, Any] | None:
        """What, besides the request, decides this backend's replies (backends/cache.py): None = never cache."""
        return None

    def info(self) -> dict[str, Any]:
        """Provenance for the report (dtype, device, chat-template hash, ...)."""
        return {}

    def resources(self) -> dict[str, Any] | None:
        """The memory of what runs this model, measured now: {"process": which (stable across runs), "peak_rss_mb":
        its resident high-water mark, "cuda_peak_mb": the GPU memory torch allocated at most, or None}. None when
        nothing on this host runs a model for it (a remote endpoint, a backend that answers from data)."""
        return None

    def close(self) -> None:
        pass


def peak_rss_mb(pid: int | None = None, *, tree: bool = False) -> float | None:
    """The resident-memory high-water mark (Linux's VmHWM) of a process, and with `tree` of its descendants too (an
    engine's workers), in MiB; None where /proc cannot tell (another OS, a process that is gone). Summed over a tree
    it is an upper bound: the processes' peaks need not coincide, and pages they share count once each."""
    pids = _tree(pid or os.getpid()) if tree else [pid or os.getpid()]
    total, seen = 0, False
    for one in pids:
        try:
            text = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
                seen = True
    return round(total / 1024, 1) if seen else None


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        one = todo.pop()
        found.append(one)
        for task in Path(f"/proc/{one}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except (OSError, ValueError):
                pass
    return found


#: GNU OpenMP's spins at a barrier before a waiting thread sleeps, where the user set neither OMP_WAIT_POLICY nor
#: GOMP_SPINCOUNT (benchmarks/perf/bench_omp.py measured the choice; docs/performance.md).
SPINCOUNT = "1000"


def omp_env() -> dict[str, str]:
    """The OpenMP settings of what computes a model on this host's CPUs (llama-server, torch: both use GNU OpenMP).
    Their threads meet at a barrier after every operation of the graph, hundreds per token. GNU OpenMP's default spins
    about 300,000 iterations there before sleeping: where other jobs hold the cores, the thread that arrives first
    spins through its time slice while the one it waits for is descheduled (llama-server's decoding fell from about
    90 to 2 tokens/s at load 10 on 2 cores). Sleeping at once (`OMP_WAIT_POLICY=passive`) fixes that but costs a
    futex wake-up per barrier: two thirds of the decoding speed on a quiet machine. A short spin (`GOMP_SPINCOUNT`
    1000) keeps both: the quiet speed within a few percent and the best contended speed measured. The user's own
    OMP_WAIT_POLICY or GOMP_SPINCOUNT wins (then this sets nothing of its own)."""
    mine = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if os.environ.get(k)}
    return mine or {"GOMP_SPINCOUNT": SPINCOUNT}


IN_PROCESS: set[str] = set()  # models whose weights this process holds (in-process backends register at load)


def in_process_resources(device=None, model: str | None = None) -> dict[str, Any]:
    """This process's memory, for a backend that runs the model in it (transformers, vLLM's offline engine). A
    high-water mark cannot be split between models: `alongside` names the other models this process holds."""
    cuda = None
    if device is not None and getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        cuda = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return {
        "process": f"in-process ({worker})",
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": cuda,
        "alongside": sorted(IN_PROCESS - {model}),
    }
