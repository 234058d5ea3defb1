"""A plain ReAct repair agent: propose -> execute -> reflect, up to `iters` extra rounds.

Readable on purpose (no agent framework): each round the model proposes a full function; the tool
`run_tests_tool` runs it against the feedback tests in the sandbox's graded runner (tests out of the candidate's
reach, see sandbox/runner.py); a failure is fed back and the model tries again. The last proposal is the trace's
final answer: the suite grades it with the hidden tests (`grade_proposal`). Every round's timings and tokens are
kept in the trace's details (the record's `extra.iterations`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import HarnessError
from ..outcome import Outcome, Status
from ..sandbox import Candidate, HiddenTests
from ..trace import Trace
from .base import Agent, AgentContext, add_generation, wall_clock


@dataclass
class ToolResult:
    passed: bool
    exit_code: int | None
    stdout: str
    stderr: str
    status: str
    reason: str


def run_tests_tool(sandbox, candidate: Candidate, tests: HiddenTests, timeout: float) -> ToolResult:
    """The execute tool: grade a candidate against tests in the sandbox, report pass/fail and output tails.

    Each graded run starts from an empty workspace and scratch: the grader only calls on while answers are
    right, so a candidate could otherwise note what a round taught it and use it in the next."""
    sandbox.wipe()
    run = sandbox.run_tests(candidate, tests, timeout=timeout)
    if run.status == "infra":  # the dataset's tests cannot run here: the harness's problem, not the model's
        raise HarnessError(f"the tests cannot run: {run.reason}")
    return ToolResult(
        passed=run.passed,
        exit_code=run.result.exit_code,
        stdout=run.result.stdout[-1500:],
        stderr=run.result.stderr[-1500:],
        status=run.status,
        reason=run.reason,
    )


@dataclass
class Round:
    propose_s: float = 0.0
    execute_s: float = 0.0
    reflect_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    feedback: str = ""  # status of the feedback tests ("" when they were not run)
    propose_at: list[float] | None = None  # [start, end] wall-clock Unix times of the model request
    execute_at: list[float] | None = None  # ... and of the feedback tests' run (None when they were not run)

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items() if v is not None}


@dataclass
class RepairAgent(Agent):
    """`program(reply, continues_prompt)` turns a reply into the candidate to grade (None: no code in it)."""

    name = "repair"
    program: Callable[[str, bool], Candidate | None]
    feedback_tests: HiddenTests
    timeout: float
    iters: int = 0
    prefix: str | None = None  # plain-completion form for models without a chat template
    stop: tuple[str, ...] = ()
    end_after: str | None = None  # Request.end_after: a chat reply ends once the code the suite reads is there
    rounds: list[Round] = field(default_factory=list)

    def run(self, ctx: AgentContext, messages: list[dict], trace: Trace) -> Trace:
        for n in range(self.iters + 1):
            rnd = Round()
            self.rounds.append(rnd)
            reply = ctx.generate(messages, prefix=self.prefix, stop=self.stop, end_after=self.end_after)
            metrics = add_generation(trace, reply)
            rnd.propose_s, rnd.prompt_tokens, rnd.completion_tokens = (
                reply.seconds,
                reply.prompt_tokens,
                reply.completion_tokens,
            )
            if "started_at" in metrics:
                rnd.propose_at = [metrics["started_at"], metrics["ended_at"]]
            trace.final_answer = reply.text
            trace.details["continues_prompt"] = reply.continues_prompt
            if n == self.iters:
                trace.add("final", text=reply.text, **metrics)
                break  # no round left: the hidden tests decide
            candidate = self.program(reply.text, reply.continues_prompt)
            trace.add("tool_call", tool="run_tests", text=reply.text, **metrics)
            if candidate is None:
                rnd.feedback = "unparsable"
                feedback = NO_CODE
                trace.add("tool_result", tool="run_tests", text=feedback, ok=False, error="protocol")
            else:
                started, started_at = time.perf_counter(), wall_clock()
                result = run_tests_tool(ctx.sandbox, candidate, self.feedback_tests, self.timeout)
                rnd.execute_s = time.perf_counter() - started
                rnd.execute_at = [started_at, wall_clock()]
                trace.latency_s["tools"] += rnd.execute_s
                rnd.feedback = result.status
                feedback = "" if result.passed else _failure_message(result)
                trace.add(
                    "tool_result",
                    tool="run_tests",
                    text=result.status + (f": {result.reason}" if result.reason else ""),
                    ok=result.passed,
                    latency_s=round(rnd.execute_s, 6),
                    started_at=rnd.execute_at[0],
                    ended_at=rnd.execute_at[1],
                )
                if result.passed:
                    trace.add("final", text=reply.text)
                    break  # the agent is done; the hidden tests still grade it
            started = time.perf_counter()
            messages = messages + [{"role": "assistant", "content": reply.text}, {"role": "user", "content": feedback}]
            rnd.reflect_s = time.perf_counter() - started
        trace.outcome.completed = True
        trace.details["iterations"] = [r.as_dict() for r in self.rounds]
        return trace


def grade_proposal(trace: Trace, ctx: AgentContext, program, hidden: HiddenTests, timeout: float) -> Outcome:
    """The suite's grade for a repair agent's trace: its last proposal against the hidden tests."""
    reply = trace.final_answer or ""
    outcome = Outcome(
        Status.UNPARSABLE,
        reason="no code found in the reply",
        completion=reply,
        model_s=trace.latency_s["model"],
        prompt_tokens=trace.tokens["prompt"],
        completion_tokens=trace.tokens["completion"],
        extra={"iterations": trace.details.get("iterations", [])},
    )
    candidate = program(reply, trace.details.get("continues_prompt", False))
    if candidate is None:
        return outcome
    started = time.perf_counter()
    result = run_tests_tool(ctx.sandbox, candidate, hidden, timeout)
    outcome.sandbox_s = time.perf_counter() - started + trace.latency_s["tools"]
    outcome.status, outcome.reason = Status(result.status), result.reason
    outcome.program, outcome.stdout, outcome.stderr = candidate.source, result.stdout, result.stderr
    return outcome


NO_CODE = (
    "I could not find a Python code block with the full function in your reply. Reply with it in one ```python block."
)


def _failure_message(result: ToolResult) -> str:
    detail = (result.stderr or result.stdout).strip()[-1200:]
    return (
        f"I ran your function against the tests: {result.status} ({result.reason}).\n"
        f"```\n{detail}\n```\n"
        "Think about what went wrong, then reply with the complete corrected function in one ```python block."
    )
