"""A finished sample as operations of the OpenTelemetry GenAI semantic conventions (status Development; names as in
semantic-conventions v1.41): the agent's invocation, one chat per model reply, one tool execution per tool run, with
the agents' own wall-clock times (none invented). Pure data; results/otel.py sends them through the SDK."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_LIMIT = 4000  # characters of a reply, tool argument or tool result kept in a span

# Attribute and event names of the GenAI semantic conventions.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
TEMPERATURE = "gen_ai.request.temperature"
MAX_TOKENS = "gen_ai.request.max_tokens"
SEED = "gen_ai.request.seed"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
VERDICT = "agentbench.pass"  # gen_ai.evaluation.name of the verdict: score 1.0 passed, 0.0 not


# -- a sample as operations -----------------------------------------------------------------------------------------
@dataclass
class Operation:
    """One model reply (`chat`) or tool run (`execute_tool`) of a sample, with its times (Unix seconds)."""

    kind: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def cut(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = text or ""
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more characters]"


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def message(role: str, parts: list[dict], finish_reason: str | None = None) -> str:
    """gen_ai.input/output.messages (their JSON schema), as a JSON string: OpenTelemetry attributes hold no maps."""
    message: dict[str, Any] = {"role": role, "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return _json([message])


def text_part(content: str | None) -> dict:
    return {"type": "text", "content": cut(content)}


def _chat(step_or_round: dict, parts: list[dict]) -> Operation:
    s = step_or_round
    attrs: dict[str, Any] = {
        INPUT_TOKENS: int(s.get("prompt_tokens") or 0),
        OUTPUT_TOKENS: int(s.get("completion_tokens") or 0),
    }
    if s.get("finish_reason"):
        attrs[FINISH_REASONS] = [s["finish_reason"]]
    if s.get("ttft_s") is not None:
        attrs[TIME_TO_FIRST_CHUNK] = float(s["ttft_s"])
    if parts:
        attrs[OUTPUT_MESSAGES] = message("assistant", parts, s.get("finish_reason"))
    return Operation("chat", s["started_at"], s["ended_at"], attrs)


def _tool(name: str, call_id: str, start: float, end: float, arguments, result: str, error: str | None) -> Operation:
    attrs: dict[str, Any] = {TOOL_NAME: name, TOOL_TYPE: "function", TOOL_CALL_ID: call_id, TOOL_RESULT: cut(result)}
    if arguments is not None:
        attrs[TOOL_ARGUMENTS] = cut(_json(arguments))
    return Operation("execute_tool", start, end, attrs, error)


def from_steps(steps: Iterable[dict]) -> list[Operation]:
    """Operations of an agent's trace steps (trace.Step as dicts): each reply's action step with its thought before
    it, each tool_result with the tool_call it answers."""
    ops: list[Operation] = []
    thought: str | None = None
    call: dict | None = None
    for step in steps:
        kind = step.get("type")
        if kind == "thought":
            thought = step.get("text")
            continue
        if kind in ("tool_call", "final", "error") and step.get("started_at") is not None:
            parts = [text_part(thought)] if thought else []
            if kind == "tool_call" and step.get("args") is not None:
                parts.append(
                    {
                        "type": "tool_call",
                        "id": f"call_{step['i']}",
                        "name": step.get("tool"),
                        "arguments": step["args"],
                    }
                )
            else:
                parts.append(text_part(step.get("reply") or step.get("text")))
            ops.append(_chat(step, parts))
        thought = None
        if kind == "tool_call":
            call = step
        elif kind == "tool_result":
            if step.get("started_at") is not None:
                ops.append(
                    _tool(
                        step.get("tool") or "tool",
                        f"call_{(call or step)['i']}",
                        step["started_at"],
                        step["ended_at"],
                        (call or {}).get("args"),
                        step.get("text", ""),
                        None if step.get("ok") else step.get("error") or "error",
                    )
                )
            call = None
    return ops


def from_rounds(rounds: list[dict], last_reply: str) -> list[Operation]:
    """Operations of the repair agent's rounds (the record's `extra.iterations`): propose = a reply, execute = the
    feedback tests run as the tool `run_tests`. Only the last reply's text is in the record."""
    ops: list[Operation] = []
    for n, rnd in enumerate(rounds):
        if rnd.get("propose_at"):
            start, end = rnd["propose_at"]
            ops.append(
                _chat(
                    {**rnd, "started_at": start, "ended_at": end}, [text_part(last_reply)] if n == len(rounds) - 1 else []
                )
            )
        if rnd.get("execute_at"):
            start, end = rnd["execute_at"]
            status = rnd.get("feedback") or ""
            ops.append(
                _tool(
                    "run_tests",
                    f"call_{n}",
                    start,
                    end,
                    None,
                    status,
                    None if status == "passed" else status or "error",
                )
            )
    return ops


def _trace_file(record: dict) -> dict | None:
    """The agent's trace file named by the record, when it is still the file the record names (same sha256)."""
    ref = record.get("trace")
    if not isinstance(ref, dict) or not ref.get("path"):
        return None
    import hashlib

    try:
        data = Path(ref["path"]).read_bytes()
    except OSError:
        return None
    if ref.get("sha256") and hashlib.sha256(data).hexdigest() != ref["sha256"]:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def operations(record: dict) -> tuple[list[Operation], dict | None]:
    """A record's model replies and tool runs, from what its suite keeps: the trace file (agent scenarios), the
    steps in `extra.steps` (tool use), the repair agent's rounds (HumanEval, HumanEvalFix); and the trace file."""
    trace = _trace_file(record)
    extra = record.get("extra") or {}
    if trace is not None:
        return from_steps(trace.get("steps") or []), trace
    if isinstance(extra.get("steps"), list):
        return from_steps(extra["steps"]), None
    if isinstance(extra.get("iterations"), list):
        return from_rounds(extra["iterations"], record.get("completion") or ""), None
    return [], None
