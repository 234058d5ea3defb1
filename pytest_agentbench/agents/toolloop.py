"""The THOUGHT / TOOL_CALL / FINAL loop: the model calls tools until it gives a final answer.

Each step: generate -> parse (strictly) -> run the tool in the sandbox -> show the model an OBSERVATION.
A reply that follows no protocol ends the run as unparsable. The trace keeps every step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..backends.base import Request
from ..tools import Final, Tool, ToolCall, Unparsable, parse_reply


@dataclass
class Trace:
    steps: list[dict] = field(default_factory=list)
    answer: str | None = None
    unparsable: str | None = None
    model_s: float = 0.0
    tool_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_reply: str = ""

    @property
    def tool_calls(self) -> list[dict]:
        return [s for s in self.steps if s["kind"] == "tool_call"]

    @property
    def first_choice(self) -> str:
        """What the model did first: a tool's name, "no_call" (answered directly) or "unparsable"."""
        if not self.steps:
            return "unparsable"
        first = self.steps[0]
        return first["tool"] if first["kind"] == "tool_call" else "no_call" if first["kind"] == "final" else "unparsable"


def run_tool_loop(backend, sandbox, messages: list[dict], tools: dict[str, Tool],
                  request: Callable[[list[dict]], Request], timeout: float, max_steps: int = 5) -> Trace:
    trace = Trace()
    for _ in range(max_steps):
        started = time.perf_counter()
        reply = backend.generate(request(messages))
        trace.model_s += time.perf_counter() - started
        trace.prompt_tokens += reply.prompt_tokens
        trace.completion_tokens += reply.completion_tokens
        trace.last_reply = reply.text
        parsed = parse_reply(reply.text, tools)
        if isinstance(parsed, Unparsable):
            trace.steps.append({"kind": "unparsable", "reason": parsed.reason})
            trace.unparsable = parsed.reason
            return trace
        if isinstance(parsed, Final):
            trace.steps.append({"kind": "final", "answer": parsed.answer})
            trace.answer = parsed.answer
            return trace
        assert isinstance(parsed, ToolCall)
        result = tools[parsed.tool].run(parsed.args, sandbox, timeout)
        trace.tool_s += result.seconds
        trace.steps.append({"kind": "tool_call", "tool": parsed.tool, "args": parsed.args, "ok": result.ok,
                            "output": result.output[-500:], "seconds": round(result.seconds, 6)})
        messages = messages + [{"role": "assistant", "content": reply.text},
                               {"role": "user", "content": f"OBSERVATION: {result.output}"}]
    trace.unparsable = f"no FINAL: after {max_steps} steps"
    return trace
