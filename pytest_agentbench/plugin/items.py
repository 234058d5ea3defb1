"""Tasks -> pytest items: the case each item runs, its id, its markers, and exact task-id selection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest

from ..models import ModelSpec, ReplaySpec
from ..suites.base import Suite
from ..task import Task

CASE_ARG = "agentbench_case"


@dataclass(frozen=True, eq=False)
class Case:
    """One item: a model, a task, a sample index. Built in the same order on every xdist worker.
    `no_rows` marks the one item of a task that a replay file has no row for (it is skipped, as a group)."""

    model: ModelSpec
    suite: Suite
    task: Task
    sample: int
    no_rows: str | None = None

    def key(self) -> tuple[str, str, str, int]:
        return (self.model.name, self.suite.name, self.task.id, self.sample)


def params(models: list[ModelSpec], suite: Suite, tasks: list[Task], samples_for) -> list:
    """pytest.param per case: id `[model-]task[-sN]` (model only with several models, sN only when the task has
    several samples). `samples_for(model, task_id)` says how many; 0 (a replay file without rows for the task)
    gives one item that is skipped."""
    out = []
    for model in models:
        for task in tasks:
            n = samples_for(model, task.id)
            marks = [getattr(pytest.mark, m) for m in (suite.name, *suite.markers, *task.markers)]
            prefix = [model.name] if len(models) > 1 else []
            if n == 0:
                # only a replay model has a task without samples (RunConfig.samples_for)
                why = f"replay file {cast(ReplaySpec, model).path} has no rows for this task"
                out.append(
                    pytest.param(Case(model, suite, task, 0, no_rows=why), id="-".join(prefix + [task.id]), marks=marks)
                )
            for sample in range(n):
                parts = prefix + [task.id] + ([f"s{sample}"] if n > 1 else [])
                out.append(pytest.param(Case(model, suite, task, sample), id="-".join(parts), marks=marks))
    return out


def case_of(item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(CASE_ARG) if callspec is not None else None


def is_expression(keyword: str) -> bool:
    try:
        from _pytest.mark.expression import Expression

        Expression.compile(keyword.strip())
        return True
    except Exception:  # a syntax error (pytest reports it) or the private API moved: leave -k to pytest
        return False


def select_by_keyword(items: list, keyword: str) -> tuple[list, list]:
    """pytest's -k, except that a word equal to some task's id matches that task only.

    pytest matches -k words as substrings, so `-k HumanEval/1` would also pick HumanEval/10..19 and
    /100..163. Every other word keeps pytest's meaning. Returns (kept, deselected).
    """
    from _pytest.mark import KeywordMatcher
    from _pytest.mark.expression import Expression

    expr = Expression.compile(keyword)
    task_ids = {c.task.id.lower() for c in map(case_of, items) if c is not None}
    kept: list = []
    dropped: list = []
    for item in items:
        case = case_of(item)
        own = case.task.id.lower() if case is not None else None
        fallback = KeywordMatcher.from_item(item)

        def match(name: str, /, **kwargs) -> bool:
            low = name.lower()
            if low in task_ids and not kwargs:
                return low == own  # noqa: B023  (called at once, in this iteration)
            return fallback(name, **kwargs)  # noqa: B023

        (kept if expr.evaluate(match) else dropped).append(item)
    return kept, dropped
