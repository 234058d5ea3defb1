"""Pure functions over numbers: no pytest, no I/O, easy to check against hand-computed values."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence


def natural_key(text: str) -> list:
    """Sort key that orders HumanEval/2 before HumanEval/10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with n samples, c correct (Chen et al. 2021), in the stable product form."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Iterable[Sequence[int]], k: int) -> float:
    """Mean pass@k over tasks given (n, c) per task."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k for one task: the chance that k samples drawn from its n (c correct) all pass, C(c,k) / C(n,k),
    the unbiased estimate of p^k (the flakiness view: every one of k tries succeeds)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass^k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return math.prod((c - i) / (n - i) for i in range(k)) if c >= k else 0.0


def mean_pass_hat_k(counts: Iterable[Sequence[int]], k: int) -> float:
    values = [pass_hat_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not values:
        return 0.0
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def describe(values: Sequence[float]) -> dict[str, float]:
    """mean / p50 / p95, rounded for a readable report."""
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    return {
        "mean": round(sum(values) / len(values), 4),
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
    }


def confusion(pairs: Sequence[tuple[str, str]], truths: Sequence[str], predictions: Sequence[str]) -> dict:
    """Confusion matrix of (truth, predicted) pairs: rows follow `truths`, columns `predictions`."""
    index = {(t, p): 0 for t in truths for p in predictions}
    for t, p in pairs:
        index[(t, p)] = index.get((t, p), 0) + 1
    return {
        "rows_truth": list(truths),
        "columns_predicted": list(predictions),
        "matrix": [[index[(t, p)] for p in predictions] for t in truths],
    }


def per_class(pairs: Sequence[tuple[str, str]], classes: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Precision, recall, F1 and support per class. A ratio with nothing to divide by is undefined (None, null in
    the report), not 0.0: precision without predictions, recall without support, F1 without either."""
    out = {}
    for c in classes:
        tp = sum(1 for t, p in pairs if t == c and p == c)
        predicted = sum(1 for _, p in pairs if p == c)
        actual = sum(1 for t, _ in pairs if t == c)
        precision = tp / predicted if predicted else None
        recall = tp / actual if actual else None
        if precision is None or recall is None:
            f1 = None if precision is None and recall is None else 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[c] = {
            "precision": _round(precision),
            "recall": _round(recall),
            "f1": _round(f1),
            "support": actual,
            "predicted": predicted,
        }
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
