"""HumanEval: 164 code-generation tasks, one test item each (`-k HumanEval/0`, `-m humaneval`)."""

import pytest

from pytest_agentbench.suites.humaneval import HumanEval


@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
