"""The built-in suites (humaneval, humanevalfix, tool_use, scenarios, bfcl): registry.suites names them and imports
each when first asked for."""
