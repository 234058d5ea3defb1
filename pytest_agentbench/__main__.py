"""`agentbench COMMAND` (or `python -m pytest_agentbench COMMAND`): what the plugin does outside pytest.

Each command keeps its own options and exit statuses; `agentbench COMMAND --help` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

# name -> (module whose main(argv) runs it, one line of help); plots takes a report (below)
COMMANDS = {
    "compare": (
        "pytest_agentbench.results.compare",
        "the baseline gate outside pytest: OLD.json NEW.json, paired task by task (exit 0 pass, 1 fail, 2 bad input)",
    ),
    "table": (
        "pytest_agentbench.results.table",
        "the tool-use study's table from RUN.jsonl files: a row per model x prompt format (CSV, Markdown, PNG)",
    ),
    "check-scenario": (
        "pytest_agentbench.suites.scenarios.check",
        "can an agent scenario FOLDER be won (gold trajectory) and lost (nothing done, a forbidden step)?",
    ),
    "html": (
        "pytest_agentbench.results.page",
        "re-render the report page: REPORT.json [MORE.json ...] -o PAGE.html (several runs side by side, oldest first)",
    ),
    "merge": (
        "pytest_agentbench.results.merge",
        "merge shard reports (--agentbench-shard I/N) into one: OUT.json SHARD.json ... (pass@k, error bars, gate)",
    ),
    "plots": ("pytest_agentbench.results.plots", "re-draw the PNG of a run: REPORT.json or RUN.jsonl [-o PLOT.png]"),
}


def _prog() -> str:
    name = os.path.basename(sys.argv[0] or "")
    return name if name and name not in ("__main__.py", "-c") else "python -m pytest_agentbench"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=_prog(), description="pytest-agentbench outside pytest (benchmark runs are `pytest ...`; see the README)."
    )
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (_, help_text) in COMMANDS.items():
        # each command parses its own arguments (and answers its own --help)
        sub.add_parser(name, help=help_text, add_help=False)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    if not argv:
        ap.print_help(sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        try:
            ap.parse_args(argv[:1])  # --help (exit 0), or one line for an unknown command (exit 2)
        except SystemExit as exc:
            return int(exc.code or 0)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "plots":
        return _plots(rest)
    return importlib.import_module(COMMANDS[command][0]).main(rest)


def _plots(argv: list[str]) -> int:
    """`plots REPORT [-o PLOT.png]`: the run's PNG again (plots.plot_records), from its report.json (the records it
    names, where they still add up to it: htmlpage.load_run) or its JSONL. One line and exit 2 on bad input."""
    from .errors import AgentbenchError, one_line
    from .results.page import load_run
    from .results.plots import plot_records
    from .results.storage import claim
    from .sanitize import for_terminal

    ap = argparse.ArgumentParser(prog=f"{_prog()} plots", description=COMMANDS["plots"][1])
    ap.add_argument("report", type=Path, help="a run's report.json, or its per-sample records (.jsonl)")
    ap.add_argument("-o", "--output", type=Path, help="the PNG to write (default: REPORT with .png)")
    opts = ap.parse_args(argv)
    out = opts.output or opts.report.with_suffix(".png")
    try:
        records = opts.report
        if opts.report.suffix != ".jsonl":
            _, records, why = load_run(opts.report)
            if records is None:
                raise AgentbenchError(f"{opts.report}: {why}")
        claim(out, "png", "plot")
        plot_records(records, out)
    except (AgentbenchError, OSError, ValueError) as exc:
        print(f"plots: {for_terminal(one_line(exc) if isinstance(exc, OSError) else str(exc))}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
