"""Fixtures a benchmark test asks for: `task`, `backend` (one per model per process), `sandbox` (fresh per
test) and `outcome` (the agent's result, recorded for the report). Harness failures surface as setup
errors with one line, so they are never counted as the model's failures."""

from __future__ import annotations

import pytest

from ..errors import AgentbenchError, HarnessError
from ..sanitize import for_terminal
from ..session.controller import SKIP_PROPERTY
from .state import STATE

__all__ = ["agentbench_case", "task", "backend", "sandbox", "outcome"]


@pytest.fixture
def agentbench_case(request):
    pytest.fail(f"{request.node.name}: mark the test with @pytest.mark.agentbench(SUITE) to get tasks", pytrace=False)


def _skip(request, case, kind: str, reason: str):
    """Skip, and tell the controller why (the property travels with the report from an xdist worker)."""
    request.node.user_properties.append(
        (
            SKIP_PROPERTY,
            {"kind": kind, "model": case.model.name, "suite": case.suite.name, "task": case.task.id, "reason": reason},
        )
    )
    pytest.skip(reason)


@pytest.fixture
def task(request, agentbench_case):
    """The Task this item runs (a broken dataset row errors here, by task id)."""
    case = agentbench_case
    reason = case.suite.skip_reason()
    if reason:
        _skip(request, case, "unavailable", reason)
    if case.no_rows:
        _skip(request, case, "no_rows", case.no_rows)
    if case.task.problem:
        pytest.fail(for_terminal(case.task.problem), pytrace=False)
    return case.task


def _harness_failure(what: str, call):
    """Run `call`; a harness failure fails the item with one line (raised outside the except block, so pytest
    shows no exception chain)."""
    try:
        return call(), None
    except (HarnessError, AgentbenchError) as exc:
        problem = f"harness: {what}{exc}"
    pytest.fail(for_terminal(problem), pytrace=False)


@pytest.fixture
def backend(request, agentbench_case):
    """The model, loaded once per process and shared by every item of that model."""
    worker = request.config.stash[STATE].worker
    return _harness_failure("", lambda: worker.backend(agentbench_case.model))[0]


@pytest.fixture
def sandbox(request, agentbench_case):
    """A fresh sandbox per test, closed (and everything in it killed) afterwards."""
    worker = request.config.stash[STATE].worker
    box = _harness_failure("sandbox: ", lambda: worker.sandbox(agentbench_case.suite))[0]
    try:
        yield box
    finally:
        box.close()


@pytest.fixture
def outcome(request, agentbench_case, task, backend, sandbox):
    """Run the suite's agent on the task; the Outcome decides the test (`outcome.check()`)."""
    worker = request.config.stash[STATE].worker
    result, record = _harness_failure("", lambda: worker.evaluate(agentbench_case, backend, sandbox))[0]
    request.node.user_properties.append(("agentbench", record))
    # pytest's own per-test properties (what --junitxml shows in any CI): the record itself is taken off the report
    # where results are gathered (plugin.ControllerHooks), these stay.
    for name, value in (
        ("suite", record["suite"]),
        ("model", record["model"]),
        ("task", record["task"]),
        ("sample", record["sample"]),
        ("outcome", record["status"]),
        ("score", 1.0 if record["status"] == "passed" else 0.0),
    ):
        request.node.user_properties.append((f"agentbench_{name}", value))
    return result
