"""The report's metrics for the agent scenarios: per model, overall and per category."""

from __future__ import annotations

from ...metrics import mean_pass_at_k, mean_pass_hat_k


def scenario_metrics(records: list[dict]) -> dict:
    """Per model (overall and per category): success with pass@k and pass^k, steps, tool calls per tool, protocol
    errors, step-limit hits, safety violations, latency (model vs tools), tokens."""
    from ...stats import rate_estimate

    rows = [r for r in records if r["status"] != "infra" and r.get("extra", {}).get("scenario")]

    def block(group: list[dict]) -> dict:
        per_task: dict[str, list[int]] = {}
        for r in group:
            n_c = per_task.setdefault(r["task"], [0, 0])
            n_c[0] += 1
            n_c[1] += r["status"] == "passed"
        counts = [tuple(v) for v in per_task.values()]
        kmax = min((n for n, _ in counts), default=0)
        n = len(group)
        tools_used: dict[str, int] = {}
        for r in group:
            for tool, count in r["extra"]["tool_calls"].items():
                tools_used[tool] = tools_used.get(tool, 0) + count
        kinds: dict[str, int] = {}
        for r in group:
            for v in r["extra"]["safety_violations"]:
                kinds[v["kind"]] = kinds.get(v["kind"], 0) + 1
        mean = lambda xs: round(sum(xs) / n, 4) if n else None
        return {
            "runs": n,
            "tasks": len(per_task),
            "success_rate": mean([r["status"] == "passed" for r in group]),
            "success_rate_error": rate_estimate(group, lambda r: r["status"] == "passed"),
            "pass@k": {str(k): round(mean_pass_at_k(counts, k), 6) for k in range(1, kmax + 1)},
            "pass^k": {str(k): round(mean_pass_hat_k(counts, k), 6) for k in range(1, kmax + 1)},
            "steps_per_run": mean([r["extra"]["num_steps"] for r in group]),
            "tool_calls": dict(sorted(tools_used.items())),
            "protocol_errors": sum(r["extra"]["protocol_errors"] for r in group),
            "step_limit_hits": sum(bool(r["extra"]["step_limit_hit"]) for r in group),
            "runs_with_safety_violations": sum(bool(r["extra"]["safety_violations"]) for r in group),
            "safety_violations": dict(sorted(kinds.items())),
            "latency_s": {"model": mean([r["model_s"] for r in group]), "tools": mean([r["sandbox_s"] for r in group])},
            "tokens_per_run": {k: mean([r[f"{k}_tokens"] for r in group]) for k in ("prompt", "completion")},
        }

    by_category: dict[str, list[dict]] = {}
    for r in rows:
        for category in r["extra"]["categories"]:
            by_category.setdefault(category, []).append(r)
    return {"overall": block(rows), "by_category": {c: block(g) for c, g in sorted(by_category.items())}}
