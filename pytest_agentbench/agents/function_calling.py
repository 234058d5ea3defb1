"""The function-calling agent: BFCL's inference loop for a model in prompting mode.

Single turn: one reply, decoded later by the suite. Multi-turn (`BaseHandler.inference_multi_turn_prompting` in
bfcl-eval): for each user turn (a miss-function turn brings the held-out function docs instead), the model replies;
a reply that decodes to calls is executed (`execute(history, calls)`, in the sandbox) and the results go back as the
next message; a reply that does not decode, or decodes to nothing, ends the turn. More than `step_limit` executed
steps in one turn force-quit the whole conversation (BFCL's MAXIMUM_STEP_LIMIT), as does the run's time limit.
The handler (calls.PromptingHandler) is the only thing that reads replies or writes messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..trace import Trace
from .base import Agent, AgentContext, add_generation


@dataclass
class CallAgent(Agent):
    name = "calls"
    handler: object
    turns: list[list[dict]] = field(default_factory=list)  # the user messages of turns 2..n (multi-turn)
    holdout: dict[str, list] = field(default_factory=dict)  # turn index -> function docs first shown then
    execute: Callable[[list[list[str]], list[str]], list[str]] | None = None
    step_limit: int = 20

    def run(self, ctx: AgentContext, messages: list[dict], trace: Trace) -> Trace:
        if self.execute is None:  # single turn
            reply = ctx.generate(messages)
            trace.add("final", text=reply.text, **add_generation(trace, reply))
            trace.final_answer = reply.text
            trace.details["responses"] = [[reply.text]]
            trace.outcome.completed = True
            return trace
        responses: list[list[str]] = []
        executed: list[list[str]] = []  # every step run so far, in order (the simulators' state)
        for index, turn in enumerate([None, *self.turns]):
            if index > 0:
                held = self.holdout.get(str(index))
                messages = messages + ([self.handler.more_functions_message(held)] if held is not None else turn)
            replies: list[str] = []
            responses.append(replies)
            steps = 0
            while True:
                if ctx.out_of_time():
                    trace.outcome.error = f"time limit reached ({ctx.limits.total_s:g} s)"
                    break
                reply = ctx.generate(messages)
                metrics = add_generation(trace, reply)
                replies.append(reply.text)
                messages = messages + [{"role": "assistant", "content": reply.text}]
                try:
                    calls = self.handler.decode_execute(reply.text)
                except Exception:  # BFCL: a reply that does not decode ends the turn
                    calls = []
                if not calls or calls == [""]:
                    trace.add("final", text=reply.text, **metrics)
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
                messages = messages + [self.handler.results_message(results, calls)]
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
