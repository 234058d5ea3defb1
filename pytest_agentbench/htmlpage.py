"""The report page (`--agentbench-html PATH`): one self-contained HTML file, no network, everything inlined.

The data travels as one JSON block (every `<` escaped, so no model-written text can close the script element);
the page's script renders it with `textContent` only (model-written text is never parsed as HTML). The per-task
table renders lazily (the first rows that match the filters, more on demand), so a run of 10,000 samples opens
at once on a laptop. With a baseline, the comparison and the regressed/improved tasks come first.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .report import record_key
from .storage import HTML_MARK, claim

TEXT_CAP = 4000      # characters of a completion kept in the page
TAIL_CAP = 1500      # characters of stdout / stderr / feedback / a trace observation


def _tail(text: Any, cap: int = TAIL_CAP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= cap else "[...]\n" + text[-cap:]


def _head(text: Any, cap: int = TEXT_CAP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= cap else text[:cap] + "\n[...]"


def _trace_steps(record: dict) -> list[dict] | None:
    """The steps of an agent run, shortened for the page: from its trace file (trace.Trace), or those the record
    keeps itself (the tool-use suite's `extra.steps`)."""
    ref = record.get("trace")
    extra = record.get("extra")
    if isinstance(ref, dict) and ref.get("path"):
        try:
            doc = json.loads(Path(ref["path"]).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        found = doc.get("steps") if isinstance(doc, dict) else None
    else:
        found = extra.get("steps") if isinstance(extra, dict) else None
    if not isinstance(found, list):
        return None
    steps = []
    for step in found[:300]:
        if not isinstance(step, dict):
            continue
        args = step.get("args")
        steps.append({"type": str(step.get("type", "")), "text": _tail(step.get("text"), 800),
                      "tool": step.get("tool"), "args": _head(json.dumps(args, ensure_ascii=False), 800)
                      if args is not None else "", "error": step.get("error")})
    return steps


def sample_row(record: dict) -> dict[str, Any]:
    extra = record.get("extra") or {}
    rounds = [{"feedback": _tail(it.get("feedback")), "completion_tokens": it.get("completion_tokens")}
              for it in extra.get("iterations", []) if isinstance(it, dict)] if isinstance(extra, dict) else []
    return {"model": record.get("model"), "suite": record.get("suite"), "task": record.get("task"),
            "sample": record.get("sample"), "status": record.get("status"), "reason": _head(record.get("reason"), 600),
            "wall_s": record.get("wall_s"), "model_s": record.get("model_s"),
            "tokens": (record.get("prompt_tokens") or 0, record.get("completion_tokens") or 0),
            "completion": _head(record.get("completion")), "stdout": _tail(record.get("stdout")),
            "stderr": _tail(record.get("stderr")), "rounds": rounds if len(rounds) > 1 else [],
            "steps": _trace_steps(record)}


def page_data(report: dict, records: list[dict]) -> dict[str, Any]:
    results = [{k: v for k, v in r.items() if k != "per_task"} for r in report.get("results", [])]
    run = report.get("run", {})
    return {"created": report.get("created_utc"), "results": results, "gate": report.get("gate", {}),
            "comparison": report.get("comparison"),
            "run": {k: run.get(k) for k in ("args", "git", "machine", "samples", "seed", "sandbox", "xdist_workers",
                                            "pytest_agentbench")},
            "samples": [sample_row(r) for r in sorted(records, key=record_key)]}


def render(report: dict, records: list[dict]) -> str:
    # ASCII-only JSON: lone surrogates from model text cannot break the UTF-8 file, U+2028 cannot break the script
    blob = json.dumps(page_data(report, records), ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")
    return (PAGE.replace("{{MARK}}", HTML_MARK).replace("{{STYLE}}", STYLE).replace("{{SCRIPT}}", SCRIPT)
            .replace("{{DATA}}", blob))


def write_html(path: Path, report: dict, records: list[dict]) -> None:
    claim(path, "html", "HTML report")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(report, records), encoding="utf-8")
    tmp.replace(path)


PAGE = """<!doctype html>
{{MARK}}
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pytest-agentbench report</title><style>{{STYLE}}</style></head>
<body>
<header><h1>pytest-agentbench</h1><div id="meta"></div></header>
<main>
<section id="gate-section" hidden><h2>Gate</h2><ul id="gate"></ul><div id="moved"></div></section>
<section><h2>Scores</h2><div class="scroll"><table id="scores"><thead></thead><tbody></tbody></table></div>
<p class="note">± is the standard error over tasks (clustered by task); brackets hold the 95% confidence interval.</p>
</section>
<section><h2>Samples</h2>
<div class="controls"><input id="search" type="search" placeholder="search task id or reason" aria-label="search">
<select id="outcome" aria-label="outcome"><option value="">every outcome</option></select>
<select id="model" aria-label="model and suite"><option value="">every model and suite</option></select>
<span id="count"></span></div>
<div class="scroll"><table id="samples"><thead><tr>
<th data-key="task">task</th><th data-key="model">model</th><th data-key="suite">suite</th>
<th data-key="sample">sample</th><th data-key="status">outcome</th><th data-key="wall_s">wall s</th>
<th data-key="tokens">tokens</th><th>reason</th></tr></thead><tbody></tbody></table></div>
<button id="more" hidden>show more</button>
</section>
</main>
<script id="data" type="application/json">{{DATA}}</script>
<script>{{SCRIPT}}</script>
</body></html>
"""

STYLE = """
:root{--fg:#1d232b;--muted:#5d6875;--line:#e3e7ec;--bg:#fafbfc;--pass:#1a7f37;--fail:#c62828;--error:#b35900;
--timeout:#7b1fa2;--unparsable:#5d6875;--infra:#0d47a1;--accent:#2a5db0}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);
background:var(--bg)}header{padding:18px 28px;background:#fff;border-bottom:1px solid var(--line)}
h1{margin:0;font-size:20px}h2{font-size:16px;margin:24px 0 8px}#meta{color:var(--muted);margin-top:4px}
main{padding:0 28px 40px;max-width:1400px}.scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);
border-radius:6px}table{border-collapse:collapse;width:100%}th,td{padding:6px 10px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:top;white-space:nowrap}th{background:#f3f5f8;font-weight:600;position:sticky;top:0}
th[data-key]{cursor:pointer}th[data-key]:hover{color:var(--accent)}td.reason{white-space:normal;max-width:520px;
color:var(--muted)}td.num{text-align:right;font-variant-numeric:tabular-nums}.score{font-weight:600}
.ci{color:var(--muted);font-size:12px}.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px}.passed{background:var(--pass)}.failed{background:var(--fail)}.error{background:var(--error)}
.timeout{background:var(--timeout)}.unparsable{background:var(--unparsable)}.infra{background:var(--infra)}
.bar{display:flex;height:10px;width:160px;border-radius:3px;overflow:hidden;background:var(--line)}
.bar span{display:block;height:100%}.controls{display:flex;gap:8px;align-items:center;margin:6px 0 10px}
input,select,button{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px;background:#fff}
#search{width:280px}#count{color:var(--muted)}button{cursor:pointer;margin-top:10px}
tr.row{cursor:pointer}tr.row:hover{background:#f5f8ff}tr.detail td{background:#fbfcfe;white-space:normal}
pre{margin:4px 0 10px;padding:8px;background:#f3f5f8;border-radius:5px;white-space:pre-wrap;word-break:break-word;
max-height:360px;overflow:auto;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.label{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
#gate li{list-style:none;margin:2px 0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
#gate{padding:0}.PASS{color:var(--pass)}.FAIL{color:var(--fail)}.INCONCLUSIVE,.WARN{color:var(--error)}
.note{color:var(--muted);font-size:12px}.moved{display:flex;gap:28px;flex-wrap:wrap}
.moved div{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:260px}
"""

SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const el = (tag, attrs, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "text") n.textContent = v; else n.setAttribute(k, v); }
  for (const k of kids) if (k !== null && k !== undefined) n.append(k);
  return n;
};
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x)) ? "-" : Number(x).toFixed(d);
const STATUSES = ["passed", "failed", "error", "timeout", "unparsable", "infra"];

function meta() {
  const r = D.run || {}, git = r.git || {};
  const parts = [D.created ? "created " + D.created : null, r.samples ? r.samples + " sample(s) per task" : null,
    r.sandbox ? "sandbox " + r.sandbox : null, git.commit ? "git " + String(git.commit).slice(0, 10) : null,
    D.samples.length + " samples in this page"];
  document.getElementById("meta").textContent = parts.filter(Boolean).join(" · ");
}

function gate() {
  const g = D.gate || {}, lines = g.lines || [];
  if (!lines.length) return;
  document.getElementById("gate-section").hidden = false;
  const ul = document.getElementById("gate");
  for (const line of lines) {
    const word = line.trim().split(" ")[0];
    ul.append(el("li", {class: word, text: line}));
  }
  const moved = document.getElementById("moved");
  for (const c of (D.comparison && D.comparison.comparisons) || []) {
    const p = c.paired; if (!p) continue;
    const box = el("div", {class: "moved"});
    for (const [label, tasks] of [["regressed", p.regressed], ["improved", p.improved]]) {
      const d = el("div", {}, el("div", {class: "label", text: `${c.model}/${c.suite} ${label} (${tasks.length})`}));
      d.append(el("div", {text: tasks.length ? tasks.join(", ") : "none"}));
      box.append(d);
    }
    moved.append(box);
  }
}

function estimate(e) {
  if (!e) return "";
  return `± ${fmt(e.se)} [${fmt(e.lo)}, ${fmt(e.hi)}]`;
}

function scores() {
  const head = ["model", "suite", "tasks", "samples", "pass@1", "pass@k", "pass^k", "outcomes", "wall p50 / p95 s",
                "tokens/sample", "tokens/s", "peak MB"];
  document.querySelector("#scores thead").append(el("tr", {}, ...head.map(h => el("th", {text: h}))));
  const body = document.querySelector("#scores tbody");
  for (const r of D.results) {
    const errs = r.errors || {}, ks = Object.keys(r["pass@k"] || {}).map(Number), kmax = ks.length ? Math.max(...ks) : 0;
    const p1 = el("td", {}, el("span", {class: "score", text: fmt(r["pass@1"])}), " ",
                  el("span", {class: "ci", text: estimate(errs["pass@1"])}));
    const pk = el("td", {text: kmax > 1 ? `@${kmax} ${fmt(r["pass@k"][String(kmax)])}` : "-"});
    const hat = (errs["pass^k"] || {})[String(kmax)];
    const ph = el("td", {text: kmax > 1 && hat ? `^${kmax} ${fmt(hat.value)}` : "-"});
    const total = STATUSES.reduce((s, k) => s + (r.outcomes[k] || 0), 0) || 1;
    const bar = el("div", {class: "bar", title: STATUSES.map(s => `${s} ${r.outcomes[s] || 0}`).join(", ")});
    for (const s of STATUSES) if (r.outcomes[s]) bar.append(el("span", {class: s, style: `width:${100 * r.outcomes[s] / total}%`}));
    const counts = el("td", {}, bar, el("div", {class: "ci", text: STATUSES.filter(s => r.outcomes[s]).map(s => `${s} ${r.outcomes[s]}`).join(" · ")}));
    const lat = (r.latency_s || {}).wall_s || {};
    body.append(el("tr", {class: "result"}, el("td", {text: r.model}), el("td", {text: r.suite}),
      el("td", {class: "num", text: r.tasks}), el("td", {class: "num", text: r.samples}), p1, pk, ph, counts,
      el("td", {class: "num", text: `${fmt(lat.p50, 2)} / ${fmt(lat.p95, 2)}`}),
      el("td", {class: "num", text: fmt(((r.tokens || {}).completion || {}).mean, 0)}),
      el("td", {class: "num", text: fmt((r.resources || {}).tokens_per_s, 1)}),
      el("td", {class: "num", title: Object.keys((r.resources || {}).by_process || {}).join(", "),
                text: fmt((r.resources || {}).peak_rss_mb, 0)})));
  }
}

const state = {search: "", outcome: "", model: "", key: null, dir: 1, shown: 200, open: new Set()};
let filtered = [];

function controls() {
  const present = new Set(D.samples.map(s => s.status));
  const sel = document.getElementById("outcome");
  for (const s of STATUSES) if (present.has(s)) sel.append(el("option", {value: s, text: s}));
  const msel = document.getElementById("model");
  for (const ms of [...new Set(D.samples.map(s => s.model + "/" + s.suite))].sort()) msel.append(el("option", {value: ms, text: ms}));
  document.getElementById("search").addEventListener("input", e => { state.search = e.target.value.toLowerCase(); state.shown = 200; table(); });
  sel.addEventListener("change", e => { state.outcome = e.target.value; state.shown = 200; table(); });
  msel.addEventListener("change", e => { state.model = e.target.value; state.shown = 200; table(); });
  document.getElementById("more").addEventListener("click", () => { state.shown += 500; table(); });
  for (const th of document.querySelectorAll("#samples th[data-key]")) {
    th.addEventListener("click", () => {
      const k = th.dataset.key; state.dir = state.key === k ? -state.dir : 1; state.key = k; table();
    });
  }
}

function value(s, k) { return k === "tokens" ? s.tokens[1] : s[k]; }

function detail(s) {
  const td = el("td", {colspan: "8"});
  const block = (label, text) => { if (text) { td.append(el("div", {class: "label", text: label}), el("pre", {text})); } };
  block("completion", s.completion);
  block("reason", s.reason);
  block("stdout (tail)", s.stdout);
  block("stderr (tail)", s.stderr);
  (s.rounds || []).forEach((r, i) => block(`repair round ${i + 1}: feedback shown`, r.feedback));
  if (s.steps) {
    td.append(el("div", {class: "label", text: `trace: ${s.steps.length} step(s)`}));
    s.steps.forEach((st, i) => {
      const head = `${i + 1}. ${st.type}${st.tool ? " " + st.tool : ""}${st.error ? " (" + st.error + ")" : ""}`;
      td.append(el("pre", {text: [head, st.args, st.text].filter(Boolean).join("\n")}));
    });
  }
  return el("tr", {class: "detail"}, td);
}

function table() {
  const q = state.search;
  filtered = D.samples.filter(s => (!state.outcome || s.status === state.outcome) &&
    (!state.model || s.model + "/" + s.suite === state.model) &&
    (!q || String(s.task).toLowerCase().includes(q) || String(s.reason || "").toLowerCase().includes(q)));
  if (state.key) {
    const k = state.key, dir = state.dir;
    filtered = filtered.slice().sort((a, b) => {
      const x = value(a, k), y = value(b, k);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
  }
  const body = document.querySelector("#samples tbody");
  body.replaceChildren();
  const frag = document.createDocumentFragment();
  for (const s of filtered.slice(0, state.shown)) {
    const id = `${s.model}|${s.suite}|${s.task}|${s.sample}`;
    const tr = el("tr", {class: "row", "data-status": s.status},
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
}

meta(); gate(); scores(); controls(); table();
"""
