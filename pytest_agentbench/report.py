"""Per-sample records -> the run's report: scores per model and suite, provenance, the gate's verdict.

Records are plain dicts (they travel from xdist workers in `report.user_properties`); everything here is
computed from them on the controller, sorted first, so `-n 0` and `-n 2` give the same report.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .metrics import describe, mean_pass_at_k
from .outcome import Status

SCHEMA = "pytest-agentbench/report/v1"
STATUSES = [s.value for s in Status]


def _natural(text: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def record_key(rec: dict) -> tuple:
    return (rec["model"], rec["suite"], _natural(rec["task"]), rec["sample"])


def aggregate(records: Iterable[dict]) -> list[dict[str, Any]]:
    """One result per (model, suite): pass@k for every k up to the fewest samples any task has."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for rec in sorted(records, key=record_key):
        groups[(rec["model"], rec["suite"])].append(rec)
    results = []
    for (model, suite), recs in groups.items():
        per_task: dict[str, list[bool]] = defaultdict(list)
        for rec in recs:
            per_task[rec["task"]].append(rec["status"] == Status.PASSED.value)
        counts = [(len(v), sum(v)) for v in per_task.values()]
        kmax = min(n for n, _ in counts)
        outcomes = Counter(rec["status"] for rec in recs)
        results.append({
            "model": model,
            "suite": suite,
            "tasks": len(per_task),
            "samples": len(recs),
            "samples_per_task": kmax if kmax == max(n for n, _ in counts) else [kmax, max(n for n, _ in counts)],
            "pass@1": round(mean_pass_at_k(counts, 1), 6),
            "pass@k": {str(k): round(mean_pass_at_k(counts, k), 6) for k in range(1, kmax + 1)},
            "outcomes": {s: outcomes.get(s, 0) for s in STATUSES},
            "latency_s": {key: describe([rec[key] for rec in recs]) for key in ("wall_s", "model_s", "sandbox_s")},
            "tokens": {kind: {"mean": round(sum(r[f"{kind}_tokens"] for r in recs) / len(recs), 2),
                              "total": sum(r[f"{kind}_tokens"] for r in recs)} for kind in ("prompt", "completion")},
        })
    return results


# -- gate ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateConfig:
    fail_under: float | None = None
    baseline: dict[tuple[str, str], float] | None = None
    baseline_path: str | None = None
    max_drop: float = 0.0

    @property
    def active(self) -> bool:
        return self.fail_under is not None or self.baseline is not None


def load_baseline(path: Path) -> dict[tuple[str, str], float]:
    """pass@1 per (model, suite) from an earlier report; raises ValueError with a one-line reason."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return {(r["model"], r["suite"]): float(r["pass@1"]) for r in doc["results"]}
    except OSError as exc:
        raise ValueError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"baseline {path} is not a pytest-agentbench report ({type(exc).__name__}: {exc})") from exc


def judge(results: list[dict], gate: GateConfig, harness_errors: int) -> dict[str, Any]:
    """The gate's verdict: ok plus one line per check. Harness errors always fail it."""
    lines, ok = [], True
    if harness_errors:
        ok = False
        lines.append(f"FAIL harness: {harness_errors} sample(s) could not be evaluated (infra errors), "
                     "scores are incomplete")
    if gate.active and not results:
        ok = False
        lines.append("FAIL nothing to gate: no benchmark samples ran")
    for r in results:
        name, p1 = f"{r['model']}/{r['suite']}", r["pass@1"]
        if gate.fail_under is not None:
            good = p1 >= gate.fail_under - 1e-12
            ok &= good
            lines.append(f"{'PASS' if good else 'FAIL'} {name}: pass@1 {p1:.4f} "
                         f"{'>=' if good else '<'} fail-under {gate.fail_under:.4f}")
        if gate.baseline is not None:
            base = gate.baseline.get((r["model"], r["suite"]))
            if base is None:
                lines.append(f"SKIP {name}: not in baseline {gate.baseline_path}")
                continue
            drop = base - p1
            good = drop <= gate.max_drop + 1e-12
            ok &= good
            lines.append(f"{'PASS' if good else 'FAIL'} {name}: pass@1 {p1:.4f} vs baseline {base:.4f} "
                         f"(drop {drop:+.4f}, max {gate.max_drop:.4f})")
    return {"active": gate.active, "ok": ok, "lines": lines,
            "fail_under": gate.fail_under, "baseline": gate.baseline_path, "max_drop": gate.max_drop}


# -- storage -------------------------------------------------------------------------------------
class RecordLog:
    """Append-only JSONL, flushed per sample: a killed run keeps every sample it finished.

    Starts empty, or with `records` (a resumed run), written atomically before anything is appended."""

    def __init__(self, path: Path, records: list[dict] = ()):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, path)
        self._f = open(path, "a", encoding="utf-8")

    def append(self, record: dict) -> None:
        self._f.write(json.dumps(record, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_records(path: Path) -> list[dict]:
    """Records of a JSONL; a line cut short by a killed run is skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and {"model", "suite", "task", "sample"} <= set(rec):
            records.append(rec)
    return records


def resume_key(rec: dict) -> tuple:
    return (rec["model"], rec["suite"], rec["task"], rec["sample"], rec.get("config_sha"))


def records_frame(path_or_records) -> "pandas.DataFrame":  # noqa: F821
    """A run's samples as a pandas DataFrame, one row per sample.

    Takes the JSONL path (or the list of records). Columns: model, suite, task, sample, status, passed,
    reason, wall_s, model_s, sandbox_s, prompt_tokens, completion_tokens, iterations (rounds of an agent),
    and the rest of each record as it is. Example: `records_frame(".agentbench/report.jsonl")
    .groupby(["model", "suite"]).passed.mean()`.
    """
    import pandas as pd

    records = read_records(path_or_records) if isinstance(path_or_records, (str, Path)) else list(path_or_records)
    frame = pd.DataFrame.from_records(sorted(records, key=record_key))
    if frame.empty:
        return frame
    frame["passed"] = frame["status"] == Status.PASSED.value
    frame["iterations"] = [len((e or {}).get("iterations", [])) or 1 for e in frame.get("extra", [{}] * len(frame))]
    return frame


def write_json(path: Path, doc: dict) -> None:
    """Atomic write: a reader (or a crash) never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def summary_lines(results: list[dict]) -> list[str]:
    head = ["model", "suite", "tasks", "samples", "pass@1", "pass@k", *[s for s in STATUSES], "wall p50 s", "tok/sample"]
    rows = []
    for r in results:
        kmax = max(int(k) for k in r["pass@k"])
        rows.append([r["model"], r["suite"], str(r["tasks"]), str(r["samples"]), f"{r['pass@1']:.3f}",
                     f"@{kmax} {r['pass@k'][str(kmax)]:.3f}" if kmax > 1 else "-",
                     *[str(r["outcomes"][s]) for s in STATUSES], f"{r['latency_s']['wall_s']['p50']:.2f}",
                     f"{r['tokens']['completion']['mean']:.0f}"])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(head), *[fmt(r) for r in rows]]
