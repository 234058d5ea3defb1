"""BFCL v4 (Berkeley Function Calling Leaderboard), offline: one item per question, ids as BFCL's
(`-k simple_python_12`), markers per category and group (`-m "bfcl and irrelevance"`, `-m "bfcl and live"`,
`-m "bfcl and multi_turn"`). Data from the installed bfcl-eval, or --bfcl-path DIR."""

import pytest

from pytest_agentbench.suites.bfcl import BFCL


@pytest.mark.agentbench(suite=BFCL)  # a class: built from the options (--bfcl-path)
def test_bfcl(outcome):
    outcome.check()
