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


def exact_task_selection(items: list, keyword: str) -> tuple[list, list]:
    """Narrow pytest's -k: a word that is exactly some task's id selects that task only.

    pytest matches -k words as substrings, so `-k HumanEval/1` would also pick HumanEval/10..19 and
    /100..163. Other words keep pytest's meaning. Returns (kept, deselected).
    """
    try:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression
    except ImportError:  # pragma: no cover - private API moved: fall back to pytest's own -k
        return items, []
    cases = {id(item): case_of(item) for item in items}
    task_ids = {c.task.id.lower() for c in cases.values() if c is not None}
    if not task_ids or not keyword:
        return items, []
    expr = Expression.compile(keyword)
    kept, dropped = [], []
    for item in items:
        case = cases[id(item)]
        if case is None:
            kept.append(item)
            continue
        fallback = KeywordMatcher.from_item(item)
        own = case.task.id.lower()

        def match(name: str, /, **kwargs) -> bool:
            low = name.lower()
            return low == own if low in task_ids and not kwargs else fallback(name, **kwargs)

        (kept if expr.evaluate(match) else dropped).append(item)
    return kept, dropped
