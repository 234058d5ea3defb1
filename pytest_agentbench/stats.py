"""Error bars and paired comparisons: pure functions over per-task counts (n samples, c passed).

The unit of evidence is the task, not the sample (Miller 2024, "Adding Error Bars to Evals", arXiv 2411.00640):
samples of one task are correlated, so standard errors are clustered by task (the spread of per-task scores),
and two runs are compared task by task (paired), which removes the between-task variance that an unpaired
comparison of two means would count twice. Probabilities are computed with the standard library (the normal
quantile from `statistics.NormalDist`, binomial tails exactly with integers), equal to scipy's (tests/test_stats.py):
importing scipy.stats took 0.7-1.5 s of every run's start-up, a third of a 164-task reference run's CPU time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

Counts = Mapping[str, Sequence[int]]  # task -> (n samples, c passed), a pair or a list
EXACT_SIGN_FLIP_TASKS = 15  # up to this many tasks, several samples: the exact sign-flip test


@dataclass(frozen=True)
class Estimate:
    """A score over tasks: its value, task-clustered standard error and confidence interval."""

    value: float
    se: float
    lo: float
    hi: float
    tasks: int
    method: str

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


_NORMAL = NormalDist()


def _z(confidence: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def wilson(c: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of c successes in n trials (good near 0 and 1, unlike Wald); Newcombe's (1998) formula,
    as scipy's `binomtest(c, n).proportion_ci(method="wilson")` computes it (0 and 1 exactly at c = 0 and c = n)."""
    if n == 0:
        return 0.0, 1.0
    z, p = _z(confidence), c / n
    denom = 2 * (n + z * z)
    center = (2 * n * p + z * z) / denom
    delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z * z)
    return (0.0 if c == 0 else center - delta), (1.0 if c == n else center + delta)


def _half_binomial_tail(k: int, m: int) -> float:
    """P(X >= k) for X ~ Binomial(m, 1/2), exactly (integer sum, one rounding)."""
    if k <= 0:
        return 1.0
    if k > m:
        return 0.0
    term = total = math.comb(m, k)
    for i in range(k, m):
        term = term * (m - i) // (i + 1)
        total += term
    return total / 2**m


def mean_estimate(per_task: Sequence[float], *, binary: bool = False, confidence: float = 0.95) -> Estimate:
    """The mean of per-task scores with the standard error of that mean over tasks (clustered by task: samples
    of a task enter only through their task's score). One binary score per task: the Wilson interval; else a
    normal interval clipped to [0, 1]."""
    t = len(per_task)
    if t == 0:
        return Estimate(0.0, 0.0, 0.0, 1.0, 0, "none")
    mean = sum(per_task) / t
    var = sum((x - mean) ** 2 for x in per_task) / (t - 1) if t > 1 else 0.0
    se = math.sqrt(var / t)
    if binary:
        lo, hi = wilson(round(mean * t), t, confidence)
        return Estimate(mean, se, lo, hi, t, "wilson")
    z = _z(confidence)
    return Estimate(mean, se, max(0.0, mean - z * se), min(1.0, mean + z * se), t, "clustered-normal")


def pass_at_k_estimate(counts: Counts, k: int, confidence: float = 0.95) -> Estimate:
    from .metrics import pass_at_k

    values = [pass_at_k(n, c, k) for n, c in counts.values()]
    binary = k == 1 and all(n == 1 for n, _ in counts.values())
    return mean_estimate(values, binary=binary, confidence=confidence)


def pass_hat_k_estimate(counts: Counts, k: int, confidence: float = 0.95) -> Estimate:
    from .metrics import pass_hat_k

    return mean_estimate([pass_hat_k(n, c, k) for n, c in counts.values()], confidence=confidence)


def rate_estimate(records: Sequence[dict], hit, confidence: float = 0.95, cluster=None) -> dict:
    """A per-sample yes/no rate (success, correct tool choice) as a task-clustered estimate, for the report.
    `cluster(record)` names the unit samples are clustered by (default: the task id)."""
    per_task: dict[str, list[int]] = {}
    for r in records:
        per_task.setdefault(cluster(r) if cluster else r["task"], []).append(1 if hit(r) else 0)
    values = [sum(v) / len(v) for v in per_task.values()]
    binary = all(len(v) == 1 for v in per_task.values())
    return mean_estimate(values, binary=binary, confidence=confidence).to_dict()


def combined_estimate(
    parts: Sequence[tuple[float, dict]], value: float | None = None, confidence: float = 0.95
) -> dict:
    """A fixed weighted sum of independent scores (BFCL's aggregates of its categories), from each part's
    `rate_estimate`: standard error sqrt(sum w^2 se^2), each part's se taken at least as wide as its own interval
    (a part at 0 or 1 has se 0 but a Wilson interval of some width); a normal interval clipped to [0, 1].
    `value` replaces the weighted sum (a score whose missing parts count as 0)."""
    z = _z(confidence)
    total = sum(w * p["value"] for w, p in parts) if value is None else value
    var = sum((w * max(p["se"], (p["hi"] - p["lo"]) / (2 * z))) ** 2 for w, p in parts)
    se = math.sqrt(var)
    return Estimate(
        total, se, max(0.0, total - z * se), min(1.0, total + z * se), sum(p["tasks"] for _, p in parts), "weighted-sum"
    ).to_dict()


def score_errors(counts: Counts, kmax: int) -> dict:
    """Error bars of pass@k (k <= kmax) and, with several samples, pass^k: the report's `errors` block."""
    if not counts:
        return {}
    out: dict = {
        "pass@1": pass_at_k_estimate(counts, 1).to_dict(),
        "pass@k": {str(k): pass_at_k_estimate(counts, k).to_dict() for k in range(1, kmax + 1)},
    }
    if kmax > 1:
        out["pass^k"] = {str(k): pass_hat_k_estimate(counts, k).to_dict() for k in range(1, kmax + 1)}
    return out


# -- two runs, task by task -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paired:
    """new - old in pass@1 over the tasks both runs have. `p_drop`: one-sided p-value for "new is worse"."""

    tasks: int
    old: float
    new: float
    diff: float
    se: float
    lo: float  # two-sided interval of diff at `confidence`
    hi: float
    p_drop: float
    method: str
    regressed: list[str]  # passed more often before (one sample: passed before, failed now)
    improved: list[str]
    discordant: tuple[int, int] | None = None  # (regressed, improved) with one sample per task

    def drop_upper(self, alpha: float) -> float:
        """One-sided upper confidence bound of the drop (old - new) at level 1 - alpha. The standard error is never
        taken below what three flipped tasks would give (the rule of three): no flips among 40 tasks cannot rule
        out a drop of about 3/40."""
        floor = math.sqrt(3) / self.tasks
        return -self.diff + _z(1 - 2 * alpha) * max(self.se, floor)

    def to_dict(self) -> dict:
        doc = asdict(self)
        for key in ("old", "new", "diff", "se", "lo", "hi", "p_drop"):
            doc[key] = round(doc[key], 6)
        if self.discordant is not None:
            doc["discordant"] = list(self.discordant)
        return doc


def mcnemar_drop_p(regressed: int, improved: int, mid_p: bool = True) -> float:
    """One-sided exact McNemar test that a change made things worse: under no change each discordant task is a
    fair coin, so P(X >= regressed) with X ~ Binomial(regressed + improved, 1/2); mid-p subtracts half the
    probability of the observed value (less conservative, close to nominal size; Fagerland et al. 2013)."""
    m = regressed + improved
    if m == 0:
        return 1.0
    p = _half_binomial_tail(regressed, m)
    if mid_p:
        p -= 0.5 * math.comb(m, regressed) / 2**m
    return min(1.0, max(0.0, p))


def paired(
    old: Counts, new: Counts, *, confidence: float = 0.95, seed: int = 0, resamples: int = 10_000, mid_p: bool = False
) -> Paired | None:
    """Pair two runs by task. One sample per task in both: the exact McNemar test on the discordant tasks, with the
    paired difference's normal interval; otherwise the sign-flip (randomization) test on the per-task differences,
    with a task-clustered paired bootstrap interval (tasks resampled with their differences). Both random parts are
    seeded, so the verdict is reproducible. None when no task is in both.

    Why these tests: under no change every task's difference is as likely negative as positive, so the sign-flip
    test holds its level whatever the number of tasks or samples (exact over all sign patterns up to 15 tasks,
    Monte Carlo beyond), where the percentile bootstrap test is too sure of itself (it failed 6.4% of simulated
    no-change pairs at alpha 0.05, benchmarks/perf/bench_gate.py); the exact McNemar test cannot exceed its level,
    where mid-p can (6.2% in the same simulation)."""
    from .metrics import natural_key

    tasks = sorted(set(old) & set(new), key=natural_key)
    t = len(tasks)
    if not t:
        return None
    p_old = [old[x][1] / old[x][0] for x in tasks]
    p_new = [new[x][1] / new[x][0] for x in tasks]
    d = [b - a for a, b in zip(p_old, p_new)]
    regressed = [x for x, v in zip(tasks, d) if v < 0]
    improved = [x for x, v in zip(tasks, d) if v > 0]
    mean_old, mean_new, diff = sum(p_old) / t, sum(p_new) / t, sum(d) / t
    var = sum((v - diff) ** 2 for v in d) / (t - 1) if t > 1 else 0.0
    se = math.sqrt(var / t)
    z = _z(confidence)
    if all(old[x][0] == 1 and new[x][0] == 1 for x in tasks):
        p = mcnemar_drop_p(len(regressed), len(improved), mid_p=mid_p)
        return Paired(
            t,
            mean_old,
            mean_new,
            diff,
            se,
            max(-1.0, diff - z * se),
            min(1.0, diff + z * se),
            p,
            "mcnemar-mid-p" if mid_p else "mcnemar-exact",
            regressed,
            improved,
            (len(regressed), len(improved)),
        )
    import numpy as np

    rng = np.random.default_rng(seed)
    values = np.asarray(d)
    means = values[rng.integers(0, t, size=(resamples, t))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Paired(
        t,
        mean_old,
        mean_new,
        diff,
        se,
        float(lo),
        float(hi),
        sign_flip_drop_p(values, rng, resamples),
        "sign-flip test, bootstrap interval",
        regressed,
        improved,
    )


def sign_flip_drop_p(diffs, rng=None, resamples: int = 10_000) -> float:
    """One-sided p-value that the per-task differences (new - old) are a drop: the share of sign patterns whose mean
    is at most the observed one (every pattern up to EXACT_SIGN_FLIP_TASKS tasks, else `resamples` random ones, the
    observed pattern counted in, so p is never 0)."""
    import numpy as np

    values = np.abs(np.asarray(diffs, dtype=float))
    t = len(values)
    observed = float(np.mean(diffs)) if t else 0.0
    if t == 0 or observed >= 0:
        return 1.0
    if t <= EXACT_SIGN_FLIP_TASKS:
        signs = 1 - 2 * ((np.arange(2**t)[:, None] >> np.arange(t)) & 1)
        return float(((signs * values).mean(axis=1) <= observed + 1e-12).mean())
    rng = rng if rng is not None else np.random.default_rng(0)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, t))
    return (int(((signs * values).mean(axis=1) <= observed + 1e-12).sum()) + 1) / (resamples + 1)


def tasks_needed(result: Paired, max_drop: float, alpha: float, power: float = 0.8) -> int | None:
    """Tasks a paired comparison with this per-task spread would need to tell a drop of `max_drop` from none at
    one-sided level alpha with the given power (normal approximation); None when it cannot say."""
    if max_drop <= 0 or result.tasks < 2:
        return None
    sd = result.se * math.sqrt(result.tasks)
    if sd == 0:
        return None
    need = ((_NORMAL.inv_cdf(1 - alpha) + _NORMAL.inv_cdf(power)) * sd / max_drop) ** 2
    return max(result.tasks, math.ceil(need))
