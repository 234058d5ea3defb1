"""The THOUGHT / TOOL_CALL / FINAL loop: the model calls tools until it gives a final answer.

Each step: generate -> parse (strictly, tools.parse_reply) -> run the tool in the sandbox -> show the model an
OBSERVATION. A reply that follows no protocol is a protocol error: shown to the model, counted, and the run goes on
(`on_protocol_error="feedback"`, agent scenarios) or ends there (`"stop"`, the tool-use suite, where an unparsable
reply is the outcome). A known tool called with arguments that do not fit it is a protocol error too, or, with
`bad_args="tool_error"` (the tool-use suite), a tool call that failed: the model sees the error as an OBSERVATION
and may recover, as from a tool that raised or timed out. The run also ends at the step limit or the time limit.
The trace keeps every step.

`native=True` (--prompt-format native, docs/function-calling.md): the tools go to the model API as functions, a
reply's first native call is the step's TOOL_CALL and a reply without calls its FINAL (tools.read_native); the call
goes into the history as the assistant's `tool_calls` (ids `call_<step>`, so requests never depend on the server's
random ids) and its result as a `tool` message. A call the engine could not read is a protocol error as above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..trace import Trace
from .base import Agent, AgentContext, add_generation, wall_clock
from .tools import BadArgs, Final, ToolCall, ToolResult, Unparsable, function_of, parse_reply, read_native, thought_of

PROTOCOL_HELP = (
    "Reply with optional THOUGHT: lines, then exactly one of\n"
    'TOOL_CALL: {"tool": "<tool name>", "args": {...}}\n'
    "FINAL: <your answer>"
)


NATIVE_HELP = "Call one of the functions you were given, or reply with your answer in plain text."


def native_text(reply) -> str:
    """A native reply as one text for the trace and the record: its content, then each call as JSON."""
    calls = [json.dumps({"name": c.get("name"), "arguments": c.get("arguments")}) for c in reply.tool_calls]
    if reply.protocol_error:
        calls.append(f"[malformed native call: {reply.protocol_error}]")
    return "\n".join(part for part in (reply.text, *calls) if part)


@dataclass
class ToolLoopAgent(Agent):
    name = "tool_loop"
    on_protocol_error: str = "feedback"  # or "stop"
    bad_args: str = "protocol"  # or "tool_error": a failed call of the tool, shown as its observation
    native: bool = False  # the model API's own function calling instead of the text protocol
    tool_choice: str = "auto"  # native: auto, required or none

    def run(self, ctx: AgentContext, messages: list[dict], trace: Trace) -> Trace:
        env = ctx.tool_env()
        functions = tuple(function_of(t) for t in ctx.tools.values()) if self.native else ()
        for step in range(ctx.limits.max_steps):
            if ctx.out_of_time():
                trace.outcome.error = f"time limit reached ({ctx.limits.total_s:g} s)"
                break
            reply = ctx.generate(messages, tools=functions, tool_choice=self.tool_choice)
            metrics = add_generation(trace, reply)
            if self.native:
                said = native_text(reply)
                parsed = read_native(reply, ctx.tools)
                thought = reply.text.strip() if reply.tool_calls else ""
                if len(reply.tool_calls) > 1:  # only the first runs: one call per step, as in the text protocol
                    trace.details["calls_not_run"] = trace.details.get("calls_not_run", 0) + len(reply.tool_calls) - 1
            else:
                said = reply.text
                parsed = parse_reply(reply.text, ctx.tools)
                thought = thought_of(reply.text)
            trace.details["last_reply"] = said
            if thought:
                trace.add("thought", text=thought)
            if isinstance(parsed, BadArgs) and self.bad_args == "tool_error":
                trace.add("tool_call", tool=parsed.tool, args=parsed.args, **metrics)
                result = ToolResult(False, f"ERROR: {parsed.reason}"[: env.output_cap], error="bad_args")
                ran = (wall_clock(),) * 2  # refused before it ran
            elif isinstance(parsed, Unparsable):
                trace.add("error", text=parsed.reason, error="protocol", reply=said, **metrics)
                trace.protocol_errors += 1
                if self.on_protocol_error == "stop":
                    trace.outcome.error = parsed.reason
                    break
                messages = messages + [
                    {"role": "assistant", "content": reply.text},
                    {
                        "role": "user",
                        "content": f"PROTOCOL ERROR: {parsed.reason}.\n{NATIVE_HELP if self.native else PROTOCOL_HELP}",
                    },
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
            if self.native:
                call_id = f"call_{step}"
                call = {"name": parsed.tool, "arguments": json.dumps(parsed.args, ensure_ascii=False)}
                messages = messages + [
                    {
                        "role": "assistant",
                        "content": reply.text or None,
                        "tool_calls": [{"id": call_id, "type": "function", "function": call}],
                    },
                    {"role": "tool", "tool_call_id": call_id, "content": result.output},
                ]
            else:
                messages = messages + [
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": f"OBSERVATION: {result.output}"},
                ]
        else:
            trace.step_limit_hit = True
            trace.outcome.error = f"step limit reached ({ctx.limits.max_steps} steps)"
        trace.outcome.num_steps = len(trace.steps)
        return trace
