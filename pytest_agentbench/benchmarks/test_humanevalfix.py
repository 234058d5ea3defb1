"""HumanEvalFix: 164 bug repairs by a ReAct agent, one item each (`-k Python/0`, `-m humanevalfix`).

Data: --humanevalfix-path PATH, else datasets' bigcode/humanevalpack (skipped, with a reason, offline).
"""

import pytest

from pytest_agentbench.suites.humanevalfix import HumanEvalFix


@pytest.mark.agentbench(suite=HumanEvalFix)  # a class: built from the options (--iters, ...)
def test_humanevalfix(outcome):
    outcome.check()
