"""The typed record (results/records.py): every key declared, unknown keys refused, hook additions under `plugins`;
and a report and records written before it (record schema v2, tests/data/v2, made by the code of commit db694b2)
still load, compare, resume, gate and render."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TOOL_USE_TEST, he_project, read_records, read_report
from pytest_agentbench.errors import AgentbenchError, HarnessError
from pytest_agentbench.results import records
from pytest_agentbench.results.records import PREVIOUS_SCHEMA, RECORD_SCHEMA

V2 = Path(__file__).resolve().parents[1] / "data" / "v2"
V2_RUN, V2_ARITH = V2 / "run", V2 / "arith"


def raw(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- reading the previous version --------------------------------------------------------------------------------
def test_every_v2_record_reads_as_this_version_with_nothing_lost():
    for folder in (V2_RUN, V2_ARITH):
        old = raw(folder / "report.jsonl")
        new = records.read_records(folder / "report.jsonl")
        assert len(new) == len(old) > 0
        for before, after in zip(old, new):
            assert before["schema"] == PREVIOUS_SCHEMA and after["schema"] == RECORD_SCHEMA
            moved = after.get("plugins", {})
            for name, value in before.items():
                if name == "schema" or value is None:
                    continue
                assert (after[name] if name in records.KEYS else moved[name]) == value, name
    suites = {r["suite"] for r in records.read_records(V2_RUN / "report.jsonl")}
    assert suites == {"humaneval", "humanevalfix", "scenarios", "tool_use"}


def test_a_hooks_top_level_key_of_a_v2_record_moves_under_plugins():
    (first, *_) = records.read_records(V2_ARITH / "report.jsonl")
    assert "team" not in first and first["plugins"] == {"team": "blue"}


def test_an_unknown_key_of_a_v3_record_is_one_line_naming_file_and_line(tmp_path):
    rows = [records.build(model="m", suite="s", task=f"t/{i}", sample=0, status="passed") for i in range(2)]
    rows[1]["team"] = "blue"
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(AgentbenchError) as err:
        records.read_records(path)
    assert str(err.value) == (
        f"{path}:2: 't/1': unknown key 'team' (declared keys: docs/records.md; a hook's own data goes under 'plugins')"
    )


def test_a_record_of_an_unknown_version_is_refused(tmp_path):
    row = records.build(model="m", suite="s", task="t", sample=0, status="passed")
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps({**row, "schema": "pytest-agentbench/record/v9"}) + "\n")
    with pytest.raises(AgentbenchError, match=r"run.jsonl:1: record schema 'pytest-agentbench/record/v9' is not one"):
        records.read_records(path)


def test_building_a_record_with_an_undeclared_key_or_a_wrong_type_names_it():
    with pytest.raises(HarnessError, match="unknown key 'scorez'"):
        records.build(model="m", suite="s", task="t", sample=0, status="passed", scorez=1)
    with pytest.raises(HarnessError, match=r"resources\.gpu_mb: .*unknown key|unknown key 'resources.gpu_mb'"):
        records.build(model="m", suite="s", task="t", sample=0, status="passed", resources={"gpu_mb": 3})
    with pytest.raises(HarnessError, match="sample: Input should be greater than or equal to 0"):
        records.build(model="m", suite="s", task="t", sample=-1, status="passed")


def test_keys_that_do_not_apply_are_absent_not_null():
    rec = records.build(model="m", suite="s", task="t", sample=0, status="infra", reason="x")
    assert not set(records.OPTIONAL) & set(rec)
    assert rec["started_at"] is None and rec["quantization"] is None  # always written, as in v2


# -- through pytest: hooks, resume, gate, compare, the page --------------------------------------------------------
HOOK = """
def pytest_agentbench_record(record, config):
    record["plugins"]["team"] = "blue"
"""


def test_a_hook_writes_under_plugins_and_a_stray_top_level_key_is_kept_there(arith):
    arith.makeconftest((arith.path / "conftest.py").read_text() + HOOK)
    arith.runpytest("--model", "good", "--sandbox", "unconfined")
    assert {r["plugins"]["team"] for r in read_records(arith)} == {"blue"}
    arith.makeconftest((arith.path / "conftest.py").read_text().replace('record["plugins"]["team"]', 'record["team"]'))
    result = arith.runpytest("--model", "good", "--sandbox", "unconfined")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*a pytest_agentbench_record hook added 'team' at the top of the record*"])
    assert [r["plugins"] for r in read_records(arith)] == [{"team": "blue"}] * 3
    assert all("team" not in r for r in read_records(arith))


def test_a_v2_run_resumes_to_the_same_report(arith):
    (arith.path / ".agentbench").mkdir()
    shutil.copy(V2_ARITH / "report.jsonl", arith.path / ".agentbench" / "report.jsonl")
    result = arith.runpytest("--model", "good,half", "--samples", "2", "--sandbox", "unconfined", "--agentbench-resume")
    assert result.ret == 1  # half fails some, as it did
    result.stdout.fnmatch_lines(["*resuming: 12 sample(s) already done*", "*12 deselected*"])
    resumed = read_records(arith)
    assert len(resumed) == 12 and {r["schema"] for r in resumed} == {RECORD_SCHEMA}
    assert {r["plugins"]["team"] for r in resumed} == {"blue"}  # the hook's key of v2, kept under plugins
    old, new = json.loads((V2_ARITH / "report.json").read_text()), read_report(arith)
    assert [(r["model"], r["pass@1"], r["per_task"]) for r in new["results"]] == [
        (r["model"], r["pass@1"], r["per_task"]) for r in old["results"]
    ]


def test_a_v2_report_is_a_gate_baseline_and_compares_from_the_command_line(arith):
    baseline = Path(shutil.copy(V2_ARITH / "report.json", arith.path / "v2.json"))
    result = arith.runpytest(
        "--model", "good,half", "--samples", "2", "--sandbox", "unconfined", "--agentbench-baseline=v2.json"
    )
    assert result.ret == 0  # with a baseline the gate decides the exit status: no drop
    gate = read_report(arith)["gate"]
    assert gate["ok"], gate["lines"]
    assert any("good/arith" in line for line in gate["lines"])
    new = arith.path / ".agentbench" / "report.json"
    out = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "compare", str(baseline), str(new)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "good/arith" in out.stdout and "half/arith" in out.stdout


def test_a_v2_reference_run_gates_a_new_one(pytester):
    """The real run of tests/data/v2/run (HumanEval, HumanEvalFix, tool use, a scenario) as the baseline of a fresh
    tool-use run of the same two tasks: paired on them, the same verdicts. (HumanEval's settings changed since v2:
    a reply now ends after its code block, `end_after`, so the gate refuses that pairing, saying so.)"""
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    shutil.copy(V2_RUN / "report.json", pytester.path / "v2.json")
    result = pytester.runpytest(
        "--model", "reference", "-k", "multi_step/000] or pure_reasoning/000]", "--agentbench-baseline=v2.json"
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    report = read_report(pytester)
    (tu,) = report["results"]
    old = next(r for r in json.loads((V2_RUN / "report.json").read_text())["results"] if r["suite"] == "tool_use")
    assert tu["per_task"] == old["per_task"] and report["gate"]["ok"]


def test_a_v2_run_renders_its_page_and_plot(tmp_path):
    from pytest_agentbench.results.page import load_run, write_html
    from pytest_agentbench.results.plots import plot_records

    report, recs, why = load_run(V2_RUN / "report.json")
    assert why is None and len(recs) == 7 and {r["schema"] for r in recs} == {RECORD_SCHEMA}
    write_html(tmp_path / "page.html", [report], [recs])
    assert "HumanEval/0" in (tmp_path / "page.html").read_text()
    plot_records(V2_ARITH / "report.jsonl", tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_a_v2_run_regrades_from_its_records(pytester, tmp_path):
    """--model replay: on the v2 records of the reference HumanEval run: the same verdicts."""
    run = [r for r in raw(V2_RUN / "report.jsonl") if r["suite"] == "humaneval"]
    path = tmp_path / "v2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in run))
    he_project(pytester)
    result = pytester.runpytest("--model", f"replay:{path}", "-k", "HumanEval/0] or HumanEval/2]")
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert [r["status"] for r in read_records(pytester)] == ["passed", "passed"]


# -- traces: what the agent did; the grade is the record's ----------------------------------------------------------
def test_v2_traces_read_as_this_version_without_their_grade():
    from pytest_agentbench.trace import GRADE_KEYS, TRACE_SCHEMA, Trace

    paths = sorted((V2_RUN / "traces").rglob("run_*.json"))
    assert len(paths) == 3
    for path in paths:
        doc = json.loads(path.read_text())
        trace = Trace.load(doc)
        assert trace.schema_ == TRACE_SCHEMA and trace.steps and len(trace.steps) == len(doc["steps"])
        assert not set(GRADE_KEYS) & set(trace.model_dump(by_alias=True))
    with pytest.raises(ValueError):  # this version refuses the grade keys
        Trace.load({**json.loads(paths[0].read_text()), "schema": TRACE_SCHEMA})


def test_the_outcome_of_an_agent_run_takes_the_traces_totals():
    from pytest_agentbench.outcome import Outcome, Status
    from pytest_agentbench.trace import Trace

    trace = Trace(run_id="r", scenario="s", model={"name": "m", "backend": "b"})
    trace.tokens.update(prompt=7, completion=3)
    trace.latency_s.update(model=1.5, tools=0.25)
    trace.details["last_reply"] = "FINAL: 4"
    extra: dict = {}
    out = Outcome.from_trace(trace, Status.FAILED, "wrong", extra=extra)
    assert (out.model_s, out.sandbox_s, out.prompt_tokens, out.completion_tokens) == (1.5, 0.25, 7, 3)
    assert out.completion == "FINAL: 4" and out.trace is trace and out.extra is extra  # a grader fills it on


def test_the_json_schemas_in_docs_are_the_models():
    from pytest_agentbench.results.records import Record

    docs = Path(__file__).resolve().parents[2] / "docs"
    schema = json.loads((docs / "record.schema.json").read_text())
    assert schema == Record.model_json_schema(by_alias=True), (
        "docs/record.schema.json is stale: scripts/write_schemas.py"
    )
    assert schema["additionalProperties"] is False and "plugins" in schema["properties"]


def test_a_hook_that_breaks_a_declared_key_makes_the_sample_infra_saying_why(arith):
    arith.makeconftest(
        (arith.path / "conftest.py").read_text()
        + '\ndef pytest_agentbench_record(record, config):\n    record["wall_s"] = "slow"\n'
    )
    arith.runpytest("--model", "good", "--sandbox", "unconfined", "-k", "arith/1]")
    (rec,) = read_records(arith)
    assert rec["status"] == "infra" and rec["task"] == "arith/1" and rec["schema"] == RECORD_SCHEMA
    assert rec["reason"].startswith("malformed record for 'arith/1': wall_s: Input should be a valid number")


def test_the_v2_reference_run_resumes(pytester):
    """The real run's v2 records as an earlier run of this one: its tool-use samples are not run again."""
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    (pytester.path / ".agentbench").mkdir()
    shutil.copy(V2_RUN / "report.jsonl", pytester.path / ".agentbench" / "report.jsonl")
    result = pytester.runpytest(
        "--model", "reference", "-k", "multi_step/000] or pure_reasoning/000]", "--agentbench-resume"
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["*resuming: 7 sample(s) already done*", "*/ 0 selected*"])
    kept = read_records(pytester)
    assert len(kept) == 7 and {r["schema"] for r in kept} == {RECORD_SCHEMA}
    assert {r["suite"] for r in kept} == {"humaneval", "humanevalfix", "scenarios", "tool_use"}
