"""Built-in suites; importing this module registers them by name."""
from . import humaneval, humanevalfix  # noqa: F401
