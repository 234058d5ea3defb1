"""The agent seam: an Agent runs a task with a backend, a sandbox, tools and limits, and returns a Trace.

Suites only load tasks, set up the workspace and grade (tasks.Suite); how a model is driven (one shot, a repair
loop, a tool loop) is an Agent. `AgentContext.generate` is the one place where an agent's request to the model is
built: the suite's generation parameters and the sample's identity travel with it, so no suite copies a request
closure and a backend (or a cache) sees every call the same way.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backends.base import Completion, Request, SampleRef
from ..trace import ModelRef, Trace, run_id
from .tools import Tool, ToolEnv

if TYPE_CHECKING:  # pragma: no cover
    from ..task import Params, Task


@dataclass(frozen=True)
class AgentLimits:
    max_steps: int = 20  # model replies
    tool_timeout: float = 30.0  # seconds per tool run (a command, a program)
    output_cap: int = 8 << 10  # characters of a tool's output the model is shown
    total_s: float | None = None  # wall time for the whole run


class AgentContext:
    """What an agent runs with: the model, the sandbox, its tools and limits, and the sample it is."""

    def __init__(
        self,
        backend,
        sandbox,
        params: Params,
        task: Task,
        sample: int,
        *,
        tools: dict[str, Tool] | None = None,
        limits: AgentLimits = AgentLimits(),
        model=None,
    ):
        self.backend = backend
        self.sandbox = sandbox
        self.params = params
        self.task = task
        self.sample = sample
        self.tools = tools or {}
        self.limits = limits
        self.model = model
        self.state: dict[str, Any] = {}  # the suite's per-sample scratch, from agent() to grade()
        self.audit = False  # record what each tool call did (ToolEnv.audit; the agent scenarios)
        self.started = time.perf_counter()

    def generate(
        self,
        messages: list[dict],
        *,
        prefix: str | None = None,
        stop: tuple[str, ...] = (),
        tools: tuple[dict, ...] = (),
        tool_choice: str = "auto",
        end_after: str | None = None,
    ) -> Completion:
        who = SampleRef(
            task_id=self.task.id,
            index=self.sample,
            reference=self.task.reference,
            reference_continues_prompt=self.task.reference_continues_prompt,
        )
        request = Request(
            messages=messages,
            prefix=prefix,
            stop=tuple(stop),
            temperature=self.params.temperature,
            max_new_tokens=self.params.max_new_tokens,
            seed=self.params.seed,
            sample=who,
            tools=tuple(tools),
            tool_choice=tool_choice,
            end_after=end_after,
        )
        started, started_at = time.perf_counter(), time.time()
        completion = self.backend.generate(request)
        if not completion.seconds and not completion.cached:
            completion.seconds = time.perf_counter() - started
        completion.started_at, completion.ended_at = started_at, time.time()
        return completion

    def tool_env(self) -> ToolEnv:
        return ToolEnv(
            sandbox=self.sandbox, timeout=self.limits.tool_timeout, output_cap=self.limits.output_cap, audit=self.audit
        )

    def out_of_time(self) -> bool:
        return self.limits.total_s is not None and time.perf_counter() - self.started > self.limits.total_s

    def new_trace(self, prompt: str, label: str = "default", scenario: str | None = None) -> Trace:
        spec = self.model
        ref = ModelRef(
            name=spec.name if spec else "model",
            hf_id=getattr(spec, "hf_id", None),
            backend=getattr(spec, "backend", "unknown"),
        )
        return Trace(
            run_id=run_id(ref.name, scenario or self.task.id, label, self.sample, self.params),
            scenario=scenario or self.task.id,
            model=ref,
            label=label,
            prompt=prompt,
            sample=self.sample,
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )


def add_generation(trace: Trace, completion: Completion) -> dict[str, Any]:
    """Count a reply's tokens and time into the trace; returns the per-step fields for its action step."""
    trace.tokens["prompt"] += completion.prompt_tokens
    trace.tokens["completion"] += completion.completion_tokens
    trace.latency_s["model"] += completion.seconds
    fields: dict[str, Any] = {
        "latency_s": round(completion.seconds, 6),
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
    }
    if completion.ttft_s is not None:
        fields["ttft_s"] = round(completion.ttft_s, 6)
    if completion.finish_reason:
        fields["finish_reason"] = completion.finish_reason
    if completion.started_at is not None:
        assert completion.ended_at is not None  # the context sets both at once
        fields["started_at"], fields["ended_at"] = round(completion.started_at, 6), round(completion.ended_at, 6)
    return fields


def wall_clock() -> float:
    """Now as a Unix time rounded to the microsecond: the `started_at`/`ended_at` of trace steps."""
    return round(time.time(), 6)


class Agent(ABC):
    """Drives a model through a task. Returns the trace of what it did; the suite grades it."""

    name: str = "agent"

    @abstractmethod
    def run(self, ctx: AgentContext, messages: list[dict], trace: Trace) -> Trace:
        """Run from `messages` (the task's opening conversation), filling in and returning `trace`."""
