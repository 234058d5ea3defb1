"""Tasks -> pytest items: the case each item runs, its id, its markers, and exact task-id selection."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from .models import ModelSpec
from .tasks import Suite, Task

CASE_ARG = "agentbench_case"


@dataclass(frozen=True, eq=False)
class Case:
    """One item: a model, a task, a sample index. Built in the same order on every xdist worker."""

    model: ModelSpec
    suite: Suite
    task: Task
    sample: int

    def key(self) -> tuple[str, str, str, int]:
        return (self.model.name, self.suite.name, self.task.id, self.sample)


def params(models: list[ModelSpec], suite: Suite, tasks: list[Task], samples: int) -> list:
    """pytest.param per case: id `[model-]task[-sN]` (model only with several models, sN only with samples)."""
    out = []
    for model in models:
        for task in tasks:
            for sample in range(samples):
                parts = ([model.name] if len(models) > 1 else []) + [task.id] + ([f"s{sample}"] if samples > 1 else [])
                marks = [getattr(pytest.mark, m) for m in (suite.name, *suite.markers, *task.markers)]
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
    kept, dropped = [], []
    for item in items:
        case = case_of(item)
        own = case.task.id.lower() if case is not None else None
        fallback = KeywordMatcher.from_item(item)

        def match(name: str, /, **kwargs) -> bool:
            low = name.lower()
            if low in task_ids and not kwargs:
                return low == own
            return fallback(name, **kwargs)

        (kept if expr.evaluate(match) else dropped).append(item)
    return kept, dropped
