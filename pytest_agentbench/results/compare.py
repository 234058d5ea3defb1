"""Two runs compared task by task (the gate's `--agentbench-baseline`, and `python -m pytest_agentbench compare`).

For each model and suite of the new run: its baseline result (the same model; a name given by --agentbench-model-map
NEW=OLD; else the baseline's only model for that suite), whether the two can be compared at all (same dataset and
suite settings: otherwise refused; differing generation parameters, sandbox or task sets: compared on the tasks
both have, with a warning), the paired difference in pass@1 with its interval (stats.paired) and the tasks that
regressed or improved. The verdict on a drop larger than `max_drop`:

- FAIL: the drop is larger than max_drop and significant (one-sided p < alpha);
- PASS: the drop's one-sided upper confidence bound is at most max_drop (a drop of max_drop is ruled out);
- INCONCLUSIVE: neither; the data cannot tell a drop of max_drop from noise (with the tasks that would be
  needed). It fails the gate only under --agentbench-strict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..stats import Paired, paired, tasks_needed

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
SHOWN_TASKS = 5


@dataclass(frozen=True)
class Policy:
    max_drop: float = 0.0
    alpha: float = 0.05
    strict: bool = False
    seed: int = 0
    model_map: dict[str, str] = field(default_factory=dict)  # new model name -> baseline model name


def load_baseline(path: Path) -> list[dict]:
    """The results of an earlier report; raises ValueError with a one-line reason."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        results = doc["results"]
        for r in results:
            r["model"], r["suite"]
            if r["pass@1"] is not None:
                float(r["pass@1"])
            for n, c in r.get("per_task", {}).values():  # the per-task counts pair two runs (compare.py)
                if not 0 <= int(c) <= int(n):
                    raise ValueError(f"per_task counts ({n}, {c}) of {r['model']}/{r['suite']} are impossible")
        return results
    except OSError as exc:
        raise ValueError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"baseline {path} is not a pytest-agentbench report ({type(exc).__name__}: {exc})") from exc


def parse_model_map(items: list[str] | str | None) -> dict[str, str]:
    """NEW=OLD pairs (comma-separated or repeated); raises ValueError with a one-line reason."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [items]
    pairs: dict[str, str] = {}
    for item in (p.strip() for chunk in items for p in chunk.split(",")):
        if not item:
            continue
        new, sep, old = item.partition("=")
        if not sep or not new.strip() or not old.strip():
            raise ValueError(f"model map entry {item!r} should be NEW=OLD")
        pairs[new.strip()] = old.strip()
    return pairs


def baseline_for(result: dict, baseline: list[dict], model_map: dict[str, str]) -> tuple[dict | None, str]:
    """(the baseline result to pair with, how it was chosen)."""
    same_suite = [b for b in baseline if b["suite"] == result["suite"]]
    wanted = model_map.get(result["model"], result["model"])
    exact = [b for b in same_suite if b["model"] == wanted]
    if exact:
        return exact[0], "mapped" if wanted != result["model"] else "same model"
    if result["model"] in model_map:
        return None, f"the model map names {wanted!r}, which the baseline does not have for {result['suite']}"
    if len(same_suite) == 1:
        return same_suite[0], "the baseline's only model for the suite"
    if not same_suite:
        return None, "not in the baseline"
    held = ", ".join(sorted(b["model"] for b in same_suite))
    return None, f"the baseline has {held} for this suite: say which with --agentbench-model-map NEW=OLD"


def comparability(new: dict, old: dict) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for pairing two results."""
    refusals, warnings = [], []
    for key, what in (("dataset_sha256", "datasets"), ("suite_settings", "suite settings")):
        a, b = new.get(key), old.get(key)
        if a is None and b is None:  # a suite without data files or settings: nothing to tell apart
            continue
        if a is None or b is None:
            warnings.append(f"{what} not recorded in {'the baseline' if b is None else 'this run'}: not checked")
        elif a != b:
            refusals.append(f"{what} differ ({_short(b)} before, {_short(a)} now)")
    for key, what in (("params", "generation parameters"), ("sandbox", "sandbox")):
        a, b = new.get(key), old.get(key)
        if a is not None and b is not None and a != b:
            warnings.append(f"{what} differ ({_short(b)} before, {_short(a)} now)")
    tasks_new, tasks_old = set(new.get("per_task", {})), set(old.get("per_task", {}))
    if tasks_new != tasks_old:
        warnings.append(
            f"task sets differ: {len(tasks_new & tasks_old)} in both, {len(tasks_old - tasks_new)} only "
            f"before, {len(tasks_new - tasks_old)} only now (compared on the tasks in both)"
        )
    return refusals, warnings


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:12] if isinstance(value, str) and len(value) == 64 else text[:80]


def decide(result: Paired, policy: Policy) -> tuple[str, str]:
    """(PASS | FAIL | INCONCLUSIVE, the reason in words)."""
    drop, upper = -result.diff, result.drop_upper(policy.alpha)
    conf = round(100 * (1 - policy.alpha))
    if drop > policy.max_drop + 1e-12 and result.p_drop < policy.alpha:
        return FAIL, f"significant drop (p={result.p_drop:.3g} < {policy.alpha:g})"
    if upper <= policy.max_drop + 1e-12:
        return PASS, f"a drop above {policy.max_drop:.3f} is ruled out ({conf}% upper bound {upper:+.3f})"
    need = tasks_needed(result, policy.max_drop, policy.alpha)
    if policy.max_drop <= 0:
        hint = "a drop of 0 can never be ruled out: set --agentbench-max-drop to the drop that matters"
    elif need is None:
        hint = "more tasks or samples per task are needed"
    else:
        hint = f"about {need} tasks (or more samples per task) would tell a drop of {policy.max_drop:.3f} from none"
    return INCONCLUSIVE, (
        f"cannot tell a drop of {policy.max_drop:.3f} from noise (p={result.p_drop:.3g}, {conf}% "
        f"upper bound {upper:+.3f}); {hint}"
    )


def compare_results(
    results: list[dict], baseline: list[dict], policy: Policy, baseline_name: str = "baseline"
) -> dict[str, Any]:
    """Every result against the baseline: {"comparisons": [...], "lines": [...], "ok": bool, "compared": n}."""
    comparisons, lines, ok, compared = [], [], True, 0
    for r in results:
        name = f"{r['model']}/{r['suite']}"
        base, how = baseline_for(r, baseline, policy.model_map)
        entry: dict[str, Any] = {"model": r["model"], "suite": r["suite"], "how": how}
        comparisons.append(entry)
        if base is None:
            entry["verdict"] = "SKIP"
            mapped = r["model"] in policy.model_map or "model-map" in how
            lines.append(f"{'FAIL' if mapped else 'SKIP'} {name}: {how}")
            ok &= not mapped
            continue
        against = "baseline" if base["model"] == r["model"] else f"baseline {base['model']}/{base['suite']}"
        entry["baseline_model"] = base["model"]
        refusals, warnings = comparability(r, base)
        entry["warnings"] = warnings
        for w in warnings:
            lines.append(f"WARN {name}: {w}")
        if refusals:
            entry["verdict"] = FAIL
            entry["refused"] = refusals
            lines.append(f"FAIL {name}: not comparable with {against}: {'; '.join(refusals)}")
            ok = False
            continue
        result = paired(_counts(base), _counts(r), seed=policy.seed)
        if result is None:
            entry["verdict"] = FAIL
            lines.append(f"FAIL {name}: no task in common with {against}")
            ok = False
            continue
        compared += 1
        verdict, why = decide(result, policy)
        entry.update({"verdict": verdict, "why": why, "paired": result.to_dict()})
        lo, hi = -result.hi, -result.lo
        lines.append(
            f"{verdict} {name}: pass@1 {result.new:.4f} vs {against} {result.old:.4f} on {result.tasks} "
            f"tasks: drop {-result.diff:+.4f} [95% {lo:+.4f}, {hi:+.4f}], max {policy.max_drop:.4f}; {why}"
        )
        for label, tasks in (("regressed", result.regressed), ("improved", result.improved)):
            if tasks:
                shown = ", ".join(tasks[:SHOWN_TASKS]) + (
                    f", ... ({len(tasks)} in all)" if len(tasks) > SHOWN_TASKS else ""
                )
                lines.append(f"     {label}: {shown}")
        ok &= verdict == PASS or (verdict == INCONCLUSIVE and not policy.strict)
    if results and not compared:
        held = ", ".join(sorted({f"{b['model']}/{b['suite']}" for b in baseline})) or "nothing"
        ran = ", ".join(f"{r['model']}/{r['suite']}" for r in results)
        lines.append(f"FAIL compared nothing: {baseline_name} holds {held}; this run has {ran}")
        ok = False
    return {
        "comparisons": comparisons,
        "lines": lines,
        "ok": ok,
        "compared": compared,
        "policy": {
            "max_drop": policy.max_drop,
            "alpha": policy.alpha,
            "strict": policy.strict,
            "seed": policy.seed,
            "model_map": policy.model_map,
        },
    }


def _counts(result: dict) -> dict[str, tuple[int, int]]:
    return {task: (int(n), int(c)) for task, (n, c) in result.get("per_task", {}).items() if int(n) > 0}


def main(argv: list[str]) -> int:
    """`python -m pytest_agentbench compare OLD.json NEW.json`: exit 0 (gate passes), 1 (it fails), 2 (bad input)."""
    import argparse
    import sys
    from pathlib import Path

    from ..sanitize import for_terminal

    ap = argparse.ArgumentParser(
        prog="python -m pytest_agentbench compare",
        description="Compare two pytest-agentbench reports task by task, as the gate does.",
    )
    ap.add_argument("old", help="the baseline report.json")
    ap.add_argument("new", help="the report.json to judge")
    ap.add_argument("--max-drop", type=float, default=0.0, help="the pass@1 drop that matters (default 0)")
    ap.add_argument("--alpha", type=float, default=0.05, help="one-sided significance level (default 0.05)")
    ap.add_argument("--strict", action="store_true", help="an inconclusive comparison fails")
    ap.add_argument("--model-map", action="append", metavar="NEW=OLD", help="pair model NEW with the baseline's OLD")
    ap.add_argument(
        "--seed",
        type=int,
        default=1234,
        help="seed of the randomization test and the bootstrap interval (the gate uses the run's --seed)",
    )
    opts = ap.parse_args(argv)
    try:
        old, new = load_baseline(Path(opts.old)), load_baseline(Path(opts.new))
        if not 0 < opts.alpha < 0.5 or opts.max_drop < 0:
            raise ValueError("--alpha must be in (0, 0.5) and --max-drop at least 0")
        policy = Policy(
            max_drop=opts.max_drop,
            alpha=opts.alpha,
            strict=opts.strict,
            seed=opts.seed,
            model_map=parse_model_map(opts.model_map),
        )
    except ValueError as exc:
        print(f"compare: {for_terminal(str(exc))}", file=sys.stderr)
        return 2
    out = compare_results([r for r in new if r["pass@1"] is not None], old, policy, f"baseline {opts.old}")
    if not [r for r in new if r["pass@1"] is not None]:
        out["lines"].append(f"FAIL nothing to compare: {opts.new} has no scored result")
        out["ok"] = False
    for line in out["lines"]:
        print(for_terminal(line))
    return 0 if out["ok"] else 1
