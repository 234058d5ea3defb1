"""Error bars and paired tests against hand-computed values and scipy's own, edge cases included."""

import math

import pytest
from scipy.stats import binomtest

from pytest_agentbench.stats import (
    mcnemar_drop_p,
    mean_estimate,
    paired,
    pass_at_k_estimate,
    pass_hat_k_estimate,
    tasks_needed,
    wilson,
)


def test_wilson_interval_by_hand():
    z2 = 1.959963984540054**2
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(z2 / (10 + z2), rel=1e-9)
    lo, hi = wilson(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(10 / (10 + z2), rel=1e-9)
    p, n = 0.3, 100  # the textbook formula
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = math.sqrt(z2) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    assert wilson(30, 100) == pytest.approx((centre - half, centre + half), rel=1e-9)


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_wilson_and_the_normal_quantile_equal_scipy(confidence):
    from scipy.stats import norm

    from pytest_agentbench.stats import _z

    assert _z(confidence) == pytest.approx(float(norm.ppf(0.5 + confidence / 2)), rel=1e-12)
    for n in (1, 2, 3, 7, 40, 164, 1000):
        for c in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            ci = binomtest(c, n).proportion_ci(confidence_level=confidence, method="wilson")
            assert wilson(c, n, confidence) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15), (c, n)


def test_the_tasks_needed_and_exact_tails_on_many_discordant_tasks():
    from scipy.stats import norm

    assert mcnemar_drop_p(1100, 900, mid_p=False) == pytest.approx(
        binomtest(1100, 2000, 0.5, alternative="greater").pvalue, rel=1e-9
    )
    assert mcnemar_drop_p(0, 3000, mid_p=False) == 1.0 and mcnemar_drop_p(3000, 0, mid_p=False) == 0.5**3000
    z = float(norm.ppf(0.95)) + float(norm.ppf(0.8))
    result = paired({f"t{i}": (1, i % 2) for i in range(40)}, {f"t{i}": (1, i % 3 == 0) for i in range(40)})
    sd = result.se * math.sqrt(result.tasks)
    assert tasks_needed(result, 0.05, 0.05) == max(40, math.ceil((z * sd / 0.05) ** 2))


def test_clustered_standard_error_is_the_spread_of_task_scores():
    est = mean_estimate([1, 0, 1, 0])
    assert (est.value, est.tasks) == (0.5, 4) and est.se == pytest.approx(math.sqrt(1 / 12))
    # five samples per task: the task is the unit, not the sample (two tasks, not ten samples)
    two = pass_at_k_estimate({"a": (5, 5), "b": (5, 0)}, 1)
    assert two.value == 0.5 and two.se == pytest.approx(0.5) and two.method == "clustered-normal"
    assert (two.lo, two.hi) == (0.0, 1.0)
    one = pass_at_k_estimate({"a": (1, 1), "b": (1, 0), "c": (1, 0)}, 1)
    assert one.method == "wilson" and (one.lo, one.hi) == pytest.approx(wilson(1, 3))
    assert pass_hat_k_estimate({"a": (4, 4), "b": (4, 2)}, 2).value == pytest.approx((1 + 1 / 6) / 2)


def test_edge_cases_of_estimates():
    assert mean_estimate([]).tasks == 0
    all_pass = pass_at_k_estimate({f"t{i}": (1, 1) for i in range(20)}, 1)
    assert all_pass.value == 1.0 and all_pass.se == 0.0 and all_pass.hi == pytest.approx(1.0) and all_pass.lo < 1
    single = pass_at_k_estimate({"only": (3, 2)}, 1)
    assert single.value == pytest.approx(2 / 3) and single.se == 0.0


@pytest.mark.parametrize("regressed, improved", [(3, 0), (5, 1), (10, 4), (0, 6), (7, 7), (40, 22)])
def test_mcnemar_exact_equals_scipy_and_mid_p_by_hand(regressed, improved):
    m = regressed + improved
    exact = mcnemar_drop_p(regressed, improved, mid_p=False)
    assert exact == pytest.approx(binomtest(regressed, m, 0.5, alternative="greater").pvalue, rel=1e-12)
    mid = mcnemar_drop_p(regressed, improved)
    assert mid == pytest.approx(exact - 0.5 * math.comb(m, regressed) / 2**m, rel=1e-12)


def test_mcnemar_by_hand():
    assert mcnemar_drop_p(3, 0, mid_p=False) == pytest.approx(1 / 8)
    assert mcnemar_drop_p(3, 0) == pytest.approx(1 / 16)
    assert mcnemar_drop_p(5, 1, mid_p=False) == pytest.approx(7 / 64)
    assert mcnemar_drop_p(0, 0) == 1.0


def test_paired_with_one_sample_per_task():
    old = {"a": (1, 1), "b": (1, 1), "c": (1, 0), "d": (1, 1), "e": (1, 0)}
    new = {"a": (1, 0), "b": (1, 1), "c": (1, 1), "d": (1, 0), "e": (1, 0), "extra": (1, 1)}
    r = paired(old, new)
    assert r.tasks == 5 and r.discordant == (2, 1) and r.regressed == ["a", "d"] and r.improved == ["c"]
    assert r.diff == pytest.approx(-1 / 5) and r.old == pytest.approx(3 / 5) and r.new == pytest.approx(2 / 5)
    assert r.p_drop == pytest.approx(mcnemar_drop_p(2, 1, mid_p=False)) and r.method == "mcnemar-exact"
    assert r.p_drop == pytest.approx(4 / 8)  # P(X >= 2), X ~ Binomial(3, 1/2)
    d = [-1, 0, 1, -1, 0]
    sd = math.sqrt(sum((x + 0.2) ** 2 for x in d) / 4)
    assert r.se == pytest.approx(sd / math.sqrt(5))


def test_paired_edge_cases():
    assert paired({"a": (1, 1)}, {"b": (1, 1)}) is None  # nothing in common
    same = paired({"a": (1, 1), "b": (1, 1)}, {"a": (1, 1), "b": (1, 1)})
    assert (same.diff, same.p_drop, same.discordant) == (0.0, 1.0, (0, 0))
    fail = paired({"a": (1, 0), "b": (1, 0)}, {"a": (1, 0), "b": (1, 0)})
    assert (fail.diff, fail.p_drop) == (0.0, 1.0)
    one = paired({"a": (1, 1)}, {"a": (1, 0)})
    assert one.p_drop == pytest.approx(0.5) and one.regressed == ["a"]  # one flipped task: a fair coin


def test_paired_bootstrap_is_seeded_and_sees_a_clear_drop():
    old = {f"t{i}": (5, 4) for i in range(60)}
    new = {f"t{i}": (5, 2 if i % 3 else 4) for i in range(60)}
    a, b = paired(old, new, seed=7), paired(old, new, seed=7)
    assert a == b and a.method == "sign-flip test, bootstrap interval"
    assert a.diff == pytest.approx(-0.4 * 40 / 60) and a.p_drop < 0.001 and a.hi < 0
    noise = paired(old, {f"t{i}": (5, 4 + (i % 2) - (i % 2 == 0 and i % 4 == 0)) for i in range(60)}, seed=7)
    assert noise.p_drop > 0.05


def test_sign_flip_by_hand_and_against_scipy():
    import numpy as np
    from scipy.stats import permutation_test

    from pytest_agentbench.stats import sign_flip_drop_p

    # three tasks, differences -0.4, -0.2, +0.2 (sum -0.4): of the 8 sign patterns on (0.4, 0.2, 0.2), those with a
    # sum at most -0.4 are (-,-,-), (-,-,+) and (-,+,-)
    diffs = [-0.4, -0.2, 0.2]
    sums = [a * 0.4 + b * 0.2 + c * 0.2 for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
    assert sign_flip_drop_p(diffs) == pytest.approx(sum(x <= -0.4 + 1e-12 for x in sums) / 8) == pytest.approx(3 / 8)
    assert sign_flip_drop_p([0.1, 0.2]) == 1.0 and sign_flip_drop_p([]) == 1.0
    rng = np.random.default_rng(3)
    many = rng.normal(-0.05, 0.3, size=40)
    ours = sign_flip_drop_p(many, np.random.default_rng(1), resamples=20_000)
    ref = permutation_test(
        (many,), np.mean, permutation_type="samples", alternative="less", n_resamples=20_000, random_state=2
    ).pvalue
    assert ours == pytest.approx(ref, abs=0.01)


def test_tasks_needed_grows_as_the_drop_to_detect_shrinks():
    old = {f"t{i}": (1, i % 2) for i in range(100)}
    new = {f"t{i}": (1, (i // 2) % 2) for i in range(100)}
    r = paired(old, new)
    assert tasks_needed(r, 0.05, 0.05) > tasks_needed(r, 0.10, 0.05) >= 100
    assert tasks_needed(r, 0.0, 0.05) is None
