"""HumanEvalFix: self-checks on the real data (from ../shared, never copied here), the reflect loop,
resume after SIGKILL, plots and the pandas loader."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SCRIPTED, SLOW_SUITE, fix_project, read_records, read_report
from pytest_agentbench.results.report import records_frame
from pytest_agentbench.suites.humanevalfix import rows_as_replay

ROOT = Path(__file__).resolve().parents[2]
UNWINNABLE = ROOT / "benchmarks" / "data" / "humanevalfix_unwinnable.jsonl"


def test_reference_fixes_all_164(pytester, humanevalfix_path):
    result = fix_project(pytester).runpytest_subprocess(
        "--model", "reference", "-n", "2", "-q", "--humanevalfix-path", str(humanevalfix_path)
    )
    assert result.ret == 0
    (res,) = read_report(pytester)["results"]
    assert (res["suite"], res["tasks"], res["pass@1"]) == ("humanevalfix", 164, 1.0)


def test_buggy_code_unchanged_fails_all_164(pytester, humanevalfix_path):
    replay = pytester.path / "buggy.jsonl"
    replay.write_text(rows_as_replay(humanevalfix_path, "buggy_solution"))
    result = fix_project(pytester).runpytest_subprocess(
        "--model", f"replay:{replay}", "-n", "2", "-q", "--humanevalfix-path", str(humanevalfix_path)
    )
    assert result.ret == 1
    (res,) = read_report(pytester)["results"]
    assert (res["tasks"], res["pass@1"], res["outcomes"]["passed"], res["outcomes"]["infra"]) == (164, 0.0, 0, 0)


@pytest.mark.parametrize("field", ["canonical_solution", "buggy_solution"])
def test_unwinnable_tasks_score_zero_whatever_the_answer(pytester, field):
    replay = pytester.path / "answers.jsonl"
    replay.write_text(rows_as_replay(UNWINNABLE, field))
    for model in ("reference", f"replay:{replay}"):
        fix_project(pytester).runpytest("--model", model, "--humanevalfix-path", str(UNWINNABLE))
        (res,) = read_report(pytester)["results"]
        assert (res["tasks"], res["pass@1"], res["outcomes"]["passed"], res["outcomes"]["infra"]) == (4, 0.0, 0, 0)


def test_reflect_loop_feeds_the_failure_back(pytester, humanevalfix_path):
    pytester.makeconftest(SCRIPTED.replace("DATA", repr(str(humanevalfix_path))))
    pytester.makefile(".yaml", models="models:\n  scripted: {backend: scripted}\n")
    fix_project(pytester)
    select = ["-k", "Python/0 or Python/2", "--humanevalfix-path", str(humanevalfix_path)]
    result = pytester.runpytest("--model", "scripted", "--iters", "0", *select)
    assert result.parseoutcomes()["failed"] == 2
    (res,) = read_report(pytester)["results"]
    assert res["pass@1"] == 0.0
    result = pytester.runpytest("--model", "scripted", "--iters", "1", *select)
    assert result.ret == 0
    (res,) = read_report(pytester)["results"]
    assert res["pass@1"] == 1.0
    for rec in read_records(pytester):
        rounds = rec["extra"]["iterations"]
        assert len(rounds) == 2 and rounds[0]["feedback"] == "failed"
        assert all(r["propose_s"] >= 0 and r["prompt_tokens"] == 10 for r in rounds)
        assert rec["prompt_tokens"] == 20 and rec["completion_tokens"] == 10
        assert rec["suite_settings"] == {"iters": 1, "feedback": "example"}


def test_offline_without_data_skips_with_a_reason_and_other_suites_run(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(pytester.path / "hf"))
    fix_project(pytester)
    pytester.makepyfile(
        test_he="""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
"""
    )
    result = pytester.runpytest_subprocess(
        "--model", "reference", "-k", "Python/0 or HumanEval/0 or humanevalfix", "-rs"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["SKIPPED*HumanEvalFix data unavailable here*--humanevalfix-path PATH*", "*1 passed, 1 skipped*"]
    )


def test_broken_rows_are_reported_by_task_id(pytester, humanevalfix_path):
    rows = [json.loads(line) for line in humanevalfix_path.read_text().splitlines()[:3]]
    del rows[1]["example_test"]
    data = pytester.path / "fix.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = fix_project(pytester).runpytest("--model", "reference", "--humanevalfix-path", str(data))
    result.stdout.fnmatch_lines(["*dataset row Python/1 is missing example_test*", "*2 passed*1 error*"])
    assert "Traceback" not in result.stdout.str()


def _comparable(report):
    res = report["results"]
    for r in res:
        r.pop("latency_s")
    return res


def test_resume_after_sigkill_equals_an_uninterrupted_run(pytester):
    pytester.makepyfile(test_slow=SLOW_SUITE)
    args = [sys.executable, "-m", "pytest", "--model", "reference", "--samples", "2", "-p", "no:cacheprovider", "-q"]
    subprocess.run(args + ["--agentbench-json", "full.json"], cwd=pytester.path, check=False, capture_output=True)
    full = json.loads((pytester.path / "full.json").read_text())

    proc = subprocess.Popen(
        args + ["--agentbench-json", "run.json"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    jsonl = pytester.path / "run.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 8):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(read_records(pytester, "run.jsonl"))
    assert 8 <= done < 24 and not (pytester.path / "run.json").exists()

    result = subprocess.run(
        [a for a in args if a != "-q"] + ["--agentbench-json", "run.json", "--agentbench-resume", "-n", "2"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert f"resuming: {done} sample(s) already done" in result.stdout
    ran = sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed)", result.stdout.splitlines()[-1]))
    assert ran == 24 - done  # only the rest ran
    resumed = json.loads((pytester.path / "run.json").read_text())
    assert _comparable(resumed) == _comparable(full)
    assert len(read_records(pytester, "run.jsonl")) == 24


def test_records_frame_and_plot(pytester):
    pytester.makepyfile(test_slow=SLOW_SUITE.replace("time.sleep(0.25)", "pass"))
    pytester.runpytest_subprocess("--model", "reference", "--agentbench-plot", "out/plot.png")
    frame = records_frame(pytester.path / ".agentbench" / "report.jsonl")
    assert len(frame) == 12 and frame["passed"].sum() == 8
    assert {"model", "suite", "task", "sample", "status", "wall_s", "prompt_tokens", "iterations"} <= set(frame.columns)
    png = pytester.path / "out" / "plot.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = pytester.path / "again.png"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_agentbench.results.plots",
            str(pytester.path / ".agentbench" / "report.jsonl"),
            "-o",
            str(again),
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and again.read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench.results.plots", str(pytester.path / "missing.jsonl")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.strip() == "error: no samples to plot"
