"""`agentbench COMMAND` (or `python -m pytest_agentbench COMMAND`): what the plugin does outside pytest.

Each command keeps its own options and exit statuses; `agentbench COMMAND --help` shows them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

# name -> (module whose main(argv) runs it, one line of help); html and plots take a report (below)
COMMANDS = {
    "compare": ("pytest_agentbench.compare", "the baseline gate outside pytest: OLD.json NEW.json, paired task by "
                "task (exit 0 pass, 1 fail, 2 bad input)"),
    "table": ("pytest_agentbench.table", "the tool-use study's table from RUN.jsonl files: a row per model x prompt "
              "format (CSV, Markdown, PNG)"),
    "check-scenario": ("pytest_agentbench.scenario_check", "can an agent scenario FOLDER be won (gold trajectory) "
                       "and lost (nothing done, a forbidden step)?"),
    "html": ("pytest_agentbench.htmlpage", "re-render the report page of a run: REPORT.json [-o PAGE.html]"),
    "plots": ("pytest_agentbench.plots", "re-draw the PNG of a run: REPORT.json or RUN.jsonl [-o PLOT.png]"),
}


def _prog() -> str:
    name = os.path.basename(sys.argv[0] or "")
    return name if name and name not in ("__main__.py", "-c") else "python -m pytest_agentbench"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=_prog(), description="pytest-agentbench outside pytest (benchmark runs are "
                                 "`pytest ...`; see the README).")
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
            ap.parse_args(argv[:1])   # --help (exit 0), or one line for an unknown command (exit 2)
        except SystemExit as exc:
            return int(exc.code or 0)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "html":
        return _html(rest)
    if command == "plots":
        return _plots(rest)
    return importlib.import_module(COMMANDS[command][0]).main(rest)


def _run_files(report: Path) -> tuple[dict | None, Path]:
    """A run's report (None when given its JSONL) and its per-sample records file."""
    import json

    from .errors import AgentbenchError

    if report.suffix == ".jsonl":
        return None, report
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentbenchError(f"cannot read the report {report}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise AgentbenchError(f"{report} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("pytest-agentbench/report/"):
        raise AgentbenchError(f"{report} is not a pytest-agentbench report")
    named = Path(doc.get("samples_file") or report.with_suffix(".jsonl"))
    for candidate in (named, report.parent / named.name, report.with_suffix(".jsonl")):
        if candidate.is_file():
            return doc, candidate
    raise AgentbenchError(f"the records of {report} are not at {named}")


def _one_file_command(name: str, argv: list[str], default_suffix: str, write) -> int:
    """`html` and `plots`: REPORT [-o OUT]; one line and exit 2 on bad input, never a traceback."""
    from .errors import AgentbenchError, one_line
    from .sanitize import for_terminal

    ap = argparse.ArgumentParser(prog=f"{_prog()} {name}", description=COMMANDS[name][1])
    ap.add_argument("report", type=Path, help="a run's report.json (its records are found beside it)")
    ap.add_argument("-o", "--output", type=Path, help=f"where to write (default: REPORT with {default_suffix})")
    opts = ap.parse_args(argv)
    out = opts.output or opts.report.with_suffix(default_suffix)
    try:
        doc, records = _run_files(opts.report)
        write(doc, records, out)
    except (AgentbenchError, OSError, ValueError) as exc:
        print(f"{name}: {for_terminal(one_line(exc) if isinstance(exc, OSError) else str(exc))}", file=sys.stderr)
        return 2
    print(out)
    return 0


def _html(argv: list[str]) -> int:
    from . import htmlpage

    if hasattr(htmlpage, "main"):   # the page's own command line, where it has one
        return htmlpage.main(argv)

    def write(doc, records_path, out):
        from .errors import AgentbenchError
        from .storage import read_records

        if doc is None:
            raise AgentbenchError("html needs the report.json (its JSONL alone has no scores)")
        htmlpage.write_html(out, doc, read_records(records_path))

    return _one_file_command("html", argv, ".html", write)


def _plots(argv: list[str]) -> int:
    def write(doc, records_path, out):
        from .plots import plot_records
        from .storage import claim

        claim(out, "png", "plot")
        plot_records(records_path, out)

    return _one_file_command("plots", argv, ".png", write)


if __name__ == "__main__":
    sys.exit(main())
