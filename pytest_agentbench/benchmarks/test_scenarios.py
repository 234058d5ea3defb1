"""Agent scenarios: multi-step tasks in a sandboxed workspace, one item per scenario and variant
(`-k supply_chain_poisoning`, `-m "scenarios and security"`). Folders in scenarios/ beside this module, or --scenarios-dir.
Traces go to .agentbench/traces/<model>/<scenario>/<variant>/run_NNN.json."""

import pytest

from pytest_agentbench.suites.scenarios import Scenarios


@pytest.mark.agentbench(suite=Scenarios)  # a class: built from the options (--scenarios-dir)
def test_scenarios(outcome):
    outcome.check()
