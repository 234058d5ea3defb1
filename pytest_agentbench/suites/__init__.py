"""Built-in suites; importing this module registers them by name."""

from . import bfcl, humaneval, humanevalfix, scenarios, tool_use  # noqa: F401  (they register themselves)
