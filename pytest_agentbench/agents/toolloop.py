"""The THOUGHT / TOOL_CALL / FINAL loop: the model calls tools until it gives a final answer.

Each step: generate -> parse (strictly, tools.parse_reply) -> run the tool in the sandbox -> show the model an
OBSERVATION. A reply that follows no protocol is a protocol error: shown to the model, counted, and the run goes on
(`on_protocol_error="feedback"`, agent scenarios) or ends there (`"stop"`, the tool-use suite, where an unparsable
reply is the outcome). A known tool called with arguments that do not fit it is a protocol error too, or, with
`bad_args="tool_error"` (the tool-use suite), a tool call that failed: the model sees the error as an OBSERVATION
and may recover, as from a tool that raised or timed out. The run also ends at the step limit or the time limit.
The trace keeps every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..trace import Trace
from .base import Agent, AgentContext, add_generation, wall_clock
from .tools import BadArgs, Final, ToolCall, ToolResult, Unparsable, parse_reply, thought_of

PROTOCOL_HELP = (
    "Reply with optional THOUGHT: lines, then exactly one of\n"
    'TOOL_CALL: {"tool": "<tool name>", "args": {...}}\n'
    "FINAL: <your answer>"
)


@dataclass
class ToolLoopAgent(Agent):
    name = "tool_loop"
    on_protocol_error: str = "feedback"  # or "stop"
    bad_args: str = "protocol"  # or "tool_error": a failed call of the tool, shown as its observation

    def run(self, ctx: AgentContext, messages: list[dict], trace: Trace) -> Trace:
        env = ctx.tool_env()
        for _ in range(ctx.limits.max_steps):
            if ctx.out_of_time():
                trace.outcome.error = f"time limit reached ({ctx.limits.total_s:g} s)"
                break
            reply = ctx.generate(messages)
            metrics = add_generation(trace, reply)
            trace.details["last_reply"] = reply.text
            parsed = parse_reply(reply.text, ctx.tools)
            thought = thought_of(reply.text)
            if thought:
                trace.add("thought", text=thought)
            if isinstance(parsed, BadArgs) and self.bad_args == "tool_error":
                trace.add("tool_call", tool=parsed.tool, args=parsed.args, **metrics)
                result = ToolResult(False, f"ERROR: {parsed.reason}"[: env.output_cap], error="bad_args")
                ran = (wall_clock(),) * 2  # refused before it ran
            elif isinstance(parsed, Unparsable):
                trace.add("error", text=parsed.reason, error="protocol", reply=reply.text, **metrics)
                trace.protocol_errors += 1
                if self.on_protocol_error == "stop":
                    trace.outcome.error = parsed.reason
                    break
                messages = messages + [
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": f"PROTOCOL ERROR: {parsed.reason}.\n{PROTOCOL_HELP}"},
                ]
                continue
            elif isinstance(parsed, Final):
                trace.add("final", text=parsed.answer, **metrics)
                trace.final_answer = parsed.answer
                trace.outcome.completed = True
                break
            else:
                assert isinstance(parsed, ToolCall)
                trace.add("tool_call", tool=parsed.tool, args=parsed.args, **metrics)
                started_at = wall_clock()
                result = ctx.tools[parsed.tool].run(parsed.args, env)
                ran = (started_at, wall_clock())
            trace.latency_s["tools"] += result.seconds
            trace.add(
                "tool_result",
                tool=parsed.tool,
                text=result.output,
                ok=result.ok,
                error=result.error,
                latency_s=round(result.seconds, 6),
                started_at=ran[0],
                ended_at=ran[1],
                effects=result.effects,
            )
            messages = messages + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": f"OBSERVATION: {result.output}"},
            ]
        else:
            trace.step_limit_hit = True
            trace.outcome.error = f"step limit reached ({ctx.limits.max_steps} steps)"
        trace.outcome.num_steps = len(trace.steps)
        return trace
