"""Shards: one run spread over N processes or machines that a scheduler already runs (a CI matrix, a Kubernetes
Indexed Job, a Slurm array), each running the items of its tasks, merged afterwards into one report (results/merge.py).

A task belongs to shard `1 + sha256(task id) mod N`: every model and sample of a task lands in the same shard, adding
a model or a sample does not move tasks, and every machine computes the same split with no coordination. Each shard
records the *plan* of the whole run (the items selected by -k/-m before the shard's own selection: per model and
suite, the samples of each task), so the merge knows which tasks a missing shard should have run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import AgentbenchError

#: Variables schedulers set to a job's index (0-based), tried in order by `--agentbench-shard env/N`.
#: Slurm's array index is taken relative to SLURM_ARRAY_TASK_MIN, so `--array=0-3` and `--array=1-4` both work.
SCHEDULER_VARS = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")
_SPEC = re.compile(r"^\s*(env|\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """What the shard's files add to their stem: `report.json` -> `report-shard-2-of-3.json`."""
        return f"-shard-{self.index}-of-{self.count}"

    def owns(self, task_id: str) -> bool:
        return shard_of(task_id, self.count) == self.index


def shard_of(task_id: str, count: int) -> int:
    """The shard (1-based) of a task among `count`: stable across machines, Python versions and runs."""
    digest = hashlib.sha256(task_id.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def parse_shard(value: str | None, var: str | None = None, environ: Mapping[str, str] | None = None) -> Shard | None:
    """`--agentbench-shard I/N` or `env/N` (I from the scheduler's variable, or `--agentbench-shard-var NAME`: a
    0-based index as Kubernetes gives it). Raises AgentbenchError with one line."""
    if value is None:
        if var:
            raise AgentbenchError("--agentbench-shard-var needs --agentbench-shard env/N")
        return None
    found = _SPEC.match(value)
    if not found:
        raise AgentbenchError(f"--agentbench-shard must be I/N or env/N (got {value!r})")
    count = int(found.group(2))
    if count < 1:
        raise AgentbenchError(f"--agentbench-shard: N must be at least 1 (got {value!r})")
    if found.group(1) != "env":
        if var:
            raise AgentbenchError("--agentbench-shard-var reads I from a variable: give --agentbench-shard env/N")
        index = int(found.group(1))
    else:
        index = _index_from_env(environ if environ is not None else os.environ, var)
    if not 1 <= index <= count:
        raise AgentbenchError(f"--agentbench-shard {value}: shard {index} is not in 1..{count}")
    return Shard(index, count)


def _index_from_env(environ: Mapping[str, str], var: str | None) -> int:
    names = (var,) if var else SCHEDULER_VARS
    for name in names:
        raw = environ.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            index = int(raw)
            if name == "SLURM_ARRAY_TASK_ID":
                index -= int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        except ValueError:
            raise AgentbenchError(f"--agentbench-shard env/N: ${name} is not a number ({raw!r})") from None
        return index + 1
    raise AgentbenchError(f"--agentbench-shard env/N: none of {', '.join('$' + n for n in names)} is set")


# -- the plan: what the whole run selected ------------------------------------------------------------------------
Plan = dict[str, dict[str, dict[str, int]]]  # model -> suite -> task -> samples


def make_plan(cases: Iterable) -> Plan:
    """The items selected for the whole run (every shard), from their cases: model -> suite -> task -> samples.
    Items a replay file has no rows for are left out (they never give a record; the report names them apart)."""
    plan: Plan = {}
    for case in cases:
        if case is None or case.no_rows:
            continue
        tasks = plan.setdefault(case.model.name, {}).setdefault(case.suite.name, {})
        tasks[case.task.id] = tasks.get(case.task.id, 0) + 1
    return plan


def plan_sha256(plan: Plan) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def select(items: list, shard: Shard, case_of) -> tuple[list, list]:
    """(kept, deselected): benchmark items of this shard's tasks; other items (a project's own tests) stay in every
    shard."""
    kept: list = []
    dropped: list = []
    for item in items:
        case = case_of(item)
        (kept if case is None or shard.owns(case.task.id) else dropped).append(item)
    return kept, dropped


def shard_block(shard: Shard, plan: Plan | None) -> dict:
    """What a shard's report says about it: which shard of how many, the whole run's plan (and its hash), and the
    tasks this shard covered, per model and suite."""
    plan = plan or {}
    return {
        "index": shard.index,
        "count": shard.count,
        "plan": plan,
        "plan_sha256": plan_sha256(plan),
        "tasks": {
            model: {suite: sorted(t for t in tasks if shard.owns(t)) for suite, tasks in suites.items()}
            for model, suites in plan.items()
        },
    }
