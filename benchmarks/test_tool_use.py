"""Tool use: 250 labelled prompts, one item each; markers per category and difficulty
(`-m "tool_use and symbolic"`, `-m "tool_use and complex"`)."""

from pathlib import Path

import pytest

from pytest_agentbench.suites.tool_use import ToolUse

DATA = Path(__file__).parent / "data" / "tool_use.jsonl"


@pytest.mark.agentbench(ToolUse(DATA))
def test_tool_use(outcome):
    outcome.check()
