"""The plugin end to end through pytester: items, selection, report, gate, one-line errors."""

import json
import subprocess
import sys

import pytest

from conftest import read_records, read_report


def test_one_item_per_task_with_task_ids(arith):
    result = arith.runpytest("--model", "good", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "test_arith.py::test_arith[[]arith/1[]]",
            "test_arith.py::test_arith[[]arith/2[]]",
            "test_arith.py::test_arith[[]arith/10[]]",
            "3 tests collected*",
        ]
    )


def test_k_with_a_task_id_selects_exactly_that_task(arith):
    # pytest alone would match arith/1 as a substring of arith/10 too
    result = arith.runpytest("--model", "good", "-k", "arith/1", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_arith.py::test_arith[[]arith/1[]]", "1/3 tests collected (2 deselected)*"])
    result = arith.runpytest("--model", "good", "-k", "arith/1 or arith/10", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*2/3 tests collected (1 deselected)*"])
    result = arith.runpytest("--model", "good", "-k", "not arith/1", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*2/3 tests collected (1 deselected)*"])


def test_m_selects_by_suite_marker(arith):
    arith.makeini("[pytest]\nmarkers =\n    arith: arith suite\n")
    assert arith.runpytest("--model", "good", "-m", "arith", "--collect-only", "-q").ret == 0
    result = arith.runpytest("--model", "good", "-m", "not arith", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*no tests collected (3 deselected)*"])


def test_samples_and_models_parametrize_with_distinct_ids(arith):
    result = arith.runpytest("--model", "good,bad", "--samples", "2", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert len(ids) == len(set(ids)) == 2 * 3 * 2
    assert "test_arith.py::test_arith[good-arith/10-s1]" in ids
    assert "test_arith.py::test_arith[bad-arith/1-s0]" in ids


def test_report_contents_and_pass_at_k(arith):
    result = arith.runpytest("--model", "half", "--samples", "2")
    assert result.ret == 1  # no gate: pytest's own status (some tests failed)
    report = read_report(arith)
    (res,) = report["results"]
    assert (res["model"], res["suite"], res["tasks"], res["samples"]) == ("half", "arith", 3, 6)
    # hand values: arith/1 2 of 2 pass, arith/2 1 of 2, arith/10 0 of 2
    assert res["pass@1"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-6)
    assert res["pass@k"]["2"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-6)
    assert res["outcomes"]["passed"] == 3 and res["outcomes"]["failed"] == 3
    assert set(res["latency_s"]) == {"wall_s", "model_s", "sandbox_s"}
    assert set(res["latency_s"]["wall_s"]) == {"mean", "p50", "p95"}
    assert res["tokens"]["prompt"] == {"mean": 3.0, "total": 18}
    run = report["run"]
    assert run["packages"]["pytest"] and run["machine"]["python"] and run["seed"] == 1234
    assert run["models"]["half"]["spec"]["options"] == {"mode": "half"}
    records = read_records(arith)
    assert len(records) == 6
    assert {r["status"] for r in records} == {"passed", "failed"}
    assert all(
        {
            "model",
            "task",
            "sample",
            "completion",
            "stdout",
            "stderr",
            "wall_s",
            "model_s",
            "prompt_tokens",
            "completion_tokens",
            "params",
        }
        <= set(r)
        for r in records
    )
    assert sorted(r["params"]["seed"] for r in records) == [1234, 1234, 1234, 1235, 1235, 1235]
    result.stdout.fnmatch_lines(["*agentbench*", "model*suite*pass@1*", "half*arith*3*6*0.500*"])


TIMING_KEYS = {
    "wall_s",
    "model_s",
    "sandbox_s",
    "latency_s",
    "worker",
    "resources",
    "ttft_s",  # worker: where it ran
    "started_at",
    "ended_at",
    "propose_at",
    "execute_at",
}  # wall-clock times


def _strip_timings(value):
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def test_report_is_the_same_with_and_without_xdist(arith):
    arith.runpytest_subprocess("--model", "good,half", "--samples", "2", "--agentbench-json", "serial.json")
    arith.runpytest_subprocess("--model", "good,half", "--samples", "2", "-n", "2", "--agentbench-json", "par.json")
    serial, par = read_report(arith, "serial.json"), read_report(arith, "par.json")
    assert _strip_timings(serial["results"]) == _strip_timings(par["results"])
    assert serial["results"][0]["samples"] == 6 and len(serial["results"]) == 2
    key = lambda r: (r["model"], r["task"], r["sample"])
    assert sorted(map(_strip_timings, read_records(arith, "serial.jsonl")), key=key) == sorted(
        map(_strip_timings, read_records(arith, "par.jsonl")), key=key
    )


@pytest.mark.parametrize(
    "args, code, line",
    [
        (
            ["--model", "good", "--agentbench-fail-under", "0.9"],
            0,
            "PASS good/arith: pass@1 1.0000 >= fail-under 0.9000",
        ),
        (["--model", "bad", "--agentbench-fail-under", "0.1"], 1, "FAIL bad/arith: pass@1 0.0000 < fail-under 0.1000"),
        # the gate holds although one test failed: exit 0
        (
            ["--model", "half", "--agentbench-fail-under", "0.6"],
            0,
            "PASS half/arith: pass@1 0.6667 >= fail-under 0.6000",
        ),
        (["--model", "half,good", "--agentbench-fail-under", "0.7"], 1, "FAIL half/arith: pass@1 0.6667 < *"),
    ],
)
def test_fail_under_gate_decides_the_exit_status(arith, args, code, line):
    result = arith.runpytest(*args)
    assert result.ret == code
    result.stdout.fnmatch_lines([f"gate: {line}"])


def test_baseline_gate(arith):
    """The in-pytest gate on the arith suite (3 tasks, so one flip cannot be told from noise); the statistics are
    tested on larger constructed pairs in test_compare.py."""
    assert arith.runpytest("--model", "good,bad", "--agentbench-json", "base.json").ret == 1
    # two baseline models for the suite, neither is this one: one line asks for a map; a gate that compared nothing
    # fails
    result = arith.runpytest("--model", "half", "--agentbench-baseline", "base.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "gate: FAIL half/arith: the baseline has bad, good for this suite: say which with "
            "--agentbench-model-map NEW=OLD",
            "gate: FAIL compared nothing: baseline base.json holds bad/arith, good/arith; this run has half/arith",
        ]
    )
    assert read_report(arith)["gate"]["ok"] is False
    # half lost arith/10 against good: one discordant task is not evidence: inconclusive (exit 0, or 1 if strict)
    args = (
        "--model",
        "half",
        "--agentbench-baseline",
        "base.json",
        "--agentbench-model-map",
        "half=good",
        "--agentbench-max-drop",
        "0.02",
    )
    result = arith.runpytest(*args)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "gate: INCONCLUSIVE half/arith: pass@1 0.6667 vs baseline good/arith 1.0000 on 3 "
            "tasks: drop +0.3333 *cannot tell a drop of 0.020 from noise*",
            "gate:      regressed: arith/10",
        ]
    )
    report = read_report(arith)
    assert report["comparison"]["comparisons"][0]["paired"]["discordant"] == [1, 0]
    assert arith.runpytest(*args, "--agentbench-strict").ret == 1
    # against bad, half is better, but 3 tasks cannot rule out a drop of 0.02 either; a drop of 0.9 they can
    result = arith.runpytest(
        "--model",
        "half",
        "--agentbench-baseline",
        "base.json",
        "--agentbench-model-map",
        "half=bad",
        "--agentbench-max-drop",
        "0.02",
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["gate: INCONCLUSIVE half/arith: *drop -0.6667*"])
    result = arith.runpytest(
        "--model",
        "half",
        "--agentbench-baseline",
        "base.json",
        "--agentbench-model-map",
        "half=bad",
        "--agentbench-max-drop",
        "0.9",
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["gate: PASS half/arith: *a drop above 0.900 is ruled out*"])
    # the same verdict, line for line, outside pytest
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_agentbench",
            "compare",
            "base.json",
            ".agentbench/report.json",
            "--max-drop",
            "0.9",
            "--model-map",
            "half=bad",
        ],
        cwd=arith.path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.splitlines() == read_report(arith)["gate"]["lines"]
    assert (
        arith.runpytest(
            "--model", "half", "--agentbench-baseline", "base.json", "--agentbench-model-map", "half=nope"
        ).ret
        == 1
    )


def test_baseline_with_one_model_for_the_suite_is_paired_by_suite(arith):
    assert arith.runpytest("--model", "half", "--agentbench-json", "base.json").ret == 1
    result = arith.runpytest("--model", "good", "--agentbench-baseline", "base.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["gate: * good/arith: pass@1 1.0000 vs baseline half/arith 0.6667 on 3 tasks: drop -0.3333 *"]
    )


@pytest.mark.parametrize(
    "model, reason",
    [
        ("crash", "harness: evaluating arith/1 raised RuntimeError: backend exploded"),
        ("noload", "harness: backend 'noload' failed to load: RuntimeError: weights not found"),
    ],
)
def test_harness_failure_is_an_error_and_fails_any_gate(arith, model, reason):
    result = arith.runpytest("--model", model, "--agentbench-fail-under", "0.0")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["errors"] == 3 and "failed" not in outcomes  # pytest errors, not model failures
    result.stdout.fnmatch_lines([reason, "gate: FAIL harness: 3 sample(s) could not be evaluated*"])
    (res,) = read_report(arith)["results"]
    assert res["outcomes"]["infra"] == 3
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("models: [oops", "*models.yaml: line 1 is not valid YAML*"),
        ("models:\n  m: {backend: scripted, flavour: x}", "*model 'm': unknown field 'flavour'*"),
        ("models:\n  m: {hf_id: 3}", "*model 'm': field 'hf_id' should be a valid string (got 3)*"),
        ("- just a list", "*expected a mapping with a 'models:' mapping*"),
    ],
)
def test_bad_models_yaml_is_one_line(arith, yaml_text, message):
    arith.path.joinpath("models.yaml").write_text(yaml_text)
    result = arith.runpytest("--model", "good")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: agentbench: {message}"])
    assert len([ln for ln in result.stderr.lines if ln.strip()]) == 1


def test_unknown_model_is_one_line(arith):
    result = arith.runpytest("--model", "nosuchmodel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: agentbench: unknown model 'nosuchmodel': not an alias in *models.yaml "
            "(known: bad, crash, good, half, noload)*"
        ]
    )
    assert len([ln for ln in result.stderr.lines if ln.strip()]) == 1


def test_bad_baseline_is_one_line(arith):
    arith.path.joinpath("old.json").write_text("{}")
    result = arith.runpytest("--model", "good", "--agentbench-baseline", "old.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: agentbench: baseline old.json is not a pytest-agentbench report*"])


def test_results_stream_to_jsonl_as_samples_finish(arith):
    arith.path.joinpath("conftest.py").write_text(
        arith.path.joinpath("conftest.py").read_text()
        + """
import json, pathlib
def pytest_runtest_teardown(item):
    if item.name == "test_arith[arith/10]":
        lines = pathlib.Path(".agentbench/report.jsonl").read_text().splitlines()
        pathlib.Path("seen.json").write_text(json.dumps([json.loads(x)["task"] for x in lines]))
"""
    )
    arith.runpytest("--model", "good")
    assert json.loads(arith.path.joinpath("seen.json").read_text()) == ["arith/1", "arith/2", "arith/10"]


def test_plugin_import_and_collection_stay_light(pytester):
    """torch and transformers are imported when a backend is first used, never at collection."""
    pytester.makepyfile(
        conftest="""
import sys
def pytest_collection_finish(session):
    heavy = sorted(m for m in ("torch", "transformers", "pandas", "datasets") if m in sys.modules)
    print("HEAVY", heavy)
"""
    )
    pytester.makepyfile(
        test_he="""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_he(outcome):
    outcome.check()
"""
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(["HEAVY []", "*164 tests collected*"])
