"""BFCL's scores from a run's records: accuracy per category and the leaderboard's aggregation (bfcl-eval's own
weighting functions on the tree of its generate_leaderboard_csv), with error bars, and tool selection."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ...metrics import per_class
from . import CATEGORIES, LEFT_OUT, MULTI_TURN
from .handler import bfcl


def bfcl_metrics(records: list[dict]) -> dict:
    """Accuracy per category and BFCL v4's aggregation (bfcl_eval.eval_checker.eval_runner_helper.
    generate_leaderboard_csv: its weighting functions on the same tree), each with a task-clustered error bar, and
    tool selection: precision / recall / F1 of "called a function" on single-turn items, irrelevance accuracy."""
    from ...stats import combined_estimate, rate_estimate

    rows = [r for r in records if r.get("extra", {}).get("category") in CATEGORIES and r["status"] != "infra"]
    by_cat: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_cat[r["extra"]["category"]].append(r)
    sizes: dict[str, int] = (
        next(
            (
                r.get("suite_settings", {}).get("category_sizes")
                for r in rows
                if r.get("suite_settings", {}).get("category_sizes")
            ),
            {},
        )
        or {}
    )
    categories = {}
    for cat in CATEGORIES:
        if by_cat[cat]:
            est = rate_estimate(by_cat[cat], lambda r: r["status"] == "passed")
            categories[cat] = {
                "accuracy": est["value"],
                "tasks": est["tasks"],
                "error": est,
                "passed": sum(r["status"] == "passed" for r in by_cat[cat]),
                "samples": len(by_cat[cat]),
                "dataset_size": sizes.get(cat),
                "answer_defects": sum(bool(r["extra"].get("answer_defect")) for r in by_cat[cat]),
            }
    aggregate = leaderboard(categories, sizes)
    for node in aggregate.values():
        node["error"] = combined_estimate(
            [(w, categories[c]["error"]) for c, w in node.pop("weights").items() if c in categories],
            value=node["accuracy"],
        )
    single = [r for r in rows if r["extra"]["category"] not in MULTI_TURN]
    pairs = [
        ("call" if r["extra"]["should_call"] else "no_call", "call" if r["extra"].get("called") else "no_call")
        for r in single
    ]
    irrelevant = [r for r in single if not r["extra"]["should_call"]]
    selection: dict[str, Any] = {
        "per_class": per_class(pairs, ("call", "no_call")),
        "irrelevance_accuracy": round(sum(not r["extra"].get("called") for r in irrelevant) / len(irrelevant), 6)
        if irrelevant
        else None,
        "irrelevance_tasks": len(irrelevant),
    }
    selection["called_a_function"] = selection["per_class"]["call"]
    errors: defaultdict[str, int] = defaultdict(int)
    for r in rows:
        if r["status"] != "passed":
            errors[r["extra"].get("error_type") or r["status"]] += 1
    return {
        "categories": categories,
        "aggregate": aggregate,
        "left_out": list(LEFT_OUT),
        "tool_selection": selection,
        "error_types": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


#: the leaderboard's tree (generate_leaderboard_csv): how each score combines its parts
TREE = {
    "simple": ("unweighted", ("simple_python", "simple_java", "simple_javascript")),
    "non_live": ("unweighted", ("simple", "multiple", "parallel", "parallel_multiple")),
    "live": ("weighted", ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")),
    "irrelevance_detection": ("unweighted", ("irrelevance", "live_irrelevance")),
    "relevance_detection": ("unweighted", ("live_relevance",)),
    "multi_turn": ("unweighted", MULTI_TURN),
    "agentic": ("unweighted", ("web_search", "memory")),
    "web_search": ("unweighted", ("web_search_base", "web_search_no_snippet")),
    "memory": ("unweighted", ("memory_kv", "memory_vector", "memory_rec_sum")),
    "overall": ("percentage", ("non_live", "live", "irrelevance_detection", "multi_turn", "agentic")),
}
OVERALL_WEIGHTS = (10, 10, 10, 30, 40)
#: official sizes of the agentic categories (not run here): the leaderboard counts a category it has no score for
#: as 0 over its full size
AGENTIC_SIZES = {
    "web_search_base": 100,
    "web_search_no_snippet": 100,
    "memory_kv": 155,
    "memory_vector": 155,
    "memory_rec_sum": 155,
}


def leaderboard(categories: dict[str, dict], sizes: dict[str, int]) -> dict[str, dict]:
    """Every aggregate of the tree, computed with bfcl-eval's calculate_*_accuracy functions. A category this run
    has no score for counts as 0 (BFCL shows it as N/A and still adds the 0 into the overall score); `missing` names
    them, `weights` says how much each category weighs in the aggregate (for its error bar)."""
    b = bfcl()
    fns = {"unweighted": b.helper.calculate_unweighted_accuracy, "weighted": b.helper.calculate_weighted_accuracy}
    done: dict[str, dict] = {}

    def node(name: str) -> dict:
        if name in done:
            return done[name]
        if name not in TREE:  # a category
            have = categories.get(name)
            score = {
                "accuracy": have["accuracy"] if have else 0.0,
                "total_count": have["tasks"] if have else sizes.get(name, AGENTIC_SIZES.get(name, 0)),
                "display_accuracy": have["accuracy"] if have else "N/A",
                "weights": {name: 1.0},
                "missing": [] if have else [name],
            }
            done[name] = score
            return score
        how, parts = TREE[name]
        subs = [node(p) for p in parts]
        if how == "percentage":
            got = b.helper.calculate_percentage_weighted_accuracy(
                subs, list(OVERALL_WEIGHTS), display_na_if_category_missing=False
            )
            share = [w / sum(OVERALL_WEIGHTS) for w in OVERALL_WEIGHTS]
        else:
            got = fns[how](subs)
            total = sum(s["total_count"] for s in subs)
            share = (
                [s["total_count"] / total if total else 0.0 for s in subs]
                if how == "weighted"
                else [1 / len(subs)] * len(subs)
            )
        weights: dict[str, float] = defaultdict(float)
        for s, part in zip(subs, share):
            for cat, w in s["weights"].items():
                weights[cat] += part * w
        score = {
            "accuracy": got["accuracy"],
            "total_count": got["total_count"],
            "display_accuracy": got["display_accuracy"],
            "weights": dict(weights),
            "missing": [m for s in subs for m in s["missing"]],
        }
        done[name] = score
        return score

    out = {}
    for name in TREE:
        score = node(name)
        out[name] = {
            "accuracy": round(score["accuracy"], 6),
            "display": "N/A" if score["missing"] else round(score["accuracy"], 6),
            "missing": score["missing"],
            "run": [c for c in score["weights"] if c in categories],
            "weights": score["weights"],
        }
    # not a leaderboard column: the overall score without the agentic part this suite cannot run
    part = {k: done[k] for k in ("non_live", "live", "irrelevance_detection", "multi_turn")}
    weights = dict(zip(part, OVERALL_WEIGHTS[:4]))
    value = sum(weights[k] * part[k]["accuracy"] for k in part) / sum(weights.values())
    mix: dict[str, float] = defaultdict(float)
    for k, s in part.items():
        for cat, w in s["weights"].items():
            mix[cat] += weights[k] / sum(weights.values()) * w
    missing = [m for s in part.values() for m in s["missing"]]
    out["overall_without_agentic"] = {
        "accuracy": round(value, 6),
        "display": "N/A" if missing else round(value, 6),
        "missing": missing,
        "run": [c for c in mix if c in categories],
        "weights": dict(mix),
    }
    return out
