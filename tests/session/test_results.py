"""Never lose or misreport a result (issue 19, part 1), through the real pipeline: resume with other settings, every
run kept, runs that score nothing or stop early, read-only and full output folders (real mounts), bounds and early
checks, re-grading a run from its records, and a killed xdist controller."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIX_TEST, SLOW_SUITE, he_project, one_line_error, read_records, read_report
from pytest_agentbench.suites.humaneval import humaneval_data_file

TWO = ["-k", "HumanEval/0 or HumanEval/1"]


def he_tasks(n: int) -> list[str]:
    return ["-k", " or ".join(f"HumanEval/{i}" for i in range(n))]


def verdicts(records) -> dict:
    return {(r["task"], r["sample"]): (r["status"], r["reason"]) for r in records}


# -- 1. resume with other settings ------------------------------------------------------------------------------
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_resume_with_other_settings_is_refused_at_start_and_touches_nothing(pytester, xdist):
    he_project(pytester)
    assert pytester.runpytest_subprocess("--model", "reference", *TWO).ret == 0
    files = {p: p.read_bytes() for p in (pytester.path / ".agentbench").rglob("*") if p.is_file()}
    result = pytester.runpytest_subprocess(
        "--model", "reference", "--max-new-tokens", "100", "--agentbench-resume", *TWO, *xdist
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: agentbench: --agentbench-resume: 2 finished sample(s) in *report.jsonl were "
            "made with other settings (max_new_tokens 512 -> 100, e.g. HumanEval/0 sample 0): *"
        ]
    )
    assert [ln for ln in result.stderr.lines if ln.strip()] == [result.stderr.lines[0]]
    assert "passed" not in result.stdout.str() and "Traceback" not in result.stdout.str() + result.stderr.str()
    assert {p: p.read_bytes() for p in (pytester.path / ".agentbench").rglob("*") if p.is_file()} == files
    # the same settings resume: nothing runs again, and a task not done yet is added to the same run
    result = pytester.runpytest_subprocess(
        "--model", "reference", "--agentbench-resume", "-k", "HumanEval/0 or HumanEval/1 or HumanEval/2", *xdist
    )
    assert result.ret == 0 and result.parseoutcomes()["passed"] == 1
    assert sorted(r["task"] for r in read_records(pytester)) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert read_report(pytester)["results"][0]["samples"] == 3


# -- 2. every run kept ------------------------------------------------------------------------------------------
def test_each_run_keeps_its_report_and_records_and_report_json_is_the_latest(arith):
    for model in ("good", "bad", "half"):
        arith.runpytest("--model", model)
    report = read_report(arith)
    assert report["results"][0]["model"] == "half"
    runs = sorted((arith.path / ".agentbench" / "runs").iterdir())
    assert [p.name[:11] for p in runs] == ["report-0001", "report-0002"]
    assert report["previous_run"] == str(runs[1])
    for folder, model, passed in zip(runs, ("good", "bad"), (3, 0)):
        old = json.loads((folder / "report.json").read_text())
        assert old["results"][0]["model"] == model and old["results"][0]["outcomes"]["passed"] == passed
        assert old["samples_file"] == str(folder / "report.jsonl")
        assert {r["model"] for r in map(json.loads, (folder / "report.jsonl").read_text().splitlines())} == {model}
    # resuming continues the latest run: nothing moves
    assert arith.runpytest("--model", "half", "--agentbench-resume").ret == 1
    assert len(list((arith.path / ".agentbench" / "runs").iterdir())) == 2
    # the user may bound what is kept
    arith.runpytest("--model", "good", "--agentbench-keep-runs", "1")
    (kept,) = (arith.path / ".agentbench" / "runs").iterdir()
    assert kept.name.startswith("report-0003")
    assert json.loads((kept / "report.json").read_text())["results"][0]["model"] == "half"
    arith.runpytest("--model", "bad", "--agentbench-keep-runs", "0")  # replaces the previous run's files, as before
    assert [p.name[:11] for p in (arith.path / ".agentbench" / "runs").iterdir()] == ["report-0003"]
    assert {r["model"] for r in read_records(arith)} == {"bad"}


def test_an_archived_agent_run_keeps_its_traces(pytester):
    from conftest import scenario_project as project

    project(pytester)
    args = ("--model", "reference", "-k", "fix_failing_test/default", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess(*args)
    first = read_records(pytester)[0]["trace"]
    pytester.runpytest_subprocess(*args)
    (folder,) = (pytester.path / ".agentbench" / "runs").iterdir()
    (old,) = [json.loads(line) for line in (folder / "report.jsonl").read_text().splitlines()]
    moved = Path(old["trace"]["path"])
    assert moved.is_relative_to(folder / "traces") and old["trace"]["sha256"] == first["sha256"]
    assert __import__("hashlib").sha256(moved.read_bytes()).hexdigest() == first["sha256"]
    new = read_records(pytester)[0]["trace"]
    assert new["path"] == first["path"] and Path(new["path"]).is_file()


# -- 3. runs that score nothing, runs that stop early --------------------------------------------------------------
def test_a_run_that_selects_nothing_writes_a_report_saying_so(arith):
    arith.runpytest("--model", "good")
    result = arith.runpytest("--model", "good", "-k", "nothing_matches")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    report = read_report(arith)
    assert (report["status"], report["results"], report["items"]) == (
        "empty",
        [],
        {"collected": 3, "selected": 0, "done": 0},
    )
    assert (
        report["status_line"] == "0 samples: no benchmark item selected (3 collected, all deselected by -k "
        "'nothing_matches')"
    )
    result.stdout.fnmatch_lines(["agentbench: 0 samples: no benchmark item selected*"])
    assert (Path(report["previous_run"]) / "report.jsonl").read_text().count("\n") == 3  # the earlier run, kept


def test_a_replay_for_other_tasks_writes_a_report_saying_so(pytester):
    (pytester.path / "s.jsonl").write_text(json.dumps({"task_id": "Other/1", "completion": "x"}) + "\n")
    result = he_project(pytester).runpytest("--model", "replay:s.jsonl", *TWO)
    assert result.ret == 0  # pytest's own status: both items skipped
    report = read_report(pytester)
    assert (
        report["status"] == "empty"
        and report["status_line"]
        == "0 samples: the replay file of replay:s.jsonl has no rows for the 2 selected humaneval task(s) (its rows are "
        "for Other/1)"
    )


def test_an_empty_replay_file_is_refused_at_start(pytester):
    (pytester.path / "s.jsonl").write_text("\n")
    result = he_project(pytester).runpytest("--model", "replay:s.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, "replay file */s.jsonl has no rows")


def test_missing_data_writes_a_report_saying_so(pytester):
    pytester.makepyfile(test_fix=FIX_TEST)
    pytester.runpytest("--model", "reference", "--humanevalfix-path", "nowhere.jsonl")
    report = read_report(pytester)
    assert report["status"] == "empty"
    assert (
        report["status_line"] == "0 samples: humanevalfix: HumanEvalFix data unavailable: no such file: nowhere.jsonl"
    )


def test_sigint_writes_a_report_marked_interrupted_and_resume_finishes_it(pytester):
    pytester.makepyfile(test_slow=SLOW_SUITE)
    args = [sys.executable, "-m", "pytest", "--model", "reference", "--samples", "2", "-p", "no:cacheprovider"]
    subprocess.run(args + ["--agentbench-json", "full.json"], cwd=pytester.path, capture_output=True, check=False)
    proc = subprocess.Popen(args, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    jsonl = pytester.path / ".agentbench" / "report.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 6):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED
    report, done = read_report(pytester), len(read_records(pytester))
    assert report["status"] == "interrupted" and 6 <= done < 24
    assert (
        report["status_line"] == f"interrupted: {done} of 24 selected items done (KeyboardInterrupt); "
        "--agentbench-resume finishes the run"
    )
    assert report["status_line"] in out
    assert subprocess.run(args + ["--agentbench-resume"], cwd=pytester.path, capture_output=True).returncode == 1
    report, full = read_report(pytester), read_report(pytester, "full.json")
    assert report["status"] == "complete" and report["results"][0]["per_task"] == full["results"][0]["per_task"]


def test_stopping_at_the_first_failure_is_an_interrupted_run_the_gate_cannot_pass(arith):
    # arith/2-s1 fails, the 4th of 6 items; on those 4 pass@1 is 0.75, which would pass this gate
    result = arith.runpytest("--model", "half", "--samples", "2", "-x", "--agentbench-fail-under", "0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = read_report(arith)
    assert (
        report["status_line"] == "interrupted: 4 of 6 selected items done (stopping after 1 failures); "
        "--agentbench-resume finishes the run"
    )
    assert report["gate"]["ok"] is True  # over the four it did: still not a pass of the run


def test_a_crash_writes_a_report_marked_interrupted(arith):
    arith.makeconftest(
        arith.path.joinpath("conftest.py").read_text()
        + """
def pytest_runtest_logfinish(nodeid, location):
    if nodeid.endswith("[arith/2]"):
        raise RuntimeError("a plugin crashed")
"""
    )
    result = arith.runpytest("--model", "good")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    report = read_report(arith)
    assert (
        report["status_line"] == "interrupted: 2 of 3 selected items done (internal error); "
        "--agentbench-resume finishes the run"
    )
    assert len(read_records(arith)) == 2


SLEEPY = """
import time
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task

class Sleepy(Suite):
    name = "sleepy"
    def load(self):
        return [Task(id=f"sleepy/{n}", prompt="", reference="") for n in range(3)]
    def evaluate(self, task, backend, sandbox, params, sample):
        time.sleep(5 if task.id == "sleepy/1" else 0)
        return Outcome(Status.PASSED)

@pytest.mark.agentbench(Sleepy())
def test_sleepy(outcome):
    outcome.check()
"""


def test_pytest_timeout_is_one_line_and_the_sample_is_infra(pytester):
    pytester.makepyfile(test_sleepy=SLEEPY)
    result = pytester.runpytest_subprocess("--model", "reference", "--timeout", "1", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "Stack of" not in out and "+++++" not in out and "Traceback" not in out
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_sleepy[[]sleepy/1[]]*",
            "harness: pytest-timeout: the item ran past --timeout 1 s",
            "*agentbench*",
            "*short test summary info*",
            "ERROR test_sleepy.py::test_sleepy[[]sleepy/1[]] - Failed: harness: pytest-timeout*",
        ]
    )
    records = {r["task"]: r for r in read_records(pytester)}
    assert records["sleepy/1"]["status"] == "infra" and records["sleepy/2"]["status"] == "passed"
    assert records["sleepy/1"]["reason"] == "harness: pytest-timeout: the item ran past --timeout 1 s"


# -- 4. output folders that cannot be written (real mounts) --------------------------------------------------------
@pytest.fixture
def mount(pytester):
    """mount(name, *args): a real mount under the project, taken down afterwards (skipped where mounting is not
    allowed: it needs root with CAP_SYS_ADMIN)."""
    done = []

    def do(name, *args):
        target = pytester.path / name
        target.mkdir(exist_ok=True)
        run = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
        if run.returncode != 0:
            pytest.skip(f"cannot mount here: {run.stderr.strip()}")
        done.append(target)
        return target

    yield do
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_read_only_output_folder_is_one_line_at_start_and_its_files_stay(arith, mount):
    assert arith.runpytest("--model", "good", "--agentbench-json", "out/report.json").ret == 0
    before = {p.name: p.read_bytes() for p in (arith.path / "out").iterdir()}
    mount("out", "--bind", str(arith.path / "out"))
    mount("out", "-o", "remount,bind,ro")
    result = arith.runpytest("--model", "bad", "--agentbench-json", "out/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, "cannot write the report and records to */out: Read-only file system")
    assert {p.name: p.read_bytes() for p in (arith.path / "out").iterdir()} == before


def test_a_full_output_folder_is_one_line_at_start(arith, mount):
    out = mount("out", "-t", "tmpfs", "-o", "size=16k", "tmpfs")
    with pytest.raises(OSError):
        with open(out / "filler", "wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
    result = arith.runpytest("--model", "good", "--agentbench-json", "out/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, "cannot write the report and records to */out: No space left on device")


def test_a_folder_that_fills_up_mid_run_stops_with_one_line_and_resume_finishes(pytester, mount):
    """72 KiB: the start-up probe (64 KiB) passes, then the records (about 1.3 KiB each) fill it after some 55 of the
    90 samples."""
    out = mount("out", "-t", "tmpfs", "-o", "size=72k", "tmpfs")
    args = ("--model", "reference", "--samples", "3", *he_tasks(30), "--agentbench-json", "out/report.json")
    result = he_project(pytester).runpytest(*args)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    said = [ln for ln in result.stdout.lines if "No space left on device" in ln]
    assert len(said) == 1, result.stdout.str()
    lines = (out / "report.jsonl").read_text().splitlines()
    assert (
        said[0] == f"! Interrupted: agentbench: cannot write the records to {out / 'report.jsonl'}: No space "
        f"left on device; the {len(lines)} record(s) written stay valid: make room and run again with "
        "--agentbench-resume !"
    )
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()
    assert 0 < len(lines) < 90 and all(json.loads(line)["status"] == "passed" for line in lines)
    subprocess.run(["mount", "-o", "remount,size=2m", str(out)], check=True)
    result = he_project(pytester).runpytest(*args, "--agentbench-resume")
    assert result.ret == 0 and result.parseoutcomes()["passed"] == 90 - len(lines)
    report = read_report(pytester, "out/report.json")
    assert report["status"] == "complete" and report["results"][0]["samples"] == 90
    assert len(read_records(pytester, "out/report.jsonl")) == 90


# -- 5. bounds and early checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--samples", "200000"], "--samples must be less than or equal to 1000 (got 200000)"),
        (["--task-timeout", "1e12"], "--task-timeout must be less than or equal to 86400 (got 1000000000000.0)"),
        (["--tool-timeout", "1e12"], "--tool-timeout must be less than or equal to 86400 (got 1000000000000.0)"),
        (["--agentbench-keep-runs", "-1"], "--agentbench-keep-runs must be greater than or equal to 0 (got -1)"),
        (["--model", "./missing.gguf"], "model file not found: ./missing.gguf (*/missing.gguf)"),
        (["--model", "weights/missing.gguf"], "model file not found: weights/missing.gguf (*)"),
    ],
)
def test_bounds_and_paths_are_one_line_at_start(arith, args, message):
    result = arith.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, message)


def test_a_hub_id_that_cannot_load_offline_is_one_line_at_start(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(pytester.path / "empty-cache"))
    result = he_project(pytester).runpytest("--model", "nosuchorg/nosuchmodel", *TWO)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(
        result,
        "model 'nosuchorg/nosuchmodel': nosuchorg/nosuchmodel is not in the local Hugging Face "
        "cache and the hub cannot be reached (offline)*",
    )


def test_a_parquet_without_the_needed_columns_is_one_line_at_start(pytester):
    import pandas as pd

    pd.DataFrame({"task_id": ["Python/0"], "prompt": ["def f():\n"]}).to_parquet(pytester.path / "fix.parquet")
    pytester.makepyfile(test_fix=FIX_TEST)
    result = pytester.runpytest_subprocess("--model", "reference", "--humanevalfix-path", "fix.parquet")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: agentbench: fix.parquet: no row has the fields the suite needs (first: "
            "dataset row Python/0 is missing buggy_solution, canonical_solution, entry_point, "
            "test, example_test)"
        ]
    )


# -- 6. re-grading a run from its records ----------------------------------------------------------------------------
CHAT = '''
from pytest_agentbench.backends import Backend, Completion

class Chat(Backend):
    """A chat model: fenced full functions. Task n % 3 == 0: right; 1: a wrong function; 2: prose, no code; sample 1
    of task 4 is right."""
    def generate(self, request):
        n = int(request.sample.task_id.split("/")[1])
        name = request.prefix.split("def ")[-1].split("(")[0]
        if n % 3 == 0 or (n == 4 and request.sample.index == 1):
            return Completion(text=f"Here it is:\\n```python\\n{request.prefix}{request.sample.reference}```\\nDone.")
        if n % 3 == 1:
            return Completion(text=f"```python\\ndef {name}(*args):\\n    return None\\n```")
        return Completion(text="I would rather not.")

def pytest_agentbench_make_backend(spec):
    return Chat(spec) if spec.name == "chat" else None
'''


def test_regrading_humaneval_records_gives_the_verdicts_of_the_run(pytester):
    pytester.makeconftest(CHAT)
    pytester.makefile(".yaml", models="models:\n  chat: {backend: chat}\n")
    he_project(pytester)
    result = pytester.runpytest("--model", "chat", "--samples", "2", *he_tasks(6), "--agentbench-json", "run.json")
    assert result.ret == 1
    run = read_records(pytester, "run.jsonl")
    assert {r["status"] for r in run} == {"passed", "failed", "error", "unparsable"}
    assert all(r["replies"] == [{"text": r["completion"], "continues_prompt": False}] for r in run)
    result = pytester.runpytest("--model", "replay:run.jsonl", *he_tasks(6))
    assert result.ret == 1
    assert verdicts(read_records(pytester)) == verdicts(run)
    report = read_report(pytester)
    source = report["run"]["regraded_from"]["replay:run.jsonl"]
    assert (source["model"], source["records"], source["report"]) == (
        "chat",
        str(pytester.path / "run.jsonl"),
        str(pytester.path / "run.json"),
    )
    assert source["created_utc"] == read_report(pytester, "run.json")["created_utc"]
    assert report["results"][0]["per_task"] == read_report(pytester, "run.json")["results"][0]["per_task"]


def test_regrading_after_a_grader_fix_rescores_without_the_model(pytester):
    """The run's data had a wrong test for HumanEval/0; re-graded with the fixed data, only that task's verdict
    changes (the replay never calls the model: `chat` is not even defined in this project)."""
    with gzip.open(humaneval_data_file(), "rt") as f:
        rows = [json.loads(line) for line in f][:3]
    broken = [dict(r) for r in rows]
    broken[0]["test"] = "def check(candidate):\n    assert False, 'a wrong test'\n"
    (pytester.path / "broken.jsonl").write_text("".join(json.dumps(r) + "\n" for r in broken))
    (pytester.path / "fixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pytester.makepyfile(
        test_he="""
import os, pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval(os.environ["HE_DATA"]))
def test_humaneval(outcome):
    outcome.check()
"""
    )
    os.environ["HE_DATA"] = str(pytester.path / "broken.jsonl")
    try:
        pytester.runpytest("--model", "reference", "--agentbench-json", "run.json")
        assert [r["status"] for r in sorted(read_records(pytester, "run.jsonl"), key=lambda r: r["task"])] == [
            "failed",
            "passed",
            "passed",
        ]
        os.environ["HE_DATA"] = str(pytester.path / "fixed.jsonl")
        assert pytester.runpytest("--model", "replay:run.jsonl").ret == 0
    finally:
        del os.environ["HE_DATA"]
    assert {r["task"]: r["status"] for r in read_records(pytester)} == {
        "HumanEval/0": "passed",
        "HumanEval/1": "passed",
        "HumanEval/2": "passed",
    }


FIXER = '''
from pytest_agentbench.backends import Backend, Completion

class Fixer(Backend):
    """Continues the prompt: a wrong body first; on even tasks the right one when shown the failure."""
    def generate(self, request):
        turn = sum(m["role"] == "assistant" for m in request.messages)
        n = int(request.sample.task_id.split("/")[1])
        right = turn >= 1 and n % 2 == 0
        return Completion(text=request.sample.reference if right else "    return None\\n", continues_prompt=True)

def pytest_agentbench_make_backend(spec):
    return Fixer(spec) if spec.name == "fixer" else None
'''


def test_regrading_a_multi_turn_repair_run_replays_it_turn_by_turn(pytester, humanevalfix_path):
    pytester.makeconftest(FIXER)
    pytester.makefile(".yaml", models="models:\n  fixer: {backend: fixer}\n")
    pytester.makepyfile(test_fix=FIX_TEST)
    tasks = ["-k", " or ".join(f"Python/{i}" for i in range(4)), "--humanevalfix-path", str(humanevalfix_path)]
    pytester.runpytest("--model", "fixer", "--iters", "1", *tasks, "--agentbench-json", "run.json")
    run = read_records(pytester, "run.jsonl")
    assert {r["task"]: r["status"] for r in run} == {
        "Python/0": "passed",
        "Python/1": "failed",
        "Python/2": "passed",
        "Python/3": "failed",
    }
    assert all(len(r["replies"]) == 2 for r in run)
    pytester.runpytest("--model", "replay:run.jsonl", "--iters", "1", *tasks)
    again = read_records(pytester)
    assert verdicts(again) == verdicts(run)
    rounds = lambda recs: {r["task"]: [i["feedback"] for i in r["extra"]["iterations"]] for r in recs}
    assert rounds(again) == rounds(run)
    # a grader that now asks for more than the model gave: those samples are infra, never a guess
    pytester.runpytest("--model", "replay:run.jsonl", "--iters", "2", *tasks)
    more = {r["task"]: r for r in read_records(pytester)}
    assert {t: r["status"] for t, r in more.items()} == {
        "Python/0": "passed",
        "Python/1": "infra",
        "Python/2": "passed",
        "Python/3": "infra",
    }
    assert more["Python/1"]["reason"].endswith(
        "holds 2 replies; re-grading asked for reply 3 (the agent now goes "
        "further than the model did: run the model again)"
    )


def test_regrading_an_agent_run_replays_its_steps_also_from_the_trace_of_an_older_record(pytester):
    from conftest import scenario_project as project

    project(pytester)
    args = ("-k", "fix_failing_test/default or prompt_injection/default", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess("--model", "garbage", *args, "--agentbench-json", "run.json")
    run = read_records(pytester, "run.jsonl")
    assert {r["status"] for r in run} == {"passed"} and all(r["extra"]["protocol_errors"] == 3 for r in run)
    # records written before records kept their replies: replayed from their traces
    (pytester.path / "old.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "replies"}) + "\n" for r in run)
    )
    for source in ("run.jsonl", "old.jsonl"):
        result = pytester.runpytest_subprocess("--model", f"replay:{source}", *args)
        assert result.ret == 0, result.stdout.str()
        again = read_records(pytester)
        assert verdicts(again) == verdicts(run)
        steps = lambda recs: {r["task"]: (r["extra"]["protocol_errors"], len(r["replies"])) for r in recs}
        assert steps(again) == steps(run)


@pytest.mark.parametrize(
    "records, message",
    [
        (
            [{"model": "a"}, {"model": "b"}],
            "replay file *run.jsonl holds the records of 2 models (a, b): re-grade one model's records at a time",
        ),
        (
            [{"model": "a", "status": "infra"}],
            "replay file *run.jsonl holds no finished sample to re-grade (1 infra record(s))",
        ),
    ],
)
def test_records_that_cannot_be_regraded_are_one_line_at_start(pytester, records, message):
    base = {
        "schema": "pytest-agentbench/record/v2",
        "suite": "humaneval",
        "task": "HumanEval/0",
        "sample": 0,
        "status": "passed",
        "completion": "    return 1\n",
    }
    (pytester.path / "run.jsonl").write_text("".join(json.dumps({**base, **r}) + "\n" for r in records))
    result = he_project(pytester).runpytest("--model", "replay:run.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    one_line_error(result, message)


# -- 7. a killed xdist controller ------------------------------------------------------------------------------------
def _session_processes(sid: int) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getsid(int(pid)) == sid:
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_a_killed_controller_leaves_workers_that_stop_quietly(pytester):
    pytester.makepyfile(test_slow=SLOW_SUITE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--model", "reference", "--samples", "4", "-n", "2", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    jsonl = pytester.path / ".agentbench" / "report.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the controller only: its workers see their channel close
    _, err = proc.communicate(timeout=60)  # returns when the workers, which hold stderr too, are gone
    assert "cannot send" not in err and "Warning" not in err and "Traceback" not in err, err
    deadline = time.time() + 10
    while time.time() < deadline and _session_processes(proc.pid):
        time.sleep(0.1)
    assert _session_processes(proc.pid) == []
    assert all(json.loads(line) for line in jsonl.read_text().splitlines())  # what was written stays whole
