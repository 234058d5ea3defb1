"""The harness self-check: answers every task with the dataset's reference solution (pass@1 must be 1.0).

A request with native tools (--prompt-format native) gets a reference written in the text protocol as the native
reply it stands for: `TOOL_CALL: {"tool": t, "args": a}` becomes one native call, `FINAL: x` the content x, and
`NATIVE_CALLS: [{"name": n, "arguments": {...}}, ...]` (a suite's native reference, BFCL's) those calls."""

from __future__ import annotations

import json
import re

from ..errors import HarnessError
from ..models import ReferenceSpec
from .base import Backend, Completion, Request


class ReferenceBackend(Backend):
    spec_class = ReferenceSpec

    def generate(self, request: Request) -> Completion:
        ref = request.sample.reference
        if ref is None:
            raise HarnessError(f"task {request.sample.task_id} has no reference solution")
        if isinstance(ref, (list, tuple)):  # a conversation: the reply for this turn
            ref = ref[min(sum(m["role"] == "assistant" for m in request.messages), len(ref) - 1)]
        if request.tools:
            return native(ref)
        return Completion(
            text=ref, continues_prompt=request.sample.reference_continues_prompt, finish_reason="reference"
        )


_DIRECTIVE = re.compile(r"^[ \t>*`]*(TOOL_CALL|FINAL)\s*:\s*", re.M)
NATIVE_CALLS = "NATIVE_CALLS: "


def native(reply: str) -> Completion:
    """A text-protocol reply as the native reply it stands for (anything else stays text)."""
    if reply.startswith(NATIVE_CALLS):
        calls = json.loads(reply[len(NATIVE_CALLS) :])
        return Completion(
            text="",
            tool_calls=[{"name": c["name"], "arguments": json.dumps(c["arguments"])} for c in calls],
            finish_reason="reference",
        )
    found = _DIRECTIVE.search(reply)
    if found is None:
        return Completion(text=reply, finish_reason="reference")
    rest = reply[found.end() :]
    if found.group(1) == "FINAL":
        return Completion(text=rest.strip(), finish_reason="reference")
    try:
        call, _ = json.JSONDecoder().raw_decode(rest.strip())
        name, args = call["tool"], call["args"]
    except (ValueError, KeyError, TypeError):
        return Completion(text=reply, finish_reason="reference")
    return Completion(text="", tool_calls=[{"name": name, "arguments": json.dumps(args)}], finish_reason="reference")
