"""The regression gate's own quality, measured by simulation (no model, no sandbox: the gate's decision only).

    python benchmarks/perf/bench_gate.py [--pairs 500] [--tasks 164] [--seed 0]

A scripted "model" has a known pass probability per task (164 tasks, drawn once from a U-shaped Beta(0.4, 0.4):
most tasks are nearly always or nearly never solved, as on HumanEval). Each simulated run draws every task's
samples from those probabilities. For 1 and 5 samples per task it prints:

- the false-alarm rate: over A/A pairs (both runs from the same probabilities) how often the gate fails;
- the power: over pairs whose second run has every task's probability scaled so that the mean drops by 10 points,
  how often the gate fails;

for the paired gate (compare.decide on stats.paired: exact McNemar with one sample per task, the sign-flip test
with several) and, side by side on the same pairs, the old point-threshold gate (fails when
pass@1 drops by more than max_drop). Targets: false alarms at most 5%, power at least 80% at 5 samples per task.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_agentbench.results.compare import FAIL, INCONCLUSIVE, Policy, decide
from pytest_agentbench.stats import paired


def run_counts(rng, probs, samples):
    c = rng.binomial(samples, probs)
    return {f"t{i}": (samples, int(x)) for i, x in enumerate(c)}


def simulate(rng, probs_a, probs_b, samples, pairs, max_drop, alpha, resamples):
    paired_fail = paired_inconclusive = point_fail = 0
    policy = Policy(max_drop=max_drop, alpha=alpha)
    for i in range(pairs):
        old, new = run_counts(rng, probs_a, samples), run_counts(rng, probs_b, samples)
        result = paired(old, new, seed=i, resamples=resamples)
        verdict, _ = decide(result, policy)
        paired_fail += verdict == FAIL
        paired_inconclusive += verdict == INCONCLUSIVE
        point_fail += -result.diff > max_drop + 1e-12
    return paired_fail / pairs, paired_inconclusive / pairs, point_fail / pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--tasks", type=int, default=164)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--resamples", type=int, default=2000, help="sign-flip and bootstrap resamples per comparison")
    opts = ap.parse_args()
    rng = np.random.default_rng(opts.seed)
    probs = rng.beta(0.4, 0.4, size=opts.tasks)
    dropped = probs * (probs.mean() - 0.10) / probs.mean()
    print(
        f"{opts.tasks} tasks, mean pass probability {probs.mean():.3f} -> {dropped.mean():.3f} with the drop; "
        f"{opts.pairs} pairs per cell; alpha {opts.alpha}"
    )
    print(
        f"{'samples':>7} {'max_drop':>8} {'case':>12} {'paired gate fails':>17} {'inconclusive':>12} "
        f"{'point gate fails':>16}"
    )
    for samples in (1, 5):
        for max_drop in (0.0, 0.02):
            for case, target in (("A/A", probs), ("10-pt drop", dropped)):
                fail, inconclusive, point = simulate(
                    rng, probs, target, samples, opts.pairs, max_drop, opts.alpha, opts.resamples
                )
                print(f"{samples:7d} {max_drop:8.2f} {case:>12} {fail:17.3f} {inconclusive:12.3f} {point:16.3f}")


if __name__ == "__main__":
    main()
