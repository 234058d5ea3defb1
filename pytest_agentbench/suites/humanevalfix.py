"""HumanEvalFix (the Python split of HumanEvalPack): repair a buggy function so its tests pass.

Data: `--humanevalfix-path PATH` (JSONL read directly; parquet through `datasets`) or, by default,
`datasets.load_dataset("bigcode/humanevalpack", "python")`. Offline with no cached copy, the suite's items
are skipped with a line saying how to stage the data; the other suites still run.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field

from ..agents.react import RepairAgent, grade_proposal
from ..errors import first_line
from ..extract import CODE_BLOCK, code_block_rule
from ..outcome import Outcome
from ..provenance import hub_reachable, sha256_file
from ..registry import Opt
from ..sandbox import Candidate
from ..task import Task
from .base import Suite, jsonl_rows
from .humaneval import build_candidate, hidden_tests, no_row_fits, read_rows

HUB_ID, HUB_CONFIG = "bigcode/humanevalpack", "python"
REQUIRED = ("task_id", "prompt", "buggy_solution", "canonical_solution", "entry_point", "test", "example_test")
INSTRUCTION = (
    "Fix the bug in the following Python function `{entry}`. Keep its name and signature. "
    "Reply with the complete corrected function, including the imports it needs, in a single "
    "```python code block.\n\n```python\n{prompt}{buggy}```"
)
STAGE_HINT = (
    f"HumanEvalFix data unavailable here ({{why}}): pass --humanevalfix-path PATH to a JSONL or parquet "
    f"copy, or run once with network access so `datasets` caches {HUB_ID}"
)
GIVEN_PATH_HINT = "HumanEvalFix data unavailable: {why}"


class HumanEvalFix(Suite):
    name = "humanevalfix"
    options = (
        Opt(
            "--humanevalfix-path",
            "humanevalfix_path",
            "HumanEvalFix data as JSONL or parquet (default: datasets' bigcode/humanevalpack, python)",
            metavar="PATH",
            field=Optional[str],
        ),
        Opt(
            "--humanevalfix-feedback",
            "humanevalfix_feedback",
            "tests shown to the repair agent between rounds (example keeps pass@1 honest)",
            "example",
            choices=("example", "hidden"),
            field=Literal["example", "hidden"],
        ),
        Opt(
            "--iters",
            "agentbench_iters",
            "extra propose/execute/reflect rounds of the repair agent (0: one attempt, honest pass@1)",
            0,
            type=int,
            metavar="N",
            field=Annotated[int, Field(ge=0)],
        ),
    )

    def __init__(self, path: str | Path | None = None, iters: int = 0, feedback: str = "example"):
        if feedback not in ("example", "hidden"):
            raise ValueError(f"feedback must be 'example' or 'hidden', got {feedback!r}")
        self.path = Path(path).expanduser() if path else None
        self.iters = iters
        self.feedback = feedback
        self._unavailable: str | None = None

    @classmethod
    def from_options(cls, option) -> HumanEvalFix:
        return cls(
            path=option("humanevalfix_path"), iters=option("agentbench_iters"), feedback=option("humanevalfix_feedback")
        )

    @property
    def writes_traces(self) -> bool:  # type: ignore[override]  # Suite's plain flag, read here from iters
        """With repair rounds it is an agent: every round's reply and feedback go to a trace file."""
        return self.iters > 0

    def settings(self) -> dict:
        return {"iters": self.iters, "feedback": self.feedback, "end_after": CODE_BLOCK}

    # -- data ------------------------------------------------------------------------------------
    def load(self) -> list[Task]:
        try:
            rows = self._rows()
        except (OSError, ConnectionError, ValueError, ImportError) as exc:  # ImportError: datasets, the [hf] extra
            why = first_line(str(exc))[:200] or type(exc).__name__
            hint = GIVEN_PATH_HINT if self.path is not None else STAGE_HINT  # never advise the option given
            self._unavailable = hint.format(why=why)
            return [Task(id=f"{self.name}-data", prompt="")]
        return [row if isinstance(row, Task) else _task(row) for row in rows]

    def _rows(self) -> list:
        if self.path is not None and self.path.suffix in (".jsonl", ".json", ".gz"):
            if not self.path.is_file():
                raise FileNotFoundError(f"no such file: {self.path}")
            return read_rows(self.path, REQUIRED)
        rows = [_checked(dict(row), n) for n, row in enumerate(self._dataset(), 1)]
        return no_row_fits(self.path, rows) if self.path is not None else rows

    def _dataset(self):
        if self.path is not None:
            import datasets

            return datasets.load_dataset("parquet", data_files=str(self.path), split="train")
        if not hub_reachable():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # use a cached copy if there is one; fail fast if not
            os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        import datasets

        try:
            return datasets.load_dataset(HUB_ID, HUB_CONFIG, split="test")
        except Exception as exc:  # datasets raises many kinds; all mean "not here"
            raise ConnectionError(str(exc)) from exc

    def skip_reason(self) -> str | None:
        return self._unavailable

    @functools.cache  # per instance: several suites of a class may be live
    def dataset_sha256(self) -> str | None:
        if self.path is not None and self.path.is_file():
            return sha256_file(self.path)
        return None if self._unavailable else f"hub:{HUB_ID}/{HUB_CONFIG}"

    # -- the agent -------------------------------------------------------------------------------
    def agent(self, ctx):
        task, data = ctx.task, ctx.task.data
        entry = data["entry_point"]
        hidden = hidden_tests(task.prompt, data["test"], entry, call_check=False)
        feedback = (
            hidden
            if self.feedback == "hidden"
            else hidden_tests(task.prompt, data["example_test"], entry, call_check=False)
        )
        reference = build_candidate(task.prompt, task.reference, True, entry)
        limit = self.time_limit(task.id, reference, hidden, ctx.sandbox, ctx.params.task_timeout)

        def program(reply: str, continues: bool) -> Candidate | None:
            return build_candidate(task.prompt, reply, continues, entry)

        ctx.state.update(program=program, hidden=hidden, limit=limit)
        agent = RepairAgent(
            program=program, feedback_tests=feedback, timeout=limit, iters=self.iters, end_after=code_block_rule(entry)
        )
        prompt = INSTRUCTION.format(entry=entry, prompt=task.prompt, buggy=data["buggy_solution"])
        return agent, [{"role": "user", "content": prompt}], "default"

    def grade(self, ctx, trace) -> Outcome:
        st = ctx.state
        outcome = grade_proposal(trace, ctx, st["program"], st["hidden"], st["limit"])
        outcome.extra["time_limit_s"] = round(st["limit"], 3)
        return outcome


def _task(row: dict) -> Task:
    return Task(
        id=row["task_id"],
        prompt=row["prompt"],
        reference=row["canonical_solution"],
        reference_continues_prompt=True,
        data={k: row[k] for k in ("buggy_solution", "entry_point", "test", "example_test")},
    )


def _checked(row: dict, n: int) -> dict | Task:
    missing = [k for k in REQUIRED if not isinstance(row.get(k), str)]
    if missing:
        rid = row.get("task_id")
        if not isinstance(rid, str):
            rid = f"row {n}"
        return Task(id=rid, prompt="", problem=f"dataset row {rid} is missing {', '.join(missing)}")
    return row


def rows_as_replay(path: Path, field: str) -> str:
    """JSONL replay rows answering every task with one of its fields (e.g. the buggy code, unchanged)."""
    rows = [row for _, row, _ in jsonl_rows(path) if row is not None]
    return "".join(json.dumps({"task_id": r["task_id"], "completion": r[field]}) + "\n" for r in rows)
