"""Fixtures a benchmark test asks for: `task`, `backend` (one per model per process), `sandbox` (fresh per
test) and `outcome` (the agent's result, recorded for the report). Harness failures surface as setup
errors with one line, so they are never counted as the model's failures."""
from __future__ import annotations

import pytest

from .errors import AgentbenchError, HarnessError
from .items import CASE_ARG
from .session import SESSION_KEY


@pytest.fixture
def agentbench_case(request):
    pytest.fail(f"{request.node.name}: mark the test with @pytest.mark.agentbench(SUITE) to get tasks",
                pytrace=False)


@pytest.fixture
def task(agentbench_case):
    """The Task this item runs (a broken dataset row errors here, by task id)."""
    reason = agentbench_case.suite.skip_reason()
    if reason:
        pytest.skip(reason)
    if agentbench_case.task.problem:
        pytest.fail(agentbench_case.task.problem, pytrace=False)
    return agentbench_case.task


@pytest.fixture
def backend(request, agentbench_case):
    """The model, loaded once per process and shared by every item of that model."""
    try:
        return request.config.stash[SESSION_KEY].backend(agentbench_case.model)
    except HarnessError as exc:
        pytest.fail(f"harness: {exc}", pytrace=False)


@pytest.fixture
def sandbox(request, agentbench_case):
    """A fresh sandbox per test, closed (and everything in it killed) afterwards."""
    try:
        box = request.config.stash[SESSION_KEY].sandbox(agentbench_case.suite)
    except HarnessError as exc:
        pytest.fail(f"harness: sandbox: {exc}", pytrace=False)
    try:
        yield box
    finally:
        box.close()


@pytest.fixture
def outcome(request, agentbench_case, task, backend, sandbox):
    """Run the suite's agent on the task; the Outcome decides the test (`outcome.check()`)."""
    bench = request.config.stash[SESSION_KEY]
    try:
        result, record = bench.evaluate(agentbench_case, backend, sandbox)
    except (HarnessError, AgentbenchError) as exc:
        pytest.fail(f"harness: {exc}", pytrace=False)
    request.node.user_properties.append(("agentbench", record))
    return result


__all__ = ["CASE_ARG", "agentbench_case", "task", "backend", "sandbox", "outcome"]
