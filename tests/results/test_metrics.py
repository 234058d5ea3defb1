"""pass@k and percentiles against values computed by hand."""

import math

import pytest

from pytest_agentbench.metrics import describe, mean_pass_at_k, pass_at_k, percentile


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (10, 3, 1, 0.3),  # pass@1 = c / n
        (5, 2, 2, 1 - (3 * 2) / (5 * 4)),  # 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
        (10, 1, 5, 1 - math.comb(9, 5) / math.comb(10, 5)),  # = 0.5
        (4, 3, 2, 1.0),  # n - c < k: every draw of 2 holds a correct one
        (200, 0, 100, 0.0),
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) overflows floats; the product form does not
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5)


@pytest.mark.parametrize("n, c, k", [(3, 4, 1), (3, 1, 4), (3, 1, 0), (3, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_pass_at_k():
    assert mean_pass_at_k([(2, 2), (2, 1), (2, 0)], 1) == pytest.approx(0.5)
    assert mean_pass_at_k([(2, 2), (2, 1), (2, 0)], 2) == pytest.approx(2 / 3)
    assert mean_pass_at_k([], 1) == 0.0


def test_percentile_matches_linear_interpolation():
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 50) == 2.5
    assert percentile(data, 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    assert describe([1.0, 2.0, 3.0, 4.0]) == {"mean": 2.5, "p50": 2.5, "p95": 3.85}
    assert describe([]) == {"mean": 0.0, "p50": 0.0, "p95": 0.0}
