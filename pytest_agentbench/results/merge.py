"""Shard reports -> one report (`agentbench merge OUT.json SHARD.json ...`, or `pytest --agentbench-merge GLOB`).

The shards' records are pooled and the report is computed from them as a run computes its own (report.run_results,
gate.judge), so pass@k, error bars and the gate are those of an unsharded run over the same items. Shards of other
datasets, settings, models or selections are refused with one line; a shard given twice counts once; the tasks of a
missing (or interrupted) shard are listed as not run and the report is `incomplete`: in no score, never a failure,
and the gate says so (a failure under --agentbench-strict).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError
from ..metrics import natural_key
from ..sanitize import for_terminal
from ..session.shard import shard_of
from .compare import load_baseline
from .gate import GateConfig, judge
from .records import resume_key
from .report import resources_by_model, run_results
from .storage import REPORT_SCHEMA, RecordLog, archive_run, check_writable, claim, write_json

SHOWN = 8  # tasks named in one line


@dataclass
class ShardRun:
    path: Path
    report: dict
    records: list[dict]

    @property
    def index(self) -> int:
        return int(self.report["shard"]["index"])

    @property
    def count(self) -> int:
        return int(self.report["shard"]["count"])


def expand(patterns: list[str]) -> list[Path]:
    """Shard reports from paths and globs (quoted for the shell, or from --agentbench-merge), each file once."""
    paths: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern) and not Path(pattern).exists():
            found = sorted(glob.glob(pattern))
            if not found:
                raise AgentbenchError(f"no shard report matches {pattern}")
            paths += map(Path, found)
        else:
            paths.append(Path(pattern))
    unique: dict[Path, Path] = {}
    for path in paths:  # the same file named twice (a path and a glob) is read once
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def load_shards(paths: list[Path]) -> list[ShardRun]:
    from .page import load_run

    runs = []
    for path in paths:
        report, records, why = load_run(path)
        if not isinstance(report.get("shard"), dict):
            raise AgentbenchError(f"{path} is not a shard's report (a run with --agentbench-shard I/N)")
        if records is None:
            raise AgentbenchError(f"{path}: its records: {why}")
        runs.append(ShardRun(path, report, records))
    if not runs:
        raise AgentbenchError("no shard report to merge")
    return runs


def _differ(values: dict[str, Any]) -> str | None:
    """`a.json: X, b.json: Y` when the values differ, else None."""
    if len({repr(v) for v in values.values()}) <= 1:
        return None
    shown: dict[str, str] = {}
    for name, value in values.items():
        shown.setdefault(repr(value), name)
    return "; ".join(f"{name}: {for_terminal(str(value))[:80]}" for value, name in shown.items())


def check_compatible(runs: list[ShardRun]) -> None:
    """One line when the shards are not parts of one run: other shard counts, models, datasets, settings, config_sha
    or selection (-k/-m, samples)."""
    name = {id(r): r.path.name for r in runs}

    def refuse(what: str, values: dict[str, Any]) -> None:
        diff = _differ(values)
        if diff:
            raise AgentbenchError(f"shards of different {what}: {diff}")

    refuse("shard counts (N of I/N)", {name[id(r)]: r.count for r in runs})
    planned = [r for r in runs if r.report["shard"].get("plan")]
    refuse("models", {name[id(r)]: sorted(r.report["shard"]["plan"]) for r in planned})
    by_group: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for r in runs:
        for rec in r.records:
            group = by_group[(rec["model"], rec["suite"])]
            group["datasets"][name[id(r)]] = rec.get("dataset_sha256")
            group["suite settings"][name[id(r)]] = rec.get("suite_settings")
            params = {k: v for k, v in (rec.get("params") or {}).items() if k != "seed"}
            group["generation settings"][name[id(r)]] = params
            group[f"config_sha (sample {rec['sample']})"][name[id(r)]] = rec.get("config_sha")
    for what in ("datasets", "suite settings", "generation settings"):
        for (model, suite), group in sorted(by_group.items()):
            refuse(f"{what} for {model}/{suite}", group[what])
    run_settings = ("seed", "sandbox", "samples")
    for key in run_settings:
        refuse(f"settings ({key})", {name[id(r)]: (r.report.get("run") or {}).get(key) for r in runs})
    for (model, suite), group in sorted(by_group.items()):
        for what, values in group.items():
            if what.startswith("config_sha"):
                refuse(f"settings for {model}/{suite} ({what}: the model, its backend or the agent limits)", values)
    refuse(
        "selections (-k/-m or the data: the plans of the whole run differ)",
        {name[id(r)]: r.report["shard"].get("plan_sha256") for r in planned},
    )
    plan = planned[0].report["shard"]["plan"] if planned else {}
    for r in runs:  # a shard's samples are of its own tasks, all in the run's plan (a renamed or edited report is not)
        for rec in r.records:
            if shard_of(rec["task"], r.count) != r.index or rec["task"] not in plan.get(rec["model"], {}).get(
                rec["suite"], {}
            ):
                raise AgentbenchError(
                    f"{r.path} (shard {r.index}/{r.count}) holds a sample of {rec['model']}/{rec['suite']} "
                    f"{rec['task']}, a task outside its shard or the run's plan: not that shard's records"
                )


def dedupe(runs: list[ShardRun]) -> tuple[list[ShardRun], list[str]]:
    """One run per shard index: a shard given twice (two copies of its report) counts once; two different runs of
    one shard are refused, one line."""
    kept: dict[int, ShardRun] = {}
    notes = []
    for r in runs:
        first = kept.get(r.index)
        if first is None:
            kept[r.index] = r
            continue
        same = {resume_key(x): x.get("status") for x in first.records} == {
            resume_key(x): x.get("status") for x in r.records
        }
        if not same:
            raise AgentbenchError(
                f"shard {r.index}/{r.count} given twice with different results ({first.path}, {r.path}): give one"
            )
        notes.append(f"shard {r.index}/{r.count} given twice ({first.path}, {r.path}): counted once")
    return [kept[i] for i in sorted(kept)], notes


def not_run(plan: dict, records: list[dict], skipped: set[tuple[str, str]], no_rows: dict) -> dict[str, list[str]]:
    """`model/suite` -> tasks of the plan with fewer records than planned samples (a missing or interrupted shard);
    suites that could not run and tasks a replay file had no rows for are left out (the report says those apart)."""
    have = Counter((r["model"], r["suite"], r["task"]) for r in records)
    out = {}
    for model, suites in sorted(plan.items()):
        for suite, tasks in sorted(suites.items()):
            if (model, suite) in skipped:
                continue
            missing_rows = set(no_rows.get((model, suite), ()))
            short = [t for t, n in tasks.items() if have[(model, suite, t)] < n and t not in missing_rows]
            if short:
                out[f"{model}/{suite}"] = sorted(short, key=natural_key)
    return out


def build(runs: list[ShardRun], gate: GateConfig, out: Path) -> tuple[dict, list[dict]]:
    """The merged report and its records (not written)."""
    runs, twice = dedupe(runs)
    check_compatible(runs)
    count = runs[0].count
    records_by_key: dict[tuple, dict] = {}
    for r in runs:
        for rec in r.records:
            records_by_key.setdefault(resume_key(rec), rec)
    records = list(records_by_key.values())
    plans = [r.report["shard"]["plan"] for r in runs if r.report["shard"].get("plan")]
    plan = plans[0] if plans else {}
    unavailable: dict[str, str] = {}
    no_rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in runs:
        for suite, why in (r.report.get("unavailable_suites") or {}).items():
            unavailable.setdefault(suite, why)
        for res in r.report["results"]:
            no_rows[(res["model"], res["suite"])] += res.get("tasks_without_samples") or []
    skipped = {(m, s) for m, suites in plan.items() for s in suites if s in unavailable}
    missing = sorted(set(range(1, count + 1)) - {r.index for r in runs})
    short = not_run(plan, records, skipped, no_rows)
    n_short = sum(len(t) for t in short.values())
    incomplete = None
    if missing or short:
        shown = "; ".join(
            f"{group}: {', '.join(tasks[:SHOWN])}{', ...' if len(tasks) > SHOWN else ''}"
            for group, tasks in short.items()
        )
        gone = f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing, " if missing else ""
        interrupted = [f"{r.index}/{count}" for r in runs if r.report.get("status") == "interrupted"]
        cut = f"shard(s) {', '.join(interrupted)} interrupted, " if interrupted else ""
        incomplete = f"{gone}{cut}{n_short} task(s) not run, in no score ({shown or 'none'})"
    first = min(runs, key=lambda r: r.index)
    seed = (first.report.get("run") or {}).get("seed")
    if seed is not None:
        gate = replace(gate, seed=int(seed))  # the gate's bootstrap and randomization test: as the shards' run
    sandbox = (first.report.get("run") or {}).get("sandbox") or "process"
    results = run_results(records, sandbox, dict(no_rows))
    verdict = judge(results, gate, unavailable, incomplete)
    comparison = verdict.pop("comparison", None)
    items = [r.report.get("items") or {} for r in runs]
    status = "incomplete" if incomplete else ("complete" if records else "empty")
    status_line = (
        f"incomplete: {incomplete}; run the missing shard(s) (or --agentbench-resume an interrupted one) and merge again"
        if incomplete
        else f"complete: {len(runs)} of {count} shard(s) merged, {len(records)} sample(s)"
    )
    report = {
        "schema": REPORT_SCHEMA,
        "created_utc": min(str(r.report.get("created_utc") or "") for r in runs),
        "status": status,
        "status_line": status_line,
        "items": {
            "collected": items[0].get("collected"),
            "selected": sum(n for suites in plan.values() for tasks in suites.values() for n in tasks.values()),
            "done": sum(int(i.get("done") or 0) for i in items),
        },
        "results": results,
        "resources": resources_by_model(records),
        "gate": verdict,
        "comparison": comparison,
        "run": {**(first.report.get("run") or {}), "xdist_workers": None, "args": None},  # per shard: merged.shards
        "unavailable_suites": unavailable,
        "samples_file": str(out.with_suffix(".jsonl")),
        "previous_run": None,
        "merged": {
            "count": count,
            "shards": [
                {
                    "index": r.index,
                    "report": str(r.path),
                    "status": r.report.get("status"),
                    "created_utc": r.report.get("created_utc"),
                    "samples": len(r.records),
                    "host": ((r.report.get("run") or {}).get("machine") or {}).get("hostname"),
                    "xdist_workers": (r.report.get("run") or {}).get("xdist_workers"),
                    "args": (r.report.get("run") or {}).get("args"),
                }
                for r in runs
            ],
            "missing": missing,
            "not_run": short,
            "plan_sha256": first.report["shard"].get("plan_sha256"),
            "notes": twice,
        },
    }
    return report, sorted(records, key=lambda r: (r["model"], r["suite"], natural_key(r["task"]), r["sample"]))


def merge(
    patterns: list[str], out: Path, gate: GateConfig, html: Path | None = None, keep_runs: int | None = None
) -> tuple[dict, int]:
    """Merge and write OUT (report), OUT.jsonl (records) and the HTML page; returns (report, exit status: 0 when the
    gate passes, 1 when it fails). Raises AgentbenchError with one line (nothing written then)."""
    paths = expand(patterns)
    jsonl = out.with_suffix(".jsonl")
    for p in paths:
        if p.resolve() in (out.resolve(), jsonl.resolve()):
            raise AgentbenchError(f"{p} is both a shard and the merged report: give the merged report another path")
    claim(out, "report", "merged report")
    claim(jsonl, "records", "merged records")
    check_writable(out.parent, "merged report")
    if html is not None:
        claim(html, "html", "HTML report")
        check_writable(html.parent, "HTML report")
    report, records = build(load_shards(paths), gate, out)
    previous = archive_run(out, jsonl, keep_runs)
    report["previous_run"] = str(previous) if previous else None
    RecordLog(jsonl, records).close()
    write_json(out, report)
    if html is not None:
        from .page import write_run_page

        write_run_page(html, report, records, str(out), gate.baseline_path, gate.baseline)
    return report, 0 if report["gate"]["ok"] else 1


def lines(report: dict, out: Path) -> list[str]:
    """What a merge prints: its status, the summary table, the gate's lines."""
    from .report import summary_lines

    said = [f"merge: {report['status_line']}"]
    said += [f"merge: {note}" for note in report["merged"]["notes"]]
    if report["results"]:
        said += summary_lines(report["results"])
    said.append(f"report: {out}  samples: {report['samples_file']}")
    said += [f"gate: {line}" for line in report["gate"]["lines"]]
    return [for_terminal(line) for line in said]


def main(argv: list[str]) -> int:
    """`python -m pytest_agentbench merge OUT.json SHARD.json ...`: exit 0 (merged; the gate passes), 1 (the gate
    fails), 2 (refused: bad input, one line)."""
    from ..results.compare import parse_model_map

    ap = argparse.ArgumentParser(
        prog="python -m pytest_agentbench merge",
        description="Merge shard reports (runs with --agentbench-shard I/N) into one report, as one run would give.",
    )
    ap.add_argument("out", type=Path, help="the merged report.json to write (records go beside it as .jsonl)")
    ap.add_argument("shards", nargs="+", help="shard reports, or globs of them (quote them: 'out/report-shard-*.json')")
    ap.add_argument("--html", type=Path, metavar="PAGE.html", help="also write the report page")
    ap.add_argument("--fail-under", type=float, metavar="X", help="gate: fail when pass@1 of any model/suite < X")
    ap.add_argument("--baseline", metavar="PATH", help="gate: pair with an earlier report task by task")
    ap.add_argument("--max-drop", type=float, default=0.0, metavar="X", help="the pass@1 drop that matters")
    ap.add_argument("--alpha", type=float, default=0.05, metavar="A", help="one-sided significance level")
    ap.add_argument("--strict", action="store_true", help="an inconclusive comparison or a missing shard fails")
    ap.add_argument("--model-map", action="append", metavar="NEW=OLD", help="pair model NEW with the baseline's OLD")
    ap.add_argument("--keep-runs", type=int, metavar="N", help="earlier merged reports kept under runs/ (default all)")
    opts = ap.parse_args(argv)
    try:
        if not 0 < opts.alpha < 0.5 or opts.max_drop < 0:
            raise ValueError("--alpha must be in (0, 0.5) and --max-drop at least 0")
        if opts.max_drop and not opts.baseline:
            raise ValueError("--max-drop needs --baseline")
        gate = GateConfig(
            fail_under=opts.fail_under,
            baseline=load_baseline(Path(opts.baseline)) if opts.baseline else None,
            baseline_path=opts.baseline,
            max_drop=opts.max_drop,
            alpha=opts.alpha,
            strict=opts.strict,
            model_map=parse_model_map(opts.model_map),
        )
        report, status = merge(opts.shards, opts.out, gate, opts.html, opts.keep_runs)
    except (AgentbenchError, ValueError, OSError) as exc:
        from ..errors import one_line

        print(f"merge: {for_terminal(one_line(exc) if isinstance(exc, OSError) else str(exc))}", file=sys.stderr)
        return 2
    for line in lines(report, opts.out):
        print(line)
    return status
