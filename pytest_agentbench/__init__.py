"""pytest-agentbench: benchmark code LLMs and code agents as pytest test items.

Importing this package must stay cheap (no torch, no transformers): pytest imports it at start-up.
"""

from .errors import AgentbenchError, HarnessError
from .outcome import Outcome, Status
from .suites.base import Suite, register_suite
from .task import Task

__version__ = "0.1.0"
__all__ = ["AgentbenchError", "HarnessError", "Outcome", "Status", "Suite", "Task", "register_suite", "__version__"]
