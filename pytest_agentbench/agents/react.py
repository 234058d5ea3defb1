"""A plain ReAct repair loop: propose -> execute -> reflect, up to `iters` extra rounds.

Readable on purpose (no agent framework): each round the model proposes a full function; the tool
`run_tests_tool` runs it against the feedback tests in the sandbox's graded runner (tests out of the candidate's
reach, see sandbox/runner.py); a failure is fed back and the model tries again. The final proposal is graded by
the hidden tests the same way. Every round's timings and tokens are kept for the report.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..backends.base import Request
from ..errors import HarnessError
from ..outcome import Outcome, Status
from ..sandbox import Candidate, HiddenTests


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
    return ToolResult(passed=run.passed, exit_code=run.result.exit_code, stdout=run.result.stdout[-1500:],
                      stderr=run.result.stderr[-1500:], status=run.status, reason=run.reason)


@dataclass
class Round:
    propose_s: float = 0.0
    execute_s: float = 0.0
    reflect_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    feedback: str = ""        # status of the feedback tests ("" when they were not run)

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class RepairLoop:
    """`program(reply, continues_prompt)` turns a reply into the candidate to grade (None: no code in it)."""

    request: Callable[[list[dict]], Request]
    program: Callable[[str, bool], Candidate | None]
    feedback_tests: HiddenTests
    hidden_tests: HiddenTests
    timeout: float
    iters: int = 0
    rounds: list[Round] = field(default_factory=list)

    def run(self, backend, sandbox, messages: list[dict]) -> Outcome:
        for n in range(self.iters + 1):
            rnd = Round()
            self.rounds.append(rnd)
            started = time.perf_counter()
            reply = backend.generate(self.request(messages))
            rnd.propose_s = time.perf_counter() - started
            rnd.prompt_tokens, rnd.completion_tokens = reply.prompt_tokens, reply.completion_tokens
            if n == self.iters:
                break  # no round left: the hidden tests decide
            candidate = self.program(reply.text, reply.continues_prompt)
            if candidate is None:
                rnd.feedback = "unparsable"
                feedback = NO_CODE
            else:
                started = time.perf_counter()
                result = run_tests_tool(sandbox, candidate, self.feedback_tests, self.timeout)
                rnd.execute_s = time.perf_counter() - started
                rnd.feedback = result.status
                if result.passed:
                    break  # the agent is done; the hidden tests still grade it
                feedback = _failure_message(result)
            started = time.perf_counter()
            messages = messages + [{"role": "assistant", "content": reply.text}, {"role": "user", "content": feedback}]
            rnd.reflect_s = time.perf_counter() - started
        return self._grade(sandbox, reply)

    def _grade(self, sandbox, reply) -> Outcome:
        outcome = Outcome(Status.UNPARSABLE, reason="no code found in the reply", completion=reply.text,
                          model_s=sum(r.propose_s for r in self.rounds),
                          prompt_tokens=sum(r.prompt_tokens for r in self.rounds),
                          completion_tokens=sum(r.completion_tokens for r in self.rounds),
                          extra={"iterations": [r.as_dict() for r in self.rounds]})
        candidate = self.program(reply.text, reply.continues_prompt)
        if candidate is None:
            return outcome
        started = time.perf_counter()
        result = run_tests_tool(sandbox, candidate, self.hidden_tests, self.timeout)
        outcome.sandbox_s = time.perf_counter() - started + sum(r.execute_s for r in self.rounds)
        outcome.status, outcome.reason = Status(result.status), result.reason
        outcome.program, outcome.stdout, outcome.stderr = candidate.source, result.stdout, result.stderr
        return outcome


NO_CODE = "I could not find a Python code block with the full function in your reply. Reply with it in one ```python block."


def _failure_message(result: ToolResult) -> str:
    detail = (result.stderr or result.stdout).strip()[-1200:]
    return (f"I ran your function against the tests: {result.status} ({result.reason}).\n"
            f"```\n{detail}\n```\n"
            "Think about what went wrong, then reply with the complete corrected function in one ```python block.")
