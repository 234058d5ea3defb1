"""The report page: one self-contained HTML file, no network, everything inlined.

    --agentbench-html PATH.html                        this run (and, with --agentbench-baseline, the baseline)
    python -m pytest_agentbench html A.json [B.json ...] -o OUT.html     any runs, oldest first

A page holds one or more runs (a report and its records each). Per sample: the prompt, the model's code and the
tests side by side, highlighted by Prism (vendored under assets/, as jsdiff is); the sandbox's stdout and stderr;
an agent's full trace, read from its trace file when the page is written. With two runs or more: a table of the
runs, the per-task verdict changes between any two, and a side-by-side diff of a task's samples in two runs;
regressed task ids link to them.

The data travels as one JSON block (every `<` escaped, so no model-written text can close the script element);
the page's script shows model text with `textContent`, or through Prism, which escapes it. A text that recurs (a
task's prompt and tests, the same reply of greedy samples) is stored once. The sample table renders lazily (the
first rows that match the filters, more on demand), a sample's details and diffs only when opened.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError
from .records import read_records
from .report import per_task_counts, record_key
from .storage import HTML_MARK, MARK, claim, is_ours, write_atomic

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TEXT_CAP = 20_000  # characters of one text kept in the page (a prompt, the model's code, tests, a trace step)
TAIL_CAP = 4000  # characters kept of the end of stdout / stderr / a repair round's feedback
REASON_CAP = 600
STEPS_CAP = 500  # trace steps kept per sample


def _head(text: Any, cap: int = TEXT_CAP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= cap else f"{text[:cap]}\n[... {len(text) - cap} more characters not shown]"


def _tail(text: Any, cap: int = TAIL_CAP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= cap else f"[... {len(text) - cap} earlier characters not shown]\n{text[-cap:]}"


class Texts:
    """Strings stored once in the page and referred to by index."""

    def __init__(self):
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def ref(self, text: str) -> int | None:
        if not text:
            return None
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.items)
            self.items.append(text)
        return found


# -- what one sample shows ---------------------------------------------------------------------------------
def _steps(found: Any) -> list[dict]:
    steps = []
    for step in found[:STEPS_CAP] if isinstance(found, list) else ():
        if not isinstance(step, dict):
            continue
        args = step.get("args")
        row = {
            k: step.get(k)
            for k in ("i", "type", "tool", "ok", "error", "latency_s", "prompt_tokens", "completion_tokens")
            if step.get(k) is not None
        }
        row["text"] = _head(step.get("text"))
        if args is not None:
            row["args"] = _head(json.dumps(args, ensure_ascii=False, indent=1))
        if step.get("reply"):
            row["reply"] = _head(step["reply"])
        steps.append(row)
    return steps


TRACE_FACTS = ("label", "final_answer", "protocol_errors", "step_limit_hit", "tokens", "latency_s", "outcome")


def trace_view(record: dict) -> dict | None:
    """An agent's trace for the page: the whole trace file the record points to (embeddings left out), or the
    steps a record keeps itself (the tool-use suite's `extra.steps`)."""
    ref, extra = record.get("trace"), record.get("extra")
    if isinstance(ref, dict) and ref.get("path"):
        path = Path(ref["path"])
        try:
            data = path.read_bytes()
            doc = json.loads(data)
        except (OSError, ValueError) as exc:
            return {"source": str(path), "problem": f"cannot read the trace file: {exc}", "steps": []}
        if not isinstance(doc, dict):
            return {"source": str(path), "problem": "the trace file holds no trace", "steps": []}
        # what the agent did comes from the trace, its grade from the record (traces before trace/v3 held both)
        graded = extra if isinstance(extra, dict) else {}
        found = {
            **{k: doc.get(k) for k in TRACE_FACTS},
            "verdict": record.get("status") or doc.get("verdict"),
            "failed_checks": graded.get("failed_checks", doc.get("failed_checks")),
            "safety_violations": graded.get("safety_violations", doc.get("safety_violations")),
        }
        view = {k: v for k, v in found.items() if v not in (None, [], {})}
        view.update(source=str(path), steps=_steps(doc.get("steps")), total_steps=len(doc.get("steps") or []))
        if ref.get("sha256") and hashlib.sha256(data).hexdigest() != ref["sha256"]:
            view["problem"] = "the trace file changed after the run (its sha256 differs from the record's)"
        return view
    if isinstance(extra, dict) and isinstance(extra.get("steps"), list):
        return {
            "source": "the record",
            "steps": _steps(extra["steps"]),
            "total_steps": len(extra["steps"]),
            **({"final_answer": extra["answer"]} if extra.get("answer") is not None else {}),
        }
    return None


def sample_row(record: dict, run: int, texts: Texts) -> dict[str, Any]:
    extra = record.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    rounds = [
        {"feedback": _tail(it.get("feedback")), "completion_tokens": it.get("completion_tokens")}
        for it in extra.get("iterations", [])
        if isinstance(it, dict)
    ]
    reply = _head(record.get("completion"))
    program = _head(record.get("program")) if record.get("program") else None
    row = {
        "run": run,
        "model": record.get("model"),
        "suite": record.get("suite"),
        "task": record.get("task"),
        "sample": record.get("sample"),
        "status": record.get("status"),
        "reason": _head(record.get("reason"), REASON_CAP),
        "wall_s": record.get("wall_s"),
        "model_s": record.get("model_s"),
        "sandbox_s": record.get("sandbox_s"),
        "tokens": [record.get("prompt_tokens") or 0, record.get("completion_tokens") or 0],
        # the model's code: what ran in the sandbox where the record has it, else the reply as it came
        "code": texts.ref(program or reply),
        "reply": texts.ref(reply) if program else None,
        "prompt": texts.ref(_head(record.get("prompt"))),
        "tests": texts.ref(_head(record.get("tests"))),
        "stdout": texts.ref(_tail(record.get("stdout"))),
        "stderr": texts.ref(_tail(record.get("stderr"))),
    }
    if len(rounds) > 1:
        row["rounds"] = rounds
    trace = trace_view(record)
    if trace is not None:
        row["trace"] = trace
    return row


# -- runs ----------------------------------------------------------------------------------------------------
def load_run(path: Path) -> tuple[dict, list[dict] | None, str | None]:
    """(report, its records, why there are none): a report written by this tool and the records of its
    `samples_file` (else `<report>.jsonl` beside it), only where they add up to the report's per-task counts (a
    records file rewritten by a later run is not this report's). Raises AgentbenchError with a one-line reason."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentbenchError(f"cannot read report {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AgentbenchError(f"{path} is not JSON ({exc})") from None
    if (
        not isinstance(report, dict)
        or not str(report.get("schema", "")).startswith(f"{MARK}/report/")
        or not isinstance(report.get("results"), list)
    ):
        raise AgentbenchError(f"{path} is not a pytest-agentbench report")
    records, why = records_of(report, path)
    return report, records, why


def records_of(report: dict, path: Path | None = None) -> tuple[list[dict] | None, str | None]:
    named = Path(str(report.get("samples_file") or "")) if report.get("samples_file") else None
    candidates = [named] if named is not None else []
    if path is not None:
        candidates += [path.parent / named] if named is not None else []
        candidates += [path.parent / named.name] if named is not None else []
        candidates.append(path.with_suffix(".jsonl"))
    for candidate in dict.fromkeys(candidates):
        if candidate.is_file() and is_ours(candidate, "records"):
            records = read_records(candidate)
            if _adds_up(report, records):
                return records, None
            return None, f"{candidate} no longer holds this report's samples (a later run rewrote it?)"
    return None, "records not found" + (f" ({named})" if named is not None else "")


def _adds_up(report: dict, records: list[dict]) -> bool:
    """The records give the report's per-task counts, result by result."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault((rec.get("model"), rec.get("suite")), []).append(rec)
    try:
        return all(
            {t: list(v) for t, v in (r.get("per_task") or {}).items()}
            == per_task_counts(groups.get((r["model"], r["suite"]), []))
            for r in report["results"]
        )
    except (KeyError, TypeError):
        return False


def _labels(sources: list[str]) -> list[str]:
    names = [Path(s).name for s in sources]
    return names if len(set(names)) == len(names) else sources


def _pairings(reports: list[dict]) -> dict[str, list[list[int]]]:
    """For every two runs A (before) and B (after): [result of B, its result in A] index pairs, chosen as the gate
    chooses a baseline result (compare.baseline_for, with B's model map)."""
    from .compare import baseline_for

    out = {}
    for a, before in enumerate(reports):
        for b, after in enumerate(reports):
            if a == b:
                continue
            model_map = (((after.get("comparison") or {}).get("policy") or {}).get("model_map")) or {}
            pairs = []
            for ib, result in enumerate(after["results"]):
                found, _ = baseline_for(result, before["results"], model_map)
                if found is not None:
                    pairs.append([ib, next(i for i, r in enumerate(before["results"]) if r is found)])
            out[f"{a}>{b}"] = pairs
    return out


def _baseline_index(report: dict, b: int, sources: list[str]) -> int | None:
    """Which run of the page is run b's baseline: the one read from its gate's baseline path, else the other one
    of a two-run page."""
    named = (report.get("gate") or {}).get("baseline")
    if not named:
        return None
    for i, source in enumerate(sources):
        if i != b and Path(source).resolve() == Path(named).resolve():
            return i
    return 1 - b if len(sources) == 2 else None


def page_data(
    reports: Sequence[dict],
    records: Sequence[list[dict] | None],
    sources: Sequence[str] | None = None,
    notes: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    sources = list(sources or [f"run {i + 1}" for i in range(len(reports))])
    texts = Texts()
    runs, samples = [], []
    for n, (report, recs) in enumerate(zip(reports, records)):
        meta = report.get("run") or {}
        runs.append(
            {
                "label": _labels(sources)[n],
                "source": sources[n],
                "created": report.get("created_utc"),
                "results": report.get("results", []),
                "gate": report.get("gate") or {},
                "comparison": report.get("comparison"),
                "baseline": _baseline_index(report, n, sources),
                "note": (notes or [None] * len(reports))[n] if recs is None else None,
                "meta": {
                    k: meta.get(k)
                    for k in (
                        "args",
                        "git",
                        "machine",
                        "samples",
                        "seed",
                        "sandbox",
                        "xdist_workers",
                        "pytest_agentbench",
                    )
                },
            }
        )
        samples += [sample_row(r, n, texts) for r in sorted(recs or (), key=record_key)]
    return {"runs": runs, "pairs": _pairings(list(reports)), "samples": samples, "texts": texts.items}


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def render(
    reports: Sequence[dict],
    records: Sequence[list[dict] | None],
    sources: Sequence[str] | None = None,
    notes: Sequence[str | None] | None = None,
) -> str:
    """The page of `reports` (oldest first) with their records (None: none at hand, `notes` says why)."""
    # ASCII-only JSON: lone surrogates from model text cannot break the UTF-8 file, U+2028 cannot break the script
    blob = json.dumps(page_data(reports, records, sources, notes), ensure_ascii=True, separators=(",", ":"))
    parts = {
        "MARK": HTML_MARK,
        "STYLE": _asset("prism.min.css") + _asset("page.css"),
        "DATA": blob.replace("<", "\\u003c"),
        "LIBS": "\n".join(
            _asset(n) for n in ("prism-core.min.js", "prism-python.min.js", "prism-json.min.js", "diff.min.js")
        ),
        "SCRIPT": _asset("page.js"),
    }
    return re.sub(
        r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], _asset("page.html")
    )  # one pass: inserted text is not rescanned


def write_html(
    path: Path,
    reports: Sequence[dict],
    records: Sequence[list[dict] | None],
    sources: Sequence[str] | None = None,
    notes: Sequence[str | None] | None = None,
) -> None:
    """Write the page (see render) to `path`, never over a file this tool did not write."""
    path = Path(path)
    claim(path, "html", "HTML report")
    write_atomic(path, render(reports, records, sources, notes))


def write_run_page(
    path: Path,
    report: dict,
    records: list[dict],
    source: str,
    baseline: str | None = None,
    baseline_results: list[dict] | None = None,
) -> None:
    """A run's page (`--agentbench-html`); with `--agentbench-baseline`, the baseline comes first: its report as the
    gate read it (`baseline_results`), with its records where they still add up to it."""
    if not baseline or baseline_results is None:
        write_html(path, [report], [records], [source])
        return
    try:
        old, old_records, why = load_run(Path(baseline))
    except AgentbenchError as exc:
        old, old_records, why = {}, None, str(exc)
    if old.get("results") != baseline_results:  # rewritten since the gate read it (e.g. this run's own report)
        old, old_records, why = {"results": baseline_results}, None, f"{baseline} changed after the gate read it"
    write_html(path, [old, report], [old_records, records], [baseline, source], [why, None])


def main(argv: list[str] | None = None) -> int:
    """`python -m pytest_agentbench html A.json [B.json ...] -o OUT.html`: exit 0, or 2 on bad input."""
    ap = argparse.ArgumentParser(
        prog="python -m pytest_agentbench html",
        description="Write the report page of one or more runs (their report.json files, "
        "oldest first; each run's records are read from its samples_file).",
    )
    ap.add_argument("reports", nargs="+", type=Path, help="report.json files")
    ap.add_argument(
        "-o", "--output", type=Path, default=Path("agentbench.html"), help="the page to write (default agentbench.html)"
    )
    opts = ap.parse_args(argv)
    try:
        loaded = [load_run(p) for p in opts.reports]
        write_html(
            opts.output,
            [r for r, _, _ in loaded],
            [recs for _, recs, _ in loaded],
            [str(p) for p in opts.reports],
            [why for _, _, why in loaded],
        )
    except AgentbenchError as exc:
        print(f"html: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"html: cannot write {opts.output}: {exc.strerror}", file=sys.stderr)
        return 2
    for path, (_, recs, why) in zip(opts.reports, loaded):
        if recs is None:
            print(f"html: {path}: {why}: the page shows its scores, not its samples", file=sys.stderr)
    print(opts.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
