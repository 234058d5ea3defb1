"""`python -m pytest_agentbench COMMAND`: what the plugin does outside pytest.

    check-scenario FOLDER...   can a scenario be won (gold trajectory) and lost (nothing done, a forbidden step)?
    compare OLD.json NEW.json  the baseline gate outside pytest: paired comparison, same lines and exit statuses
    table RUN.jsonl...         the tool-use study's table: a row per model x prompt format (CSV, Markdown, PNG)
"""
from __future__ import annotations

import sys

COMMANDS = {"check-scenario": "pytest_agentbench.scenario_check", "compare": "pytest_agentbench.compare",
            "table": "pytest_agentbench.table"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
