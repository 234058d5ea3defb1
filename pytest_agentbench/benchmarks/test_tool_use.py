"""Tool use: 250 labelled prompts, one item each; markers per category and difficulty
(`-m "tool_use and symbolic"`, `-m "tool_use and complex"`)."""

import pytest

from pytest_agentbench.benchmarks import TOOL_USE
from pytest_agentbench.suites.tool_use import ToolUse


@pytest.mark.agentbench(ToolUse(TOOL_USE))
def test_tool_use(outcome):
    outcome.check()
