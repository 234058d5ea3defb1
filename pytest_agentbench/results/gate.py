"""The CI gate: pass@1 against a floor and against a baseline report. Its verdict decides the exit status.

It fails when any check fails, when any sample could not be evaluated (infra: scores are incomplete), when a
suite that was asked for could not run, and when it was asked to compare and compared nothing. Against a baseline
the two runs are paired task by task (compare.py): a drop fails only when it is larger than max_drop and
significant; a comparison that cannot tell is inconclusive (a warning, or a failure under --agentbench-strict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..sanitize import for_terminal
from .compare import Policy, compare_results


@dataclass(frozen=True)
class GateConfig:
    fail_under: float | None = None
    baseline: list[dict] | None = None  # the baseline report's results
    baseline_path: str | None = None
    max_drop: float = 0.0
    alpha: float = 0.05
    strict: bool = False
    model_map: dict[str, str] = field(default_factory=dict)
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.fail_under is not None or self.baseline is not None


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def check(self, good: bool, line: str) -> None:
        self.ok &= good
        self.lines.append(f"{'PASS' if good else 'FAIL'} {line}")


def judge(
    results: list[dict], gate: GateConfig, unavailable: dict[str, str] | None = None, incomplete: str | None = None
) -> dict[str, Any]:
    """The gate's verdict: ok plus one line per check. Infra samples and suites that could not run always fail it
    when it is active; infra samples fail it even when it is not (the scores are incomplete). `incomplete` (merged
    shards, some missing: results/merge.py) is said first, as INCOMPLETE, and fails the gate under --agentbench-strict
    only: the tasks not run are in no score."""
    verdict = Verdict()
    if incomplete:
        if gate.strict:
            verdict.check(False, f"incomplete: {incomplete} (--agentbench-strict)")
        else:
            verdict.lines.append(f"INCOMPLETE {incomplete}")
    infra = sum(r["infra"]["samples"] for r in results)
    if infra:
        verdict.check(False, f"harness: {infra} sample(s) could not be evaluated (infra errors), scores are incomplete")
    if gate.active:
        for suite, why in sorted((unavailable or {}).items()):
            verdict.check(False, f"{suite}: asked for but could not run ({why})")
        if not results and not unavailable:
            verdict.check(False, "nothing to gate: no benchmark samples ran")
    for r in results:
        name, p1 = f"{r['model']}/{r['suite']}", r["pass@1"]
        if p1 is None:
            if gate.active:
                verdict.check(False, f"{name}: no sample could be scored")
            continue
        if gate.fail_under is not None:
            good = p1 >= gate.fail_under - 1e-12
            verdict.check(good, f"{name}: pass@1 {p1:.4f} {'>=' if good else '<'} fail-under {gate.fail_under:.4f}")
    comparison = None
    if gate.baseline is not None and results:
        policy = Policy(
            max_drop=gate.max_drop, alpha=gate.alpha, strict=gate.strict, seed=gate.seed, model_map=gate.model_map
        )
        comparison = compare_results(
            [r for r in results if r["pass@1"] is not None], gate.baseline, policy, f"baseline {gate.baseline_path}"
        )
        verdict.lines.extend(comparison["lines"])
        verdict.ok &= comparison["ok"]
    return {
        "active": gate.active,
        "ok": verdict.ok,
        "lines": [for_terminal(line) for line in verdict.lines],
        "fail_under": gate.fail_under,
        "baseline": gate.baseline_path,
        "max_drop": gate.max_drop,
        "alpha": gate.alpha,
        "strict": gate.strict,
        "comparison": comparison,
    }
