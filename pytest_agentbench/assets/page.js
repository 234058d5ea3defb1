
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
