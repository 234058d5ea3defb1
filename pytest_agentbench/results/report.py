"""Per-sample records -> the run's results: scores per model and suite, summary lines, a pandas view.

Everything is computed from the records on the controller, sorted first, so `-n 0` and `-n 2` give the same report.
Infra samples (the harness failed, not the model) are counted apart and are in no score's denominator.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..metrics import describe, mean_pass_at_k, mean_pass_hat_k, natural_key
from ..outcome import Status
from ..sanitize import for_terminal
from ..stats import score_errors
from .records import read_records

if TYPE_CHECKING:
    import pandas

STATUSES = [s.value for s in Status]
INFRA = Status.INFRA.value


def record_key(rec: dict) -> tuple:
    return (rec["model"], rec["suite"], natural_key(rec["task"]), rec["sample"])


def per_task_counts(records: Iterable[dict]) -> dict[str, list[int]]:
    """{task: [n, c]}: scored samples and passed samples per task (infra samples left out)."""
    counts: dict[str, list[int]] = {}
    for rec in sorted(records, key=record_key):
        if rec["status"] == INFRA:
            continue
        n_c = counts.setdefault(rec["task"], [0, 0])
        n_c[0] += 1
        n_c[1] += rec["status"] == Status.PASSED.value
    return counts


def aggregate(records: Iterable[dict]) -> list[dict[str, Any]]:
    """One result per (model, suite): pass@k for every k up to the fewest samples any task has."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for rec in sorted(records, key=record_key):
        groups[(rec["model"], rec["suite"])].append(rec)
    results = []
    for (model, suite), recs in groups.items():
        scored = [r for r in recs if r["status"] != INFRA]
        per_task = per_task_counts(scored)
        counts = [tuple(v) for v in per_task.values()]
        kmax = min((n for n, _ in counts), default=0)
        outcomes = Counter(rec["status"] for rec in recs)
        sizes = Counter(n for n, _ in counts)
        first = scored[0] if scored else recs[0]
        results.append(
            {
                "model": model,
                "suite": suite,
                "tasks": len(per_task),
                "samples": len(scored),
                "samples_per_task": {
                    "min": kmax,
                    "max": max(sizes, default=0),
                    "tasks_by_samples": {str(n): sizes[n] for n in sorted(sizes)},
                },
                "pass@1": round(mean_pass_at_k(counts, 1), 6) if counts else None,
                "pass@k": {str(k): round(mean_pass_at_k(counts, k), 6) for k in range(1, kmax + 1)},
                "pass^k": {str(k): round(mean_pass_hat_k(counts, k), 6) for k in range(2, kmax + 1)},
                "errors": score_errors(per_task, kmax),
                "outcomes": {s: outcomes.get(s, 0) for s in STATUSES},
                "infra": {
                    "samples": outcomes.get(INFRA, 0),
                    "tasks": sorted({r["task"] for r in recs if r["status"] == INFRA} - set(per_task), key=natural_key),
                },
                "latency_s": {
                    key: describe([rec[key] for rec in scored]) for key in ("wall_s", "model_s", "sandbox_s")
                },
                "tokens": {
                    kind: {
                        "mean": round(sum(r[f"{kind}_tokens"] for r in scored) / len(scored), 2) if scored else 0.0,
                        "total": sum(r[f"{kind}_tokens"] for r in scored),
                    }
                    for kind in ("prompt", "completion")
                },
                "resources": resources_block(scored),
                "per_task": per_task,
                # what must match for two runs to be paired (compare.py)
                "dataset_sha256": first.get("dataset_sha256"),
                "suite_settings": first.get("suite_settings"),
                "params": {k: v for k, v in (first.get("params") or {}).items() if k != "seed"},
            }
        )
    return results


def run_results(
    records: list[dict], sandbox: str, no_rows: dict[tuple[str, str], list[str]] | None = None
) -> list[dict]:
    """The report's `results`: `aggregate`, with the sandbox, each suite's own metrics (Suite.summarize) and the tasks
    a replay file had no rows for. One function for a run and for merged shards (merge.py), so both agree."""
    from ..errors import one_line
    from ..suites.base import suite_by_name

    results = aggregate(records)
    for result in results:
        result["sandbox"] = sandbox
        cls = suite_by_name(result["suite"])
        if cls is not None:
            mine = [r for r in records if (r["model"], r["suite"]) == (result["model"], result["suite"])]
            try:
                extra = cls.summarize(mine)
            except Exception as exc:  # a suite's metrics bug must not cost the run its report
                extra = {"error": one_line(exc)}
            if extra:
                result["metrics"] = extra
        missing = (no_rows or {}).get((result["model"], result["suite"]))
        if missing:
            result["tasks_without_samples"] = sorted(set(missing))
    return results


def resources_block(records: Iterable[dict]) -> dict[str, Any]:
    """Memory and speed of what ran the model, from what each sample measured (README, "Memory and throughput"):
    the resident high-water mark of each process that ran it (its peak over the run: the largest, and the sum over
    processes, e.g. one copy per xdist worker), CUDA's peak allocation, completion tokens per second of model time
    (samples served from the generation cache left out), and time to the first token where replies streamed."""
    records = list(records)
    by_process: dict[str, float] = {}
    cuda: dict[str, list[float]] = {"cuda_peak_mb": [], "cuda_used_mb": []}
    alongside: set[str] = set()
    for rec in records:
        res = rec.get("resources") or {}
        process = str(res.get("process", "unknown"))
        if res.get("peak_rss_mb") is not None:
            by_process[process] = max(by_process.get(process, 0.0), res["peak_rss_mb"])
        for key, values in cuda.items():
            if res.get(key) is not None:
                values.append(res[key])
        alongside.update(res.get("alongside") or ())
    timed = [r for r in records if not (r.get("cache") or {}).get("hits")]
    model_s = sum(r.get("model_s", 0.0) for r in timed)
    tokens = sum(r.get("completion_tokens", 0) for r in timed)
    ttft = [v for r in records for v in r.get("ttft_s") or ()]
    return {
        "peak_rss_mb": max(by_process.values()) if by_process else None,
        "peak_rss_mb_total": round(sum(by_process.values()), 1) if by_process else None,
        "by_process": dict(sorted(by_process.items())),
        "cuda_peak_mb": max(cuda["cuda_peak_mb"], default=None),
        "cuda_used_mb": max(cuda["cuda_used_mb"], default=None),
        # other models loaded in the same process: its memory figures hold them too (a model per run to compare)
        "shared_with": sorted(alongside),
        "tokens_per_s": round(tokens / model_s, 2) if model_s > 0 and tokens > 0 else None,  # none: no model
        "completion_tokens": tokens,
        "model_s": round(model_s, 3),
        "timed_samples": len(timed),
        "ttft_s": describe(ttft) if ttft else None,
        "ttft_replies": len(ttft),
    }


def resources_by_model(records: Iterable[dict]) -> dict[str, dict]:
    """resources_block per model over all its suites (the report's overall view)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for rec in sorted(records, key=record_key):
        if rec["status"] != INFRA:
            groups[rec["model"]].append(rec)
    return {model: resources_block(recs) for model, recs in groups.items()}


def resource_lines(by_model: dict[str, dict]) -> list[str]:
    lines = []
    for model, res in by_model.items():
        parts = []
        if res["peak_rss_mb"] is not None:
            many = len(res["by_process"]) > 1
            parts.append(
                f"peak RSS {res['peak_rss_mb']:.0f} MB"
                + (f" per process, {res['peak_rss_mb_total']:.0f} MB in {len(res['by_process'])}" if many else "")
                + f" ({', '.join(res['by_process'])})"
            )
        if res["cuda_peak_mb"] is not None:
            parts.append(f"CUDA peak {res['cuda_peak_mb']:.0f} MB")
        if res["tokens_per_s"] is not None:
            parts.append(f"{res['tokens_per_s']:.1f} tokens/s")
        if res["ttft_s"] is not None:
            parts.append(f"first token p50 {res['ttft_s']['p50']:.2f} s")
        if parts:
            lines.append(f"{for_terminal(model)}: " + ", ".join(parts))
    return lines


def summary_lines(results: list[dict]) -> list[str]:
    """The table that closes the terminal output: a row per model and suite with pass@1 (± its standard error, and
    its 95% interval), outcome counts, wall time per sample (median and 95th percentile), mean model and sandbox
    time per sample, and completion tokens per sample. Columns that would hold nothing are left out (pass@k with one
    sample per task; timeout and unparsable when no sample ended so)."""
    kmaxes = [max((int(k) for k in r["pass@k"]), default=0) for r in results]
    statuses = [s for s in STATUSES if s not in ("timeout", "unparsable") or any(r["outcomes"][s] for r in results)]
    head = [
        "model",
        "suite",
        "tasks",
        "samples",
        "pass@1",
        "95% CI",
        *(["pass@k"] if max(kmaxes, default=0) > 1 else []),
        *statuses,
        "wall p50/p95 s",
        "model s",
        "sandbox s",
        "tok/sample",
    ]
    rows = []
    for r, kmax in zip(results, kmaxes):
        err = (r.get("errors") or {}).get("pass@1")
        lat = r["latency_s"]
        rows.append(
            [
                _short(for_terminal(r["model"])),
                for_terminal(r["suite"]),
                str(r["tasks"]),
                str(r["samples"]),
                _with_error(r),
                f"[{err['lo']:.3f}, {err['hi']:.3f}]" if err and r["pass@1"] is not None else "-",
                *([f"@{kmax} {r['pass@k'][str(kmax)]:.3f}" if kmax > 1 else "-"] if "pass@k" in head else []),
                *[str(r["outcomes"][s]) for s in statuses],
                f"{_secs(lat['wall_s']['p50'])}/{_secs(lat['wall_s']['p95'])}",
                _secs(lat["model_s"]["mean"]),
                _secs(lat["sandbox_s"]["mean"]),
                f"{r['tokens']['completion']['mean']:.0f}",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [fmt(head), *[fmt(r) for r in rows]]


def _secs(value: float) -> str:
    return f"{value:.3f}" if value < 100 else f"{value:.0f}"


def _short(name: str, width: int = 40) -> str:
    """A long model name (a replay file's path) cut in the middle, so the table stays readable."""
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width // 2 - 1) :]


def _with_error(result: dict) -> str:
    if result["pass@1"] is None:
        return "-"
    err = result.get("errors", {}).get("pass@1")
    return f"{result['pass@1']:.3f} ± {err['se']:.3f}" if err else f"{result['pass@1']:.3f}"


FAILED_OUTCOMES = [s for s in STATUSES if s not in (Status.PASSED.value, INFRA)]
_EXCEPTION = re.compile(r"^((?:[a-z][\w' ]{0,40} )?[A-Z]\w*(?:Error|Exception|Exit|Interrupt))\b")


def reason_class(rec: dict) -> str:
    """What a failed sample's reason says, without its particulars: `failed: AssertionError`, `error: the candidate
    raised SyntaxError`, `failed: safety violation`, `timeout: ran past N s`."""
    reason = for_terminal((rec.get("reason") or "").strip().split("\n", 1)[0])
    found = _EXCEPTION.match(reason)
    if found:
        head = found.group(1)
    elif ": " in reason and len(reason.split(": ", 1)[0]) <= 40:
        head = reason.split(": ", 1)[0]
    else:
        head = re.sub(r"\d+(\.\d+)?", "N", reason[:60])
    return f"{rec['status']}: {head}" if head else rec["status"]


def failure_lines(
    records: Iterable[dict], width: int = 300, examples: int = 2, classes: int = 8, left_out: bool = False
) -> list[str]:
    """The model's failures in a few lines instead of one block per item: counts by outcome, then the commonest
    reason classes, each with its count and a few examples with their whole reason (a line cut at `width`)."""
    failed = sorted((r for r in records if r.get("status") in FAILED_OUTCOMES), key=record_key)
    if not failed:
        return []
    scored = sum(1 for r in records if r.get("status") != INFRA)
    counts = Counter(r["status"] for r in failed)
    by_class: dict[str, list[dict]] = defaultdict(list)
    for rec in failed:
        by_class[reason_class(rec)].append(rec)
    note = " (left out of pytest's FAILURES block: --tb=short shows it)" if left_out else ""
    lines = [
        f"failures: {len(failed)} of {scored} scored samples ("
        + ", ".join(f"{s} {counts[s]}" for s in FAILED_OUTCOMES if counts[s])
        + f"){note}"
    ]
    ranked = sorted(by_class.items(), key=lambda kv: -len(kv[1]))
    several_models = len({(r["model"], r["suite"]) for r in failed}) > 1
    for label, recs in ranked[:classes]:
        lines.append(f"  {len(recs):>5}  {label}")
        for rec in recs[:examples]:
            where = f"{rec['model']}/{rec['task']}" if several_models else rec["task"]
            text = (
                f"         {for_terminal(where)} s{rec['sample']}: {rec['status']}: "
                f"{for_terminal((rec.get('reason') or '').strip())}"
            )
            lines.append(text if len(text) <= width else text[: max(width - 3, 20)] + "...")
        if len(recs) > examples:
            lines.append(f"         ... and {len(recs) - examples} more")
    rest = ranked[classes:]
    if rest:
        lines.append(f"  {sum(len(v) for _, v in rest):>5}  in {len(rest)} other reason classes")
    return lines


def records_frame(path_or_records) -> pandas.DataFrame:
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
