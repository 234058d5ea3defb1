"""The shipped suite, run from a checkout (`pytest benchmarks`): the test and its data live in the package,
pytest_agentbench/benchmarks/test_humaneval.py, which a wheel runs as `pytest --pyargs pytest_agentbench.benchmarks`."""

from pytest_agentbench.benchmarks.test_humaneval import test_humaneval

__all__ = ["test_humaneval"]
