"""`python -m pytest_agentbench check-scenario`: see pytest_agentbench.suites.scenarios.check."""
from .suites.scenarios.check import main

__all__ = ["main"]
