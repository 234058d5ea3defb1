"""The function-calling agent: BFCL's inference loop for a model in prompting mode.

Single turn: one reply, decoded later by the suite. Multi-turn (`BaseHandler.inference_multi_turn_prompting` in
bfcl-eval): for each user turn (a miss-function turn brings the held-out function docs instead), the model replies;
a reply that decodes to calls is executed (`execute(history, calls)`, in the sandbox) and the results go back as the
next message; a reply that does not decode, or decodes to nothing, ends the turn. More than `step_limit` executed
steps in one turn force-quit the whole conversation (BFCL's MAXIMUM_STEP_LIMIT), as does the run's time limit.
The handler (suites/bfcl/handler.py: PromptingHandler, or NativeHandler for native function calling, whose tools
go with every request) is the only thing that reads replies or writes messages. A native call the engine could not
read (Completion.protocol_error) is a protocol error: counted, and the reply decodes to nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..backends.base import Completion
from ..trace import Trace
from .base import Agent, AgentContext, add_generation


class Handler(Protocol):
    """What the agent asks of a protocol (suites/bfcl/handler.py)."""

    name: str

    def response(self, reply: Completion) -> Any: ...
    def assistant_message(self, reply: Completion, ids: list[str]) -> dict: ...
    def decode_execute(self, result: Any, has_tool_call_tag: bool = False) -> list[str]: ...
    def results_messages(self, results: list[str], decoded: list[str], ids: list[str]) -> list[dict]: ...
    def more_functions(self, functions: list[dict]) -> tuple[dict, list[dict]]: ...


@dataclass
class CallAgent(Agent):
    name = "calls"
    handler: Handler
    turns: list[list[dict]] = field(default_factory=list)  # the user messages of turns 2..n (multi-turn)
    holdout: dict[str, list] = field(default_factory=dict)  # turn index -> function docs first shown then
    execute: Callable[[list[list[str]], list[str]], list[str]] | None = None
    step_limit: int = 20
    tools: list[dict] = field(default_factory=list)  # native function calling: the functions as the API's tools

    def _ask(self, ctx: AgentContext, messages: list[dict], trace: Trace):
        """One reply, and the response BFCL decodes from it (its text, or its native calls)."""
        reply = ctx.generate(messages, tools=tuple(self.tools))
        metrics = add_generation(trace, reply)
        if reply.protocol_error:
            trace.add("error", text=reply.protocol_error, error="protocol", reply=reply.text, **metrics)
            trace.protocol_errors += 1
            metrics = {}
        return reply, self.handler.response(reply), metrics

    def run(self, ctx: AgentContext, messages: list[dict], trace: Trace) -> Trace:
        if self.execute is None:  # single turn
            reply, response, metrics = self._ask(ctx, messages, trace)
            trace.add("final", text=as_text(response), **metrics)
            trace.final_answer = as_text(response)
            trace.details["responses"] = [[response]]
            trace.outcome.completed = True
            return trace
        responses: list[list] = []
        executed: list[list[str]] = []  # every step run so far, in order (the simulators' state)
        for index, turn in enumerate([None, *self.turns]):
            if index > 0:
                held = self.holdout.get(str(index))
                if held is not None:
                    message, more = self.handler.more_functions(held)
                    messages, self.tools = messages + [message], self.tools + more
                else:
                    messages = messages + (turn or [])
            replies: list = []
            responses.append(replies)
            steps = 0
            while True:
                if ctx.out_of_time():
                    trace.outcome.error = f"time limit reached ({ctx.limits.total_s:g} s)"
                    break
                reply, response, metrics = self._ask(ctx, messages, trace)
                replies.append(response)
                ids = [f"call_{index}_{steps}_{i}" for i in range(len(reply.tool_calls))]
                messages = messages + [self.handler.assistant_message(reply, ids)]
                try:
                    calls = self.handler.decode_execute(response)
                except Exception:  # BFCL: a reply that does not decode ends the turn
                    calls = []
                if not calls or calls == [""]:
                    trace.add("final", text=as_text(response), **metrics)
                    break
                trace.add("tool_call", tool="bfcl", args={"turn": index, "calls": calls}, **metrics)
                started = time.perf_counter()
                results = self.execute(executed, calls)
                seconds = time.perf_counter() - started
                trace.latency_s["tools"] += seconds
                trace.add(
                    "tool_result", tool="bfcl", text="\n".join(results)[-4000:], ok=True, latency_s=round(seconds, 6)
                )
                executed.append(calls)
                messages = messages + self.handler.results_messages(results, calls, ids)
                steps += 1
                if steps > self.step_limit:
                    trace.step_limit_hit = True
                    trace.outcome.error = f"more than {self.step_limit} steps in turn {index}"
                    break
            if trace.outcome.error:
                break
        trace.details["responses"] = responses
        trace.outcome.completed = trace.outcome.error is None
        return trace


def as_text(response) -> str:
    """A response as text for the trace and the record: a reply's text, or its native calls as JSON."""
    return response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
