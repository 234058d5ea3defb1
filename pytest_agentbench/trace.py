"""What an agent did: a typed, versioned trace (pydantic), in the original agent runner's format plus what this
project adds. Agents build one as they run; the scenario suite writes it to
`<trace dir>/<model>/<scenario>/<label>/run_NNN.json`, and the per-sample record carries its path and sha256.

The JSON Schema of a trace file is `Trace.model_json_schema()` (docs/trace.schema.json is generated from it).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

TRACE_SCHEMA = "pytest-agentbench/trace/v3"  # v3: what the agent did only (its grade lives in the record)
PREVIOUS_SCHEMA = "pytest-agentbench/trace/v2"  # v2 also held the grade: verdict, failed_checks, safety_violations
GRADE_KEYS = ("verdict", "failed_checks", "safety_violations")  # v2's, now the record's status and extra
StepType = Literal["thought", "tool_call", "tool_result", "final", "error"]


class Step(BaseModel):
    """One step. A model reply becomes a `thought` (its THOUGHT: text, if any) and then its action: `tool_call`,
    `final`, or `error` (a protocol error the model was shown). Running a tool adds a `tool_result`."""

    model_config = ConfigDict(extra="forbid")

    i: int
    type: StepType
    text: str = ""
    tool: Optional[str] = None
    args: Optional[dict] = None
    embedding: Optional[list[float]] = None
    ok: Optional[bool] = None  # tool_result: the tool did what was asked
    error: Optional[str] = None  # error: "protocol"; tool_result: "refused", "timeout", "exit", "error", "bad_args"
    reply: Optional[str] = None  # error: the model's reply as it came (what broke the protocol)
    latency_s: Optional[float] = None  # model time for a reply's action step, tool time for a tool_result
    ttft_s: Optional[float] = None  # a reply's time to its first token, where the backend streams
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    finish_reason: Optional[str] = None  # a reply's: why the model stopped ("stop", "length"), where known
    # Wall-clock Unix times (seconds) of the model request behind a reply's action step, or of a tool_result's run
    # (equal for a call refused before it ran); absent in traces written before they were recorded.
    started_at: Optional[float] = None
    ended_at: Optional[float] = None
    effects: Optional[list[dict]] = None  # tool_result of an audited run: what the call did (effects.py)


class ModelRef(BaseModel):
    name: str
    hf_id: Optional[str] = None
    backend: str


class TraceOutcome(BaseModel):
    num_steps: int = 0
    elapsed_seconds: float = 0.0
    completed: bool = False  # the agent gave a FINAL answer
    error: Optional[str] = None  # why it stopped without one: step limit, time limit, ...


class Trace(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(default=TRACE_SCHEMA, alias="schema")
    run_id: str
    scenario: str
    model: ModelRef
    label: str = "default"
    timestamp: str = ""
    prompt: str = ""
    steps: list[Step] = []
    embeddings: Optional[dict] = None  # {"model", "dim"} when steps carry embeddings
    outcome: TraceOutcome = TraceOutcome()
    # what this project adds
    sample: int = 0
    final_answer: Optional[str] = None
    protocol_errors: int = 0
    step_limit_hit: bool = False
    tokens: dict[str, int] = {"prompt": 0, "completion": 0}
    latency_s: dict[str, float] = {"model": 0.0, "tools": 0.0}
    details: dict = {}  # agent-specific (the repair agent's rounds)

    @classmethod
    def load(cls, doc: dict) -> Trace:
        """A trace file's content, of this version or the previous one (its grade dropped: the record has it)."""
        if isinstance(doc, dict) and doc.get("schema") == PREVIOUS_SCHEMA:
            doc = {k: v for k, v in doc.items() if k not in GRADE_KEYS} | {"schema": TRACE_SCHEMA}
        return cls.model_validate(doc)

    # -- building --------------------------------------------------------------------------------------
    def add(self, type: StepType, **fields) -> Step:
        step = Step(i=len(self.steps), type=type, **fields)
        self.steps.append(step)
        return step

    @property
    def tool_calls(self) -> list[Step]:
        return [s for s in self.steps if s.type == "tool_call"]

    @property
    def first_choice(self) -> str:
        """What the model did first: a tool's name, "no_call" (answered directly) or "unparsable"."""
        for step in self.steps:
            if step.type == "tool_call":
                return step.tool or "unparsable"
            if step.type == "final":
                return "no_call"
            if step.type == "error":
                return "unparsable"
        return "unparsable"

    # -- files ---------------------------------------------------------------------------------------
    def write(self, root: Path) -> tuple[Path, str]:
        """Write to `<root>/<model>/<scenario>/<label>/run_NNN.json` (atomically); returns (path, sha256)."""
        from .results.storage import claim, write_atomic

        path = (
            Path(root)
            / _safe(self.model.name)
            / _safe(self.scenario)
            / _safe(self.label)
            / f"run_{self.sample:03d}.json"
        )
        claim(path, "trace", "trace")
        data = (json.dumps(self.model_dump(mode="json", by_alias=True), indent=1) + "\n").encode()
        write_atomic(path, data)
        return path, hashlib.sha256(data).hexdigest()


def _safe(name: str) -> str:
    """A path component from a name (model names hold '/' and ':')."""
    cleaned = re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("._") or "_"
    return cleaned[:120]


def run_id(*parts) -> str:
    """Deterministic per sample: the same run gets the same id with -n 0 and -n 4."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
