"""The shipped benchmarks: the suites' test modules and their data, installed with the package.

    pytest --pyargs pytest_agentbench.benchmarks -m humaneval --model reference    # from any folder
    pytest benchmarks -m humaneval                                                 # in a checkout (thin modules)

`SCENARIOS` holds the agent scenarios (one folder each), `DATA` the datasets the suites and tests read
(`tool_use.jsonl` with its generator `make_tool_use.py`, `humanevalfix_unwinnable.jsonl`). Found from this package,
so a wheel finds them in site-packages as a checkout finds them in its tree. Imports nothing of the plugin.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
DATA = HERE / "data"
TOOL_USE = DATA / "tool_use.jsonl"
HUMANEVALFIX_UNWINNABLE = DATA / "humanevalfix_unwinnable.jsonl"

__all__ = ["DATA", "HERE", "HUMANEVALFIX_UNWINNABLE", "SCENARIOS", "TOOL_USE"]
