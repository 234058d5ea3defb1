"""The paired gate's verdicts on constructed pairs of results (compare.py), and the compare command line."""

import json
import subprocess
import sys

import pytest

from pytest_agentbench.results.compare import FAIL, INCONCLUSIVE, PASS, Policy, compare_results, parse_model_map

DATA = "a" * 64


def result(model, per_task, suite="humaneval", dataset=DATA, settings=None, params=None):
    passed = sum(c for _, c in per_task.values())
    samples = sum(n for n, _ in per_task.values())
    return {
        "model": model,
        "suite": suite,
        "per_task": {t: list(v) for t, v in per_task.items()},
        "pass@1": passed / samples,
        "dataset_sha256": dataset,
        "suite_settings": settings or {},
        "params": params or {"temperature": 0.0, "max_new_tokens": 512},
    }


def tasks(n, passed, samples=1):
    """n tasks; `passed(i)` -> passed samples of task i."""
    return {f"T/{i}": (samples, passed(i)) for i in range(n)}


def verdicts(out):
    return [c["verdict"] for c in out["comparisons"]]


def test_a_clear_drop_fails():
    old = result("m", tasks(164, lambda i: int(i % 2 == 0)))
    new = result("m", tasks(164, lambda i: int(i % 2 == 0 and i % 8 != 0)))  # 21 tasks lost, none gained
    out = compare_results([new], [old], Policy(max_drop=0.05))
    assert verdicts(out) == [FAIL] and not out["ok"]
    assert out["lines"][0].startswith("FAIL m/humaneval: pass@1 0.3720 vs baseline 0.5000 on 164 tasks: drop +0.1280")
    assert "regressed: T/0, T/8, T/16, T/24, T/32, ... (21 in all)" in out["lines"][1]
    assert out["comparisons"][0]["paired"]["discordant"] == [21, 0]


def test_noise_passes_when_the_drop_that_matters_is_ruled_out():
    old = result("m", tasks(164, lambda i: int(i % 2 == 0)))
    # 6 tasks lost, 5 gained: noise
    new = result("m", tasks(164, lambda i: int((i % 2 == 0 and i not in (0, 2, 4, 6, 8, 10)) or i in (1, 3, 5, 7, 9))))
    out = compare_results([new], [old], Policy(max_drop=0.05))
    assert verdicts(out) == [PASS] and out["ok"]
    assert "a drop above 0.050 is ruled out" in out["lines"][0]


def test_a_small_suite_is_inconclusive_and_says_what_would_be_needed():
    old = result("m", tasks(10, lambda i: int(i < 6)))
    new = result("m", tasks(10, lambda i: int(i < 5)))
    out = compare_results([new], [old], Policy(max_drop=0.05))
    assert verdicts(out) == [INCONCLUSIVE] and out["ok"]  # not strict: a warning, exit 0
    assert "cannot tell a drop of 0.050 from noise" in out["lines"][0] and "tasks" in out["lines"][0]
    strict = compare_results([new], [old], Policy(max_drop=0.05, strict=True))
    assert not strict["ok"]


def test_several_samples_per_task_use_the_seeded_sign_flip_test():
    old = result("m", tasks(80, lambda i: 4, samples=5))
    new = result("m", tasks(80, lambda i: 3 if i % 2 else 4, samples=5))
    a = compare_results([new], [old], Policy(max_drop=0.02, seed=3))
    b = compare_results([new], [old], Policy(max_drop=0.02, seed=3))
    assert a == b and verdicts(a) == [FAIL]
    assert a["comparisons"][0]["paired"]["method"] == "sign-flip test, bootstrap interval"


def test_names_that_differ_are_mapped_or_one_line():
    old_a = result("old-a", tasks(20, lambda i: 1))
    old_b = result("old-b", tasks(20, lambda i: 1))
    new = result("new", tasks(20, lambda i: 1))
    # the baseline's only model for the suite is used, and named
    only = compare_results([new], [old_a], Policy(max_drop=0.5))
    assert only["comparisons"][0]["baseline_model"] == "old-a" and "baseline old-a/humaneval" in only["lines"][0]
    # two candidates: one line asking for a map; nothing compared fails
    two = compare_results([new], [old_a, old_b], Policy(max_drop=0.5))
    assert not two["ok"] and "say which with --agentbench-model-map NEW=OLD" in two["lines"][0]
    mapped = compare_results([new], [old_a, old_b], Policy(max_drop=0.5, model_map={"new": "old-b"}))
    assert mapped["comparisons"][0]["baseline_model"] == "old-b" and mapped["ok"]
    wrong = compare_results([new], [old_a, old_b], Policy(model_map={"new": "old-c"}))
    assert not wrong["ok"] and wrong["lines"][0].startswith("FAIL new/humaneval: the model map names 'old-c'")
    assert parse_model_map(["a=b,c=d", "e=f"]) == {"a": "b", "c": "d", "e": "f"}
    with pytest.raises(ValueError, match="should be NEW=OLD"):
        parse_model_map("a")


def test_runs_that_are_not_comparable_are_refused_or_warned():
    old = result("m", tasks(30, lambda i: 1))
    other_data = result("m", tasks(30, lambda i: 1), dataset="b" * 64)
    out = compare_results([other_data], [old], Policy(max_drop=0.5))
    assert (
        not out["ok"]
        and "not comparable with baseline: datasets differ (aaaaaaaaaaaa before, bbbbbbbbbbbb now)" in out["lines"][0]
    )
    other_settings = result("m", tasks(30, lambda i: 1), settings={"iters": 2})
    assert "suite settings differ" in compare_results([other_settings], [old], Policy())["lines"][0]
    hotter = result("m", {**tasks(25, lambda i: 1), "T/99": (1, 1)}, params={"temperature": 0.8, "max_new_tokens": 512})
    out = compare_results([hotter], [old], Policy(max_drop=0.5))
    warned = [line for line in out["lines"] if line.startswith("WARN")]
    assert any("generation parameters differ" in w for w in warned)
    assert any("task sets differ: 25 in both, 5 only before, 1 only now" in w for w in warned)
    assert out["comparisons"][0]["paired"]["tasks"] == 25


def test_comparing_nothing_never_passes():
    out = compare_results(
        [result("m", tasks(5, lambda i: 1), suite="tool_use")], [result("m", tasks(5, lambda i: 1))], Policy()
    )
    assert not out["ok"] and out["lines"][-1].startswith("FAIL compared nothing")


def report(results):
    return {"schema": "pytest-agentbench/report/v2", "results": results}


@pytest.mark.parametrize(
    "new_passed, max_drop, extra, status",
    [
        (lambda i: int(i % 2 == 0 and i % 8 != 0), "0.05", [], 1),  # clear drop
        (lambda i: int(i % 2 == 0), "0.05", [], 0),  # identical
        (lambda i: int(i % 2 == 0 and i != 0), "0.05", ["--strict"], 1),  # one task: inconclusive, strict
        (lambda i: int(i % 2 == 0 and i != 0), "0.05", [], 0),  # ... not strict
    ],
)
def test_the_compare_command_line(tmp_path, new_passed, max_drop, extra, status):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(report([result("m", tasks(40, lambda i: int(i % 2 == 0)))])))
    new.write_text(json.dumps(report([result("m", tasks(40, new_passed))])))
    done = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "compare", str(old), str(new), "--max-drop", max_drop, *extra],
        capture_output=True,
        text=True,
    )
    assert done.returncode == status, done.stdout + done.stderr
    assert "m/humaneval" in done.stdout and "Traceback" not in done.stderr


def test_the_compare_command_line_refuses_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "compare", str(bad), str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not a pytest-agentbench report" in done.stderr


def test_no_flips_is_not_proof_of_no_drop_and_few_tasks_are_not_proof_of_one():
    same = result("m", tasks(40, lambda i: int(i % 2 == 0)))
    out = compare_results([same], [same], Policy(max_drop=0.02))
    # 0 of 40 tasks flipped: a drop of about 3/40 cannot be ruled out (rule of three), so not PASS
    assert verdicts(out) == [INCONCLUSIVE]
    assert compare_results([same], [same], Policy(max_drop=0.10))["comparisons"][0]["verdict"] == PASS
    # three tasks, each one sample of five worse: the exact sign-flip test says p = 1/8, not a bootstrap's ~0
    old = result("m", tasks(3, lambda i: 5, samples=5))
    new = result("m", tasks(3, lambda i: 4, samples=5))
    few = compare_results([new], [old], Policy(max_drop=0.0))
    assert few["comparisons"][0]["paired"]["p_drop"] == pytest.approx(1 / 8)
    assert verdicts(few) == [INCONCLUSIVE]
