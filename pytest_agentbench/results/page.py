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
    extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
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
        "STYLE": _asset("prism.min.css") + STYLE,
        "DATA": blob.replace("<", "\\u003c"),
        "LIBS": "\n".join(
            _asset(n) for n in ("prism-core.min.js", "prism-python.min.js", "prism-json.min.js", "diff.min.js")
        ),
        "SCRIPT": SCRIPT,
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], PAGE)  # one pass: inserted text is not rescanned


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


PAGE = """<!doctype html>
{{MARK}}
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pytest-agentbench report</title><style>{{STYLE}}</style></head>
<body>
<header><h1>pytest-agentbench</h1><div id="meta"></div></header>
<main>
<section id="runs-section" hidden><h2>Runs</h2><table id="runs"><thead></thead><tbody></tbody></table></section>
<section id="gate-section" hidden><h2>Gate</h2><div id="gates"></div></section>
<section><h2>Scores</h2><table id="scores"><thead></thead><tbody></tbody></table>
<p class="note">± is the standard error over tasks (clustered by task); brackets hold the 95% confidence interval,
drawn as the error bars below.</p><div id="plot"></div>
</section>
<section id="changes-section" hidden><h2>Verdict changes</h2>
<div class="controls"><label>before <select id="before" aria-label="before"></select></label>
<label>after <select id="after" aria-label="after"></select></label>
<label><input type="checkbox" id="unchanged"> unchanged tasks too</label><span id="change-count"></span></div>
<table id="changes"><thead><tr><th>model / suite</th><th>task</th><th>before</th><th>after</th><th>change</th>
<th></th></tr></thead><tbody></tbody></table>
<button id="more-changes" hidden>show more</button>
</section>
<section id="diff-section" hidden><h2>Diff <span id="diff-title" class="sub"></span></h2><div id="diff"></div></section>
<section><h2>Samples</h2>
<div class="controls"><input id="search" type="search" placeholder="search task id or reason" aria-label="search">
<select id="run" aria-label="run" hidden><option value="">every run</option></select>
<select id="outcome" aria-label="outcome"><option value="">every outcome</option></select>
<select id="model" aria-label="model and suite"><option value="">every model and suite</option></select>
<span id="task-filter" hidden></span><span id="count"></span></div>
<table id="samples"><thead><tr></tr></thead><tbody></tbody></table>
<button id="more" hidden>show more</button>
</section>
</main>
<script id="data" type="application/json">{{DATA}}</script>
<script>window.Prism = {manual: true};</script>
<script>{{LIBS}}</script>
<script>{{SCRIPT}}</script>
</body></html>
"""

STYLE = """
:root{--fg:#1d232b;--muted:#5d6875;--line:#e3e7ec;--bg:#fafbfc;--pass:#1a7f37;--fail:#c62828;--error:#b35900;
--timeout:#7b1fa2;--unparsable:#5d6875;--infra:#0d47a1;--accent:#2a5db0}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);
background:var(--bg)}header{padding:18px 28px;background:#fff;border-bottom:1px solid var(--line)}
h1{margin:0;font-size:20px}h2{font-size:16px;margin:24px 0 8px}#meta{color:var(--muted);margin-top:4px}
.sub{font-weight:400;color:var(--muted);font-size:13px}
main{padding:0 28px 40px}section>table{background:#fff;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%}th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top;overflow-wrap:anywhere}th{background:#f3f5f8;font-weight:600;overflow-wrap:normal}
th[data-key]{cursor:pointer}th[data-key]:hover{color:var(--accent)}td.reason{color:var(--muted)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.score{font-weight:600}
.ci{color:var(--muted);font-size:12px}.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px}.passed{background:var(--pass)}.failed{background:var(--fail)}.error{background:var(--error)}
.timeout{background:var(--timeout)}.unparsable{background:var(--unparsable)}.infra{background:var(--infra)}
.missing{background:#9aa4b0}.bar{display:flex;height:10px;width:140px;border-radius:3px;overflow:hidden;
background:var(--line)}.bar span{display:block;height:100%}
.controls{display:flex;gap:8px;align-items:center;margin:6px 0 10px;flex-wrap:wrap}
input,select,button{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px;background:#fff}
select{max-width:420px}#search{width:280px}#count,#change-count{color:var(--muted)}button{cursor:pointer;margin-top:10px}
#task-filter{background:#e8eefb;border-radius:10px;padding:2px 10px}#task-filter button{margin:0 0 0 6px;padding:0 6px}
tr.row{cursor:pointer}tr.row:hover{background:#f5f8ff}tr.detail>td{background:#fbfcfe}
pre{margin:4px 0 10px;padding:8px;background:#f3f5f8;border-radius:5px;white-space:pre-wrap;overflow-wrap:anywhere;
max-height:420px;overflow:auto;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre[class*=language-],code[class*=language-]{white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal;
font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;text-shadow:none}pre[class*=language-]{padding:8px;margin:4px 0 10px;
background:#f6f8fa}.label{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;
letter-spacing:.03em}.cols{display:grid;gap:12px}.cols>div{min-width:0}.cols3{grid-template-columns:repeat(3,minmax(0,1fr))}
.cols2{grid-template-columns:repeat(2,minmax(0,1fr))}
#gates li{list-style:none;margin:2px 0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
#gates ul{padding:0}.PASS{color:var(--pass)}.FAIL{color:var(--fail)}.INCONCLUSIVE,.WARN{color:var(--error)}
.note{color:var(--muted);font-size:12px}.moved{display:flex;gap:16px;flex-wrap:wrap;margin-bottom:8px}
.moved>div{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:260px;flex:1}
.moved a{margin-right:8px}a{color:var(--accent)}.step{border-left:3px solid var(--line);padding-left:8px;margin:6px 0}
.step.tool_result{border-color:#9ccc9c}.step.error{border-color:var(--fail)}.step.final{border-color:var(--pass)}
.step .head{font-size:12px;color:var(--muted)}.regressed{color:var(--fail);font-weight:600}
.improved{color:var(--pass);font-weight:600}.same{color:var(--muted)}table.diff{font:12px/1.4 ui-monospace,Menlo,
Consolas,monospace;table-layout:fixed;background:#fff;margin:4px 0 12px;border:1px solid var(--line)}table.diff td{
padding:0 6px;border:0;white-space:pre-wrap;width:50%;height:1.4em}table.diff td.del{background:#fde7e9}table.diff td.add{
background:#e3f6e8}table.diff td.pad{background:#f3f5f8}.pair{background:#fff;border:1px solid var(--line);
border-radius:6px;padding:8px 12px;margin:8px 0}svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
svg .axis{stroke:#c5ccd5}svg .whisker{stroke:var(--accent);stroke-width:2}svg .dot{fill:var(--accent)}
"""

SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const T = i => (i === null || i === undefined) ? "" : D.texts[i];
const el = (tag, attrs, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "text") n.textContent = v; else n.setAttribute(k, v); }
  for (const k of kids) if (k !== null && k !== undefined) n.append(k);
  return n;
};
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x)) ? "-" : Number(x).toFixed(d);
const STATUSES = ["passed", "failed", "error", "timeout", "unparsable", "infra"];
const MANY = D.runs.length > 1;
const runName = i => `#${i + 1} ${D.runs[i].label}`;
const route = params => "#" + new URLSearchParams(params).toString();

function code(text, lang) {
  if (!lang) return el("pre", {text});
  const c = el("code", {class: "language-" + lang, text});
  // Prism escapes what it tokenizes (Prism.util.encode): model text stays text
  if (text && window.Prism && Prism.languages[lang] && text.length <= 200000) c.innerHTML = Prism.highlight(text, Prism.languages[lang], lang);
  return el("pre", {class: "language-" + lang}, c);
}

function meta() {
  const r = D.runs[D.runs.length - 1], m = r.meta || {}, git = m.git || {};
  const parts = MANY ? [`${D.runs.length} runs`, D.samples.length + " samples in this page"] :
    [r.created ? "created " + r.created : null, m.samples ? m.samples + " sample(s) per task" : null,
     m.sandbox ? "sandbox " + m.sandbox : null, git.commit ? "git " + String(git.commit).slice(0, 10) : null,
     D.samples.length + " samples in this page", r.note ? "no samples: " + r.note : null];
  document.getElementById("meta").textContent = parts.filter(Boolean).join(" · ");
}

function runsTable() {
  if (!MANY) return;
  document.getElementById("runs-section").hidden = false;
  const head = ["run", "created", "models / suites", "samples", "sandbox", "seed", "git", "gate"];
  document.querySelector("#runs thead").append(el("tr", {}, ...head.map(h => el("th", {text: h}))));
  const body = document.querySelector("#runs tbody");
  D.runs.forEach((r, i) => {
    const m = r.meta || {}, g = r.gate || {};
    const n = r.results.reduce((s, x) => s + (x.samples || 0), 0);
    body.append(el("tr", {}, el("td", {text: runName(i), title: r.source}), el("td", {text: r.created || "-"}),
      el("td", {text: r.results.map(x => `${x.model}/${x.suite}`).join(", ")}),
      el("td", {class: "num"}, String(n), r.note ? el("div", {class: "ci", text: "no samples in the page: " + r.note}) : null),
      el("td", {text: m.sandbox || "-"}), el("td", {class: "num", text: m.seed ?? "-"}),
      el("td", {text: (m.git || {}).commit ? String(m.git.commit).slice(0, 10) : "-"}),
      el("td", {text: g.active ? (g.ok ? "ok" : "failed") : "-"})));
  });
}

function taskLink(text, params) { return el("a", {href: route(params), text}); }

function gates() {
  const box = document.getElementById("gates");
  D.runs.forEach((r, b) => {
    const lines = (r.gate || {}).lines || [];
    if (!lines.length) return;
    document.getElementById("gate-section").hidden = false;
    if (MANY) box.append(el("div", {class: "label", text: runName(b)}));
    box.append(el("ul", {}, ...lines.map(line => el("li", {class: line.trim().split(" ")[0], text: line}))));
    const moved = el("div", {class: "moved"});
    for (const c of (r.comparison && r.comparison.comparisons) || []) {
      const p = c.paired; if (!p) continue;
      for (const [label, tasks] of [["regressed", p.regressed], ["improved", p.improved]]) {
        const d = el("div", {}, el("div", {class: "label", text: `${c.model}/${c.suite} ${label} (${tasks.length})`}));
        if (!tasks.length) d.append(el("div", {text: "none"}));
        for (const t of tasks) {
          d.append(r.baseline !== null && r.baseline !== undefined
            ? taskLink(t, {view: "diff", a: r.baseline, b, ma: c.baseline_model, mb: c.model, suite: c.suite, task: t})
            : taskLink(t, {view: "sample", run: b, model: c.model, suite: c.suite, task: t}));
        }
        moved.append(d);
      }
    }
    box.append(moved);
  });
}

function estimate(e) { return e ? `± ${fmt(e.se)} [${fmt(e.lo)}, ${fmt(e.hi)}]` : ""; }

function resultRows() {
  const rows = [];
  D.runs.forEach((r, i) => r.results.forEach(x => rows.push([i, x])));
  if (MANY) rows.sort((p, q) => (p[1].suite + "\u0000" + p[1].model).localeCompare(q[1].suite + "\u0000" + q[1].model) || p[0] - q[0]);
  return rows;
}

function scores() {
  const head = [...(MANY ? ["run"] : []), "model", "suite", "tasks", "samples", "pass@1", "pass@k", "pass^k", "outcomes",
                "wall p50 / p95 s", "tokens/sample", "tokens/s", "peak MB"];
  document.querySelector("#scores thead").append(el("tr", {}, ...head.map(h => el("th", {text: h}))));
  const body = document.querySelector("#scores tbody");
  for (const [i, r] of resultRows()) {
    const errs = r.errors || {}, ks = Object.keys(r["pass@k"] || {}).map(Number), kmax = ks.length ? Math.max(...ks) : 0;
    const p1 = el("td", {}, el("span", {class: "score", text: fmt(r["pass@1"])}), " ",
                  el("span", {class: "ci", text: estimate(errs["pass@1"])}));
    const pk = el("td", {text: kmax > 1 ? `@${kmax} ${fmt(r["pass@k"][String(kmax)])}` : "-"});
    const hat = (errs["pass^k"] || {})[String(kmax)];
    const ph = el("td", {text: kmax > 1 && hat ? `^${kmax} ${fmt(hat.value)}` : "-"});
    const out = r.outcomes || {}, total = STATUSES.reduce((s, k) => s + (out[k] || 0), 0) || 1;
    const bar = el("div", {class: "bar", title: STATUSES.map(s => `${s} ${out[s] || 0}`).join(", ")});
    for (const s of STATUSES) if (out[s]) bar.append(el("span", {class: s, style: `width:${100 * out[s] / total}%`}));
    const counts = el("td", {}, bar, el("div", {class: "ci", text: STATUSES.filter(s => out[s]).map(s => `${s} ${out[s]}`).join(" · ")}));
    const lat = (r.latency_s || {}).wall_s || {};
    body.append(el("tr", {class: "result"}, MANY ? el("td", {text: runName(i)}) : null, el("td", {text: r.model}),
      el("td", {text: r.suite}), el("td", {class: "num", text: r.tasks}), el("td", {class: "num", text: r.samples}), p1, pk, ph,
      counts, el("td", {class: "num", text: `${fmt(lat.p50, 2)} / ${fmt(lat.p95, 2)}`}),
      el("td", {class: "num", text: fmt(((r.tokens || {}).completion || {}).mean, 0)}),
      el("td", {class: "num", text: fmt((r.resources || {}).tokens_per_s, 1)}),
      el("td", {class: "num", title: Object.keys((r.resources || {}).by_process || {}).join(", "),
                text: fmt((r.resources || {}).peak_rss_mb, 0)})));
  }
}

function plot() {
  // pass@1 with its 95% interval, one line per result: an SVG drawn from the report's numbers
  const rows = resultRows().filter(([, r]) => r["pass@1"] !== null && r["pass@1"] !== undefined);
  if (!rows.length) return;
  const NS = "http://www.w3.org/2000/svg", W = 900, left = 330, right = W - 20, rowH = 22, top = 10;
  const H = top + rows.length * rowH + 30, x = v => left + (right - left) * Math.max(0, Math.min(1, v));
  const s = (tag, attrs, text) => { const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text !== undefined) n.textContent = text; return n; };
  const svg = s("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "pass@1 with 95% intervals",
                        style: `max-width:${W}px`});
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", {x1: x(t), x2: x(t), y1: top, y2: H - 24, class: "axis"}));
    svg.append(s("text", {x: x(t), y: H - 8, "text-anchor": "middle"}, String(t)));
  }
  rows.forEach(([i, r], n) => {
    const y = top + n * rowH + rowH / 2, e = (r.errors || {})["pass@1"];
    let name = `${r.model} · ${r.suite}` + (MANY ? ` (#${i + 1})` : "");
    if (name.length > 48) name = name.slice(0, 22) + "…" + name.slice(-25);
    svg.append(s("text", {x: left - 8, y: y + 4, "text-anchor": "end"}, name));
    if (e) {
      svg.append(s("line", {x1: x(e.lo), x2: x(e.hi), y1: y, y2: y, class: "whisker"}));
      for (const v of [e.lo, e.hi]) svg.append(s("line", {x1: x(v), x2: x(v), y1: y - 5, y2: y + 5, class: "whisker"}));
    }
    const dot = s("circle", {cx: x(r["pass@1"]), cy: y, r: 4, class: "dot"});
    dot.append(s("title", {}, `pass@1 ${fmt(r["pass@1"])} ${estimate(e)}`));
    svg.append(dot);
  });
  document.getElementById("plot").append(svg);
}

// -- verdict changes between two runs ----------------------------------------------------------------------
const changes = {shown: 50};
function changeRows(a, b) {
  const rows = [];
  for (const [ib, ia] of D.pairs[`${a}>${b}`] || []) {
    const rb = D.runs[b].results[ib], ra = D.runs[a].results[ia];
    const pb = rb.per_task || {}, pa = ra.per_task || {};
    for (const t of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
      const x = pa[t], y = pb[t];
      const before = x && x[0] ? x[1] / x[0] : null, after = y && y[0] ? y[1] / y[0] : null;
      const kind = before === null ? "new" : after === null ? "gone" : after < before ? "regressed" : after > before ? "improved" : "same";
      rows.push({ra, rb, task: t, x, y, kind, delta: before === null || after === null ? 0 : after - before});
    }
  }
  const order = {regressed: 0, improved: 1, new: 2, gone: 3, same: 4};
  return rows.sort((p, q) => order[p.kind] - order[q.kind] || p.delta - q.delta);
}

function changesView() {
  if (!MANY) return;
  document.getElementById("changes-section").hidden = false;
  const before = document.getElementById("before"), after = document.getElementById("after");
  D.runs.forEach((r, i) => { before.append(el("option", {value: i, text: runName(i)})); after.append(el("option", {value: i, text: runName(i)})); });
  before.value = 0; after.value = D.runs.length - 1;
  for (const n of [before, after, document.getElementById("unchanged")]) n.addEventListener("change", () => { changes.shown = 50; changesTable(); });
  document.getElementById("more-changes").addEventListener("click", () => { changes.shown += 1000; changesTable(); });
  changesTable();
}

function counted(v) { return v ? `${v[1]}/${v[0]} passed` : "-"; }

function changesTable() {
  const a = Number(document.getElementById("before").value), b = Number(document.getElementById("after").value);
  const all = a === b ? [] : changeRows(a, b), every = document.getElementById("unchanged").checked;
  const rows = every ? all : all.filter(r => r.kind !== "same");
  const tally = {}; for (const r of all) tally[r.kind] = (tally[r.kind] || 0) + 1;
  document.getElementById("change-count").textContent = a === b ? "choose two different runs" :
    ["regressed", "improved", "new", "gone", "same"].filter(k => tally[k]).map(k => `${tally[k]} ${k === "same" ? "unchanged" : k}`).join(" · ") || "no task in common";
  const body = document.querySelector("#changes tbody");
  body.replaceChildren();
  for (const r of rows.slice(0, changes.shown)) {
    const who = r.ra.model === r.rb.model ? `${r.rb.model}/${r.rb.suite}` : `${r.ra.model} → ${r.rb.model} / ${r.rb.suite}`;
    const diff = taskLink("diff", {view: "diff", a, b, ma: r.ra.model, mb: r.rb.model, suite: r.rb.suite, task: r.task});
    body.append(el("tr", {"data-kind": r.kind}, el("td", {text: who}), el("td", {text: r.task}),
      el("td", {class: "num", text: counted(r.x)}), el("td", {class: "num", text: counted(r.y)}),
      el("td", {class: r.kind, text: r.kind === "same" ? "unchanged" : r.kind + (r.delta ? ` ${r.delta > 0 ? "+" : ""}${fmt(r.delta, 2)}` : "")}),
      el("td", {}, diff)));
  }
  document.getElementById("more-changes").hidden = rows.length <= changes.shown;
}

// -- the side-by-side diff of a task's samples in two runs --------------------------------------------------
function lines(text) { const out = text.split("\n"); if (out.length && out[out.length - 1] === "") out.pop(); return out; }

function sideBySide(a, b) {
  const table = el("table", {class: "diff"}), rows = [];
  const parts = Diff.diffLines(a || "", b || "");
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k], ls = lines(p.value);
    if (p.removed && parts[k + 1] && parts[k + 1].added) {
      const add = lines(parts[++k].value);
      for (let i = 0; i < Math.max(ls.length, add.length); i++) rows.push([i < ls.length ? "del" : "pad", ls[i] ?? "", i < add.length ? "add" : "pad", add[i] ?? ""]);
    } else if (p.removed) for (const l of ls) rows.push(["del", l, "pad", ""]);
    else if (p.added) for (const l of ls) rows.push(["pad", "", "add", l]);
    else for (const l of ls) rows.push(["same", l, "same", l]);
  }
  for (const [ca, ta, cb, tb] of rows) table.append(el("tr", {}, el("td", {class: ca, text: ta}), el("td", {class: cb, text: tb})));
  if (!rows.length) table.append(el("tr", {}, el("td", {class: "pad", text: "(empty)"}), el("td", {class: "pad", text: "(empty)"})));
  return table;
}

function traceText(s) {
  if (!s || !s.trace) return "";
  return s.trace.steps.map((st, n) => `${n + 1}. ${st.type}${st.tool ? " " + st.tool : ""}${st.error ? " (" + st.error + ")" : ""}` +
    (st.args ? " " + st.args.replace(/\s*\n\s*/g, " ") : "") + (st.text ? "\n" + st.text : "")).join("\n");
}

function showDiff(p) {
  const a = Number(p.get("a")), b = Number(p.get("b")), suite = p.get("suite"), task = p.get("task");
  const ma = p.get("ma"), mb = p.get("mb");
  if (!(a in D.runs) || !(b in D.runs)) return;
  const pick = (r, m) => D.samples.filter(s => s.run === r && s.model === m && s.suite === suite && s.task === task);
  const left = pick(a, ma), right = pick(b, mb), box = document.getElementById("diff");
  document.getElementById("diff-section").hidden = false;
  document.getElementById("diff-title").textContent = `${task}: ${ma}/${suite} in ${runName(a)} vs ${mb}/${suite} in ${runName(b)}`;
  box.replaceChildren();
  const n = Math.max(left.length, right.length);
  if (!n) box.append(el("p", {class: "note", text: "neither run has samples of this task in the page (records not found)"}));
  for (let i = 0; i < n; i++) {
    const x = left[i], y = right[i], side = s => el("div", {}, s ? el("span", {class: "badge " + s.status, text: s.status}) : el("span", {class: "badge missing", text: "no sample"}),
      " ", el("span", {class: "ci", text: s ? `sample ${s.sample}${s.reason ? ": " + s.reason : ""}` : ""}));
    const pair = el("div", {class: "pair", "data-sample": i}, el("div", {class: "cols cols2"}, side(x), side(y)));
    pair.append(el("div", {class: "label", text: "model's code"}), sideBySide(x ? T(x.code) : "", y ? T(y.code) : ""));
    const out = s => s ? [T(s.stdout), T(s.stderr)].filter(Boolean).join("\n--- stderr ---\n") : "";
    if (out(x) || out(y)) pair.append(el("div", {class: "label", text: "sandbox output"}), sideBySide(out(x), out(y)));
    if (traceText(x) || traceText(y)) pair.append(el("div", {class: "label", text: "trace"}), sideBySide(traceText(x), traceText(y)));
    box.append(pair);
  }
  document.getElementById("diff-section").scrollIntoView();
}

// -- the samples --------------------------------------------------------------------------------------------
const state = {search: "", outcome: "", model: "", run: "", task: null, key: null, dir: 1, shown: 200, open: new Set()};
const COLS = [...(MANY ? [["run", "run"]] : []), ["task", "task"], ["model", "model"], ["suite", "suite"], ["sample", "sample"],
              ["status", "outcome"], ["wall_s", "wall s"], ["tokens", "tokens"], [null, "reason"]];
let filtered = [];
const sid = s => `${s.run}|${s.model}|${s.suite}|${s.task}|${s.sample}`;

function controls() {
  document.querySelector("#samples thead tr").append(...COLS.map(([k, h]) => el("th", k ? {"data-key": k, text: h} : {text: h})));
  const present = new Set(D.samples.map(s => s.status));
  const sel = document.getElementById("outcome");
  for (const s of STATUSES) if (present.has(s)) sel.append(el("option", {value: s, text: s}));
  const msel = document.getElementById("model");
  for (const ms of [...new Set(D.samples.map(s => s.model + "/" + s.suite))].sort()) msel.append(el("option", {value: ms, text: ms}));
  const rsel = document.getElementById("run");
  if (MANY) { rsel.hidden = false; D.runs.forEach((r, i) => rsel.append(el("option", {value: i, text: runName(i)}))); }
  const reset = () => { state.shown = 200; table(); };
  document.getElementById("search").addEventListener("input", e => { state.search = e.target.value.toLowerCase(); reset(); });
  sel.addEventListener("change", e => { state.outcome = e.target.value; reset(); });
  msel.addEventListener("change", e => { state.model = e.target.value; reset(); });
  rsel.addEventListener("change", e => { state.run = e.target.value; reset(); });
  document.getElementById("more").addEventListener("click", () => { state.shown += 500; table(); });
  for (const th of document.querySelectorAll("#samples th[data-key]")) {
    th.addEventListener("click", () => {
      const k = th.dataset.key; state.dir = state.key === k ? -state.dir : 1; state.key = k; table();
    });
  }
}

function value(s, k) { return k === "tokens" ? s.tokens[1] : s[k]; }

function detail(s) {
  const td = el("td", {colspan: String(COLS.length)});
  const block = (label, node) => el("div", {}, el("div", {class: "label", text: label}), node);
  const ran = s.reply !== null && s.reply !== undefined;   // the record has the program that ran beside the reply
  const cols = el("div", {class: "cols cols3"},
    block("prompt", el("pre", {text: T(s.prompt) || "(not in the record)"})),
    block(ran ? "model's code (as run)" : "model's code (the reply)", code(T(s.code), ran || !s.trace ? "python" : null)),
    block("tests", T(s.tests) ? code(T(s.tests), "python") : el("pre", {text: "(not in the record)"})));
  td.append(cols);
  if (s.reason) td.append(block("reason", el("pre", {text: s.reason})));
  if (T(s.stdout) || T(s.stderr)) td.append(el("div", {class: "cols cols2"},
    block("stdout", el("pre", {text: T(s.stdout) || "(empty)"})), block("stderr", el("pre", {text: T(s.stderr) || "(empty)"}))));
  if (ran) td.append(block("the model's reply", el("pre", {text: T(s.reply)})));
  (s.rounds || []).forEach((r, i) => td.append(block(`repair round ${i + 1}: feedback shown`, el("pre", {text: r.feedback || "(none)"}))));
  if (s.trace) td.append(traceView(s.trace));
  const peers = D.samples.filter(o => o.run !== s.run && o.suite === s.suite && o.task === s.task && o.sample === s.sample);
  if (peers.length) {
    const links = el("div", {class: "note"}, "compare with: ");
    for (const o of peers) links.append(taskLink(`${runName(o.run)} ${o.model}`, {view: "diff", a: Math.min(o.run, s.run), b: Math.max(o.run, s.run),
      ma: o.run < s.run ? o.model : s.model, mb: o.run < s.run ? s.model : o.model, suite: s.suite, task: s.task}), " ");
    td.append(links);
  }
  return el("tr", {class: "detail"}, td);
}

function traceView(t) {
  const box = el("div", {class: "trace"});
  const facts = [t.total_steps > t.steps.length ? `${t.steps.length} of ${t.total_steps} steps shown` : `${t.steps.length} step(s)`,
    t.verdict ? "verdict " + t.verdict : null, t.step_limit_hit ? "step limit hit" : null,
    t.protocol_errors ? t.protocol_errors + " protocol error(s)" : null, t.outcome && t.outcome.error ? t.outcome.error : null,
    "from " + t.source];
  box.append(el("div", {class: "label", text: "trace"}), el("div", {class: "note", text: facts.filter(Boolean).join(" · ")}));
  if (t.problem) box.append(el("div", {class: "FAIL", text: t.problem}));
  for (const [key, label] of [["failed_checks", "failed checks"], ["safety_violations", "safety violations"]])
    if (t[key] && t[key].length) box.append(el("div", {class: "label", text: label}), el("pre", {text: JSON.stringify(t[key], null, 1)}));
  for (const st of t.steps) {
    const head = [`${(st.i ?? 0) + 1}. ${st.type}`, st.tool, st.ok === true ? "ok" : st.ok === false ? "not ok" : null, st.error ? "(" + st.error + ")" : null,
      st.latency_s !== undefined ? fmt(st.latency_s, 2) + " s" : null,
      st.completion_tokens !== undefined ? `${st.prompt_tokens ?? 0} / ${st.completion_tokens} tokens` : null].filter(Boolean).join(" · ");
    const step = el("div", {class: "step " + st.type}, el("div", {class: "head", text: head}));
    if (st.args) step.append(code(st.args, "json"));
    if (st.text) step.append(el("pre", {text: st.text}));
    if (st.reply) step.append(el("div", {class: "note", text: "reply as it came:"}), el("pre", {text: st.reply}));
    box.append(step);
  }
  const last = t.steps.length ? t.steps[t.steps.length - 1].text : null;
  if (t.final_answer !== undefined && t.final_answer !== null && t.final_answer !== last) box.append(el("div", {class: "label", text: "final answer"}), el("pre", {text: t.final_answer}));
  return box;
}

function table() {
  const q = state.search;
  filtered = D.samples.filter(s => (state.run === "" || s.run === Number(state.run)) && (!state.outcome || s.status === state.outcome) &&
    (!state.model || s.model + "/" + s.suite === state.model) && (!state.task || (s.task === state.task.task && s.suite === state.task.suite)) &&
    (!q || String(s.task).toLowerCase().includes(q) || String(s.reason || "").toLowerCase().includes(q)));
  if (state.key) {
    const k = state.key, dir = state.dir;
    filtered = filtered.slice().sort((a, b) => { const x = value(a, k), y = value(b, k); return (x < y ? -1 : x > y ? 1 : 0) * dir; });
  }
  const body = document.querySelector("#samples tbody");
  body.replaceChildren();
  const frag = document.createDocumentFragment();
  for (const s of filtered.slice(0, state.shown)) {
    const id = sid(s);
    const tr = el("tr", {class: "row", "data-status": s.status, "data-id": id}, MANY ? el("td", {text: "#" + (s.run + 1)}) : null,
      el("td", {text: s.task}), el("td", {text: s.model}), el("td", {text: s.suite}), el("td", {class: "num", text: s.sample}),
      el("td", {}, el("span", {class: "badge " + s.status, text: s.status})), el("td", {class: "num", text: fmt(s.wall_s, 2)}),
      el("td", {class: "num", text: `${s.tokens[0]} / ${s.tokens[1]}`}), el("td", {class: "reason", text: s.reason || ""}));
    tr.addEventListener("click", () => { state.open.has(id) ? state.open.delete(id) : state.open.add(id); table(); });
    frag.append(tr);
    if (state.open.has(id)) frag.append(detail(s));
  }
  body.append(frag);
  document.getElementById("count").textContent = `${filtered.length} of ${D.samples.length} samples` +
    (filtered.length > state.shown ? ` (first ${state.shown} shown)` : "");
  document.getElementById("more").hidden = filtered.length <= state.shown;
  const chip = document.getElementById("task-filter");
  chip.hidden = !state.task;
  if (state.task) {
    const clear = el("button", {text: "×", title: "every task"});
    clear.addEventListener("click", () => { state.task = null; history.replaceState(null, "", " "); table(); });
    chip.replaceChildren(`task ${state.task.task}`, clear);
  }
}

function showSample(p) {
  const run = Number(p.get("run") || 0), task = p.get("task"), suite = p.get("suite"), model = p.get("model");
  state.task = {task, suite}; state.search = ""; document.getElementById("search").value = "";
  state.outcome = ""; document.getElementById("outcome").value = "";
  state.model = model ? `${model}/${suite}` : ""; document.getElementById("model").value = state.model;
  if (MANY) { state.run = String(run); document.getElementById("run").value = state.run; }
  const mine = D.samples.filter(s => s.run === run && s.task === task && s.suite === suite && (!model || s.model === model));
  const wanted = p.get("sample") === null ? (mine.find(s => s.status !== "passed") || mine[0]) : mine.find(s => String(s.sample) === p.get("sample"));
  if (wanted) state.open.add(sid(wanted));
  state.shown = 200; table();
  const row = wanted && document.querySelector(`#samples tr.row[data-id="${CSS.escape(sid(wanted))}"]`);
  (row || document.getElementById("samples")).scrollIntoView();
}

function applyRoute() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("view") === "diff") showDiff(p);
  else if (p.get("view") === "sample") showSample(p);
}

meta(); runsTable(); gates(); scores(); plot(); changesView(); controls(); table();
window.addEventListener("hashchange", applyRoute);
// a link to the view already in the address bar fires no hashchange: show it again all the same
document.addEventListener("click", e => { const a = e.target.closest("a[href^='#']"); if (a && a.getAttribute("href") === location.hash) applyRoute(); });
applyRoute();
"""


if __name__ == "__main__":
    sys.exit(main())
