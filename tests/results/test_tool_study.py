"""The tool-use study's axes: prompt formats, recovery and multi-step metrics, seeds, memory, the comparison table."""

import json
import subprocess
import sys

import pytest

from conftest import TOOL_USE_DATA as DATA
from conftest import TOOL_USE_TEST, call, planned_tool_use, read_records, read_report
from pytest_agentbench.agents.tools import BadArgs, describe, guide, parse_reply, tool_use_tools
from pytest_agentbench.prompts import FORMATS, PromptFormat, get_format, parse_formats, register_format
from pytest_agentbench.results.table import study_table
from pytest_agentbench.suites.tool_use import ratio, tool_metrics

TOOLS = tool_use_tools()


# -- prompt formats ------------------------------------------------------------------------------------------------
def test_default_format_is_the_suites_original_prompt():
    original = """You solve problems, either directly or with one tool call at a time. Tools:
{tools}
Reply in this format, nothing else:
THOUGHT: <your reasoning, optional>
then exactly one of
TOOL_CALL: {{"tool": "<tool name>", "args": {{...}}}}
FINAL: <the answer only>
After a TOOL_CALL you get an OBSERVATION with the tool's output. Answer directly when no tool is needed."""
    assert get_format("default").render(describe(TOOLS), guide(TOOLS)) == original.format(tools=describe(TOOLS))


def test_formats_say_what_they_promise():
    render = {name: get_format(name).render(describe(TOOLS), guide(TOOLS)) for name in ("direct", "cot", "tools")}
    assert "step by step" in render["cot"] and "step by step" not in render["direct"]
    assert "THOUGHT" not in render["direct"] and 'TOOL_CALL: {"tool": "<tool name>"' in render["direct"]
    for tool in TOOLS.values():  # the tools format: when each tool helps and when it does not
        assert f"- {tool.name}: use it when {tool.use_when}; not when {tool.avoid_when}." in render["tools"]
        assert tool.use_when not in render["cot"]
    assert "no tool: answer directly" in render["tools"]
    assert all(describe(TOOLS) in text for text in render.values())


def test_the_native_format_has_no_text_protocol():
    native = get_format("native")
    text = native.render(describe(TOOLS), guide(TOOLS))
    assert native.native and "TOOL_CALL" not in text and "FINAL" not in text and describe(TOOLS) not in text
    assert native.sha256() != PromptFormat("x", native.system).sha256()  # native-ness is part of its identity
    with pytest.raises(ValueError, match="unknown template field {protocol}"):
        register_format(PromptFormat("native2", "{protocol}", native=True))
    from pytest_agentbench.prompts import native_requested

    assert native_requested(None) == (True, False) and native_requested("native") == (False, True)
    assert native_requested("cot,native") == (True, True)


def test_format_names_and_templates_are_checked():
    assert parse_formats(None) is None and parse_formats("cot, direct,cot") == ("cot", "direct")
    with pytest.raises(ValueError, match="unknown format 'socratic' \\(known: default, direct, cot, tools"):
        parse_formats("direct,socratic")
    with pytest.raises(ValueError, match="unknown template field {examples}"):
        register_format(PromptFormat("fewshot", "{tools}\n{examples}"))
    with pytest.raises(ValueError, match="letters, digits and _ only"):
        register_format(PromptFormat("a-b", "{tools}"))
    assert "fewshot" not in FORMATS


def test_format_items_ids_markers_and_k(pytester):
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    plain = pytester.runpytest("--model", "reference", "--collect-only", "-q")
    plain.stdout.fnmatch_lines(["test_tu.py::test_tool_use[tool_use/symbolic/000]", "*250 tests collected*"])
    many = pytester.runpytest("--model", "reference", "--prompt-format", "direct,cot,tools", "--collect-only", "-q")
    many.stdout.fnmatch_lines(
        [
            "test_tu.py::test_tool_use[tool_use/pure_reasoning/000-direct]",
            "test_tu.py::test_tool_use[tool_use/pure_reasoning/000-cot]",
            "test_tu.py::test_tool_use[tool_use/pure_reasoning/000-tools]",
            "*750 tests collected*",
        ]
    )
    marked = pytester.runpytest(
        "--model", "reference", "--prompt-format", "direct,cot,tools", "-m", "prompt_cot", "--collect-only", "-q"
    )
    marked.stdout.fnmatch_lines(["*250/750 tests collected (500 deselected)*"])
    assert "-direct]" not in marked.stdout.str() and "-tools]" not in marked.stdout.str()
    both = pytester.runpytest(
        "--model",
        "reference",
        "--prompt-format",
        "direct,cot",
        "-m",
        "tool_use and symbolic and prompt_direct",
        "--collect-only",
        "-q",
    )
    both.stdout.fnmatch_lines(["*50/500 tests collected (450 deselected)*"])
    one = pytester.runpytest(
        "--model",
        "reference",
        "--prompt-format",
        "direct,cot",
        "-k",
        "tool_use/symbolic/001-cot",
        "--collect-only",
        "-q",
    )
    one.stdout.fnmatch_lines(["test_tu.py::test_tool_use[tool_use/symbolic/001-cot]", "*1/500 tests collected*"])
    bad = pytester.runpytest("--model", "reference", "--prompt-format", "direct,socratic", "--collect-only")
    assert bad.ret == 4
    bad.stderr.fnmatch_lines(
        [
            "ERROR: agentbench: --prompt-format unknown format 'socratic' (known: default, direct, "
            "cot, tools, native) (got 'direct,socratic')"
        ]
    )
    assert "Traceback" not in bad.stderr.str() + bad.stdout.str()


def test_reference_scores_one_in_every_format(pytester):
    """The self-check holds whatever the system prompt (two tasks of each category, in each of four formats)."""
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    result = pytester.runpytest_subprocess(
        "--model",
        "reference",
        "--prompt-format",
        "default,direct,cot,tools,native",
        "-k",
        "/000- or /001-",
        "-n",
        "2",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    (res,) = read_report(pytester)["results"]
    by_format = res["metrics"]["by_prompt_format"]
    assert sorted(by_format) == ["cot", "default", "direct", "native", "tools"]
    for name, block in by_format.items():
        assert (block["tasks"], block["correctness"], block["tool_selection_accuracy"]) == (10, 1.0, 1.0), name
        assert all(v["f1"] == 1.0 for v in block["per_tool"].values()), name
    assert set(res["suite_settings"]["prompt_templates"]) >= {"default", "direct", "cot", "tools", "native"}
    assert {r["extra"]["prompt_format"] for r in read_records(pytester)} == {
        "default",
        "direct",
        "cot",
        "tools",
        "native",
    }


PROMPT_SPY = '''
import json
from pytest_agentbench.backends import Backend, Completion

class Spy(Backend):
    """Answers at once and writes the system prompt it was shown into the reply (the record keeps it)."""
    def generate(self, request):
        return Completion(text="FINAL: " + json.dumps(request.messages[0]["content"]), completion_tokens=1)

def pytest_agentbench_make_backend(spec):
    return Spy(spec) if spec.name == "spy" else None
'''


def test_each_item_gets_its_formats_prompt(pytester):
    pytester.makeconftest(PROMPT_SPY)
    pytester.makefile(".yaml", models="models:\n  spy: {backend: spy}\n")
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    pytester.runpytest("--model", "spy", "--prompt-format", "direct,cot,tools", "-k", "tool_use/execution/000-")
    shown = {r["extra"]["prompt_format"]: json.loads(r["extra"]["answer"]) for r in read_records(pytester)}
    assert shown == {
        name: get_format(name).render(describe(TOOLS), guide(TOOLS)) for name in ("direct", "cot", "tools")
    }


# -- recovery, multi-step, unnecessary calls -------------------------------------------------------------------------
def rec(
    task,
    status="failed",
    *,
    category="execution",
    correct=None,
    failed=(),
    calls=0,
    acceptable=("code_executor",),
    fmt="default",
):
    return {
        "task": task,
        "status": status,
        "model_s": 0.1,
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "extra": {
            "category": category,
            "difficulty": "easy",
            "prompt_format": fmt,
            "acceptable_tools": list(acceptable),
            "optimal_tool": acceptable[0],
            "first_choice": acceptable[0],
            "selection_ok": True,
            "tool_calls": calls,
            "tool_s": 0.0,
            "failed_tool_calls": list(failed),
            "correct": status == "passed" if correct is None else correct,
        },
    }


def test_recovery_multi_step_and_unnecessary_calls_by_hand():
    records = [
        rec("a", "passed", failed=["error"], calls=2),  # raised, then right: recovered
        rec("b", "passed", failed=["timeout", "bad_args"], calls=3),  # two failures, right: recovered (once)
        rec("c", "failed", failed=["bad_args"], calls=1),  # never recovered
        rec("d", "passed", calls=1),  # nothing failed: not in the denominator
        rec("e", "failed", category="multi_step", correct=True, calls=1),  # right answer, one call: not a success
        rec("f", "passed", category="multi_step", calls=2),
        rec("g", "failed", category="multi_step", failed=["exit"], correct=True, calls=1),  # recovered, not a success
        rec("h", "passed", category="pure_reasoning", acceptable=("no_call",), calls=0),
        rec("i", "passed", category="pure_reasoning", acceptable=("no_call",), calls=3),
    ]
    overall = tool_metrics(records)["overall"]
    assert overall["error_recovery"] == {"rate": 0.75, "numerator": 3, "denominator": 4}
    assert overall["multi_step_success"] == {"rate": round(1 / 3, 6), "numerator": 1, "denominator": 3}
    assert overall["tool_calls_on_no_tool_tasks"] == {"mean": 1.5, "calls": 3, "tasks": 2}
    assert overall["unnecessary_tool_calls"] == 3
    assert overall["failed_tool_calls"] == {"bad_args": 2, "error": 1, "exit": 1, "timeout": 1}


def test_empty_denominators_are_null_not_zero():
    overall = tool_metrics([rec("d", "passed", calls=1)])["overall"]
    assert overall["error_recovery"] == {"rate": None, "numerator": 0, "denominator": 0}
    assert overall["multi_step_success"] == {"rate": None, "numerator": 0, "denominator": 0}
    assert overall["tool_calls_on_no_tool_tasks"] == {"mean": None, "calls": 0, "tasks": 0}
    assert ratio(0, 3) == {"rate": 0.0, "numerator": 0, "denominator": 3}


class Replies:
    """A backend that says the given replies in turn."""

    def __init__(self, *replies):
        self.replies = list(replies)

    def generate(self, request):
        from pytest_agentbench.backends import Completion

        return Completion(text=self.replies.pop(0), completion_tokens=1)


@pytest.mark.parametrize("mode", ["tool_error", "protocol"])
def test_bad_arguments_are_a_failed_call_in_tool_use_and_a_protocol_error_elsewhere(mode):
    from pytest_agentbench.agents.base import AgentContext, AgentLimits
    from pytest_agentbench.agents.toolloop import ToolLoopAgent
    from pytest_agentbench.task import Params, Task

    bad = 'TOOL_CALL: {"tool": "code_executor", "args": {"src": "x"}}'
    parsed = parse_reply(bad, TOOLS)
    assert parsed == BadArgs("code_executor needs 'code' (str)", "code_executor") and parsed.args == {"src": "x"}
    ctx = AgentContext(
        Replies(bad, "FINAL: 4"),
        None,
        Params(),
        Task(id="t", prompt="2+2?"),
        0,
        tools=TOOLS,
        limits=AgentLimits(max_steps=3),
    )
    trace = ToolLoopAgent(bad_args=mode).run(ctx, [{"role": "user", "content": "2+2?"}], ctx.new_trace("2+2?"))
    assert trace.final_answer == "4"
    if mode == "tool_error":  # the tool-use suite: the model chose the tool, the call failed, the run went on
        assert [s.type for s in trace.steps] == ["tool_call", "tool_result", "final"]
        assert trace.steps[1].error == "bad_args" and trace.steps[1].ok is False and trace.protocol_errors == 0
        assert trace.first_choice == "code_executor"
    else:  # the agent scenarios: a protocol error the model is shown, counted
        assert [s.type for s in trace.steps] == ["error", "final"] and trace.protocol_errors == 1


def test_formats_given_to_the_suite_hold_unless_the_command_line_names_others():
    from pytest_agentbench.suites.tool_use import ToolUse

    suite = ToolUse(DATA, formats=("cot",))
    suite.configure({"agentbench_prompt_format": None}.get)
    assert suite.formats == ("cot",) and {t.id.rsplit("-", 1)[1] for t in suite.load()} == {"cot"}
    suite.configure({"agentbench_prompt_format": "direct,tools"}.get)
    assert suite.formats == ("direct", "tools")
    with pytest.raises(ValueError, match="formats=\\('nope',\\): unknown format 'nope'"):
        ToolUse(DATA, formats=("nope",)).configure({"agentbench_prompt_format": None}.get)


def test_recovery_through_the_whole_pipeline(pytester):
    """Per task: a tool call that fails in a known way, then a right or wrong answer."""
    planned_tool_use(
        pytester,
        "recovering",
        {
            "execution/000": [call("code_executor", src="print(1)"), "FINAL: {truth}"],  # bad arguments
            "execution/001": [call("code_executor", code="1/0"), "FINAL: {truth}"],  # raises
            "execution/002": [call("code_executor", code="import time; time.sleep(30)"), "FINAL: {truth}"],  # timeout
            "execution/003": [call("code_executor", code="raise SystemExit(3)"), "FINAL: wrong"],  # no recovery
            "execution/004": ["FINAL: {truth}"],  # nothing failed
            # the right answer after a failed call (recovered), but only one call ran: not a multi-step success
            "multi_step/000": [
                call("code_executor", codes="x"),
                call("code_executor", code="print(1)"),
                "FINAL: {truth}",
            ],
            # two calls that compute nothing, then the answer from elsewhere: no multi-step credit
            "multi_step/001": [call("code_executor", code="1/0"), call("code_executor", code="1/0"), "FINAL: {truth}"],
        },
    )
    ids = [
        "execution/000",
        "execution/001",
        "execution/002",
        "execution/003",
        "execution/004",
        "multi_step/000",
        "multi_step/001",
    ]
    result = pytester.runpytest(
        "--model",
        "recovering",
        "--task-timeout",
        "1",
        "-p",
        "no:cacheprovider",
        "-k",
        " or ".join(f"tool_use/{i}" for i in ids),
    )
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"]) == (4, 3)
    by_task = {r["task"].split("/", 1)[1]: r["extra"] for r in read_records(pytester)}
    assert by_task["execution/000"]["failed_tool_calls"] == ["bad_args"]
    assert by_task["execution/000"]["first_choice"] == "code_executor"  # it chose the tool, with wrong arguments
    assert by_task["execution/001"]["failed_tool_calls"] == ["error"]
    assert by_task["execution/002"]["failed_tool_calls"] == ["timeout"]
    assert by_task["execution/003"]["failed_tool_calls"] == ["error"]
    assert by_task["execution/004"]["failed_tool_calls"] == []
    overall = read_report(pytester)["results"][0]["metrics"]["overall"]
    # recovered: execution/000, 001, 002 and multi_step/000, 001 (the right answer after failed calls); not 003
    assert overall["error_recovery"] == {"rate": round(5 / 6, 6), "numerator": 5, "denominator": 6}
    assert overall["multi_step_success"] == {"rate": 0.0, "numerator": 0, "denominator": 2}
    result.stdout.fnmatch_lines(
        [
            "*failed: right answer, but 1 tool call(s) succeeded; the task needs 2*",
            "*failed: right answer, but 0 tool call(s) succeeded; the task needs 2*",
        ]
    )


# -- the comparison table ---------------------------------------------------------------------------------------
MIXED = '''
import json
from pytest_agentbench.backends import Backend, Completion

TRUTH = {r["id"]: r for r in map(json.loads, open(DATA))}
call = lambda tool, **args: "TOOL_CALL: " + json.dumps({"tool": tool, "args": args})

class Mixed(Backend):
    """Right with the right tool under `cot`; answers directly (right only without a tool) otherwise; model `b`
    calls code_executor with bad arguments first everywhere."""
    def generate(self, request):
        turn = sum(m["role"] == "assistant" for m in request.messages)
        base, fmt = request.sample.task_id.rsplit("-", 1)
        row = TRUTH[base]
        truth, tool = row["ground_truth_output"], row["optimal_tool"]
        plan = ["FINAL: " + truth if tool == "none" else "FINAL: 0"]
        if fmt == "cot" and tool != "none":
            plan = [r for r in row["reference"]]
        if self.spec.name == "b":
            plan = [call("code_executor", src="1")] + plan
        return Completion(text=plan[min(turn, len(plan) - 1)], prompt_tokens=7, completion_tokens=3, seconds=0.01)

def pytest_agentbench_make_backend(spec):
    return Mixed(spec) if spec.name in ("a", "b") else None
'''


def same(value, expected) -> bool:
    """A table cell equals the report's value; pandas shows an undefined (null) rate as None or NaN."""
    if expected is None:
        return value is None or value != value
    return value == expected


def test_table_equals_the_reports_and_combines_runs(pytester):
    pytester.makeconftest(MIXED.replace("DATA", repr(str(DATA))))
    pytester.makefile(".yaml", models="models:\n  a: {backend: a}\n  b: {backend: b}\n")
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    pick = "-k", "/000- or /001- or /002-"
    for model in ("a", "b"):
        pytester.runpytest(
            "--model",
            model,
            "--prompt-format",
            "direct,cot",
            *pick,
            "--agentbench-json",
            f"{model}.json",
            "-p",
            "no:cacheprovider",
        )
    frame = study_table([pytester.path / "a.jsonl", pytester.path / "b.jsonl"])
    assert list(zip(frame["model"], frame["prompt_format"])) == [
        ("a", "cot"),
        ("a", "direct"),
        ("b", "cot"),
        ("b", "direct"),
    ]
    for model in ("a", "b"):
        (res,) = read_report(pytester, f"{model}.json")["results"]
        for fmt, block in res["metrics"]["by_prompt_format"].items():
            row = frame[(frame["model"] == model) & (frame["prompt_format"] == fmt)].iloc[0]
            assert row["samples"] == block["tasks"] == 15
            assert row["correctness"] == block["correctness"]
            assert row["tool_selection_accuracy"] == block["tool_selection_accuracy"]
            assert row["f1_code_executor"] == block["per_tool"]["code_executor"]["f1"]
            assert row["support_no_call"] == block["per_tool"]["no_call"]["support"]
            assert row["unnecessary_calls"] == block["unnecessary_tool_calls"]
            assert same(row["recovery_rate"], block["error_recovery"]["rate"])
            assert row["runs_with_failed_calls"] == block["error_recovery"]["denominator"]
            assert row["multi_step_runs"] == block["multi_step_success"]["denominator"] == 3
            assert row["prompt_tokens_mean"] == block["tokens_per_task"]["prompt"]
            err = block["correctness_error"]
            assert (row["correctness_lo"], row["correctness_se"], row["correctness_hi"]) == (
                err["lo"],
                err["se"],
                err["hi"],
            )
            assert row["correctness_lo"] <= row["correctness"] <= row["correctness_hi"]
            assert row["protocol_errors"] == block["protocol_errors"]["numerator"]
    cot_a = frame[(frame["model"] == "a") & (frame["prompt_format"] == "cot")].iloc[0]
    assert (cot_a["correctness"], cot_a["tool_selection_accuracy"]) == (1.0, 1.0)
    direct_a = frame[(frame["model"] == "a") & (frame["prompt_format"] == "direct")].iloc[0]
    assert direct_a["correctness"] == pytest.approx(3 / 15, abs=1e-6)  # only the 3 no-tool tasks
    b = frame[frame["model"] == "b"]
    assert list(b["runs_with_failed_calls"]) == [15, 15] and list(b["unnecessary_calls"]) == [3, 3]
    assert b[b["prompt_format"] == "cot"].iloc[0]["recovery_rate"] == 1.0  # every run failed once, then got it right
    hard = study_table([pytester.path / "a.jsonl"], by_difficulty=True)
    assert set(hard["difficulty"]) <= {"easy", "intermediate", "complex"} and hard["samples"].sum() == 30

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_agentbench",
            "table",
            "a.jsonl",
            "b.jsonl",
            "--csv",
            "t.csv",
            "--markdown",
            "t.md",
            "--png",
            "t.png",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("| model") and "| a  " in out.stdout
    csv = (pytester.path / "t.csv").read_text().splitlines()
    assert csv[0].startswith("model,quantization,prompt_format,samples,correctness") and len(csv) == 5
    assert (pytester.path / "t.md").read_text().splitlines()[1] == out.stdout.splitlines()[0]
    assert (pytester.path / "t.png").read_bytes().startswith(b"\x89PNG")
    again = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "table", "a.jsonl", "--csv", "t.csv"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0  # its own file: replaced
    (pytester.path / "notes.csv").write_text("mine\n")
    refused = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "table", "a.jsonl", "--csv", "notes.csv"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and (pytester.path / "notes.csv").read_text() == "mine\n"
    assert refused.stderr.count("\n") == 1 and "refusing to overwrite" in refused.stderr
    twice = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "table", "a.jsonl", "a.jsonl"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert twice.returncode == 2 and "in both" in twice.stderr and twice.stderr.count("\n") == 1
    missing = subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", "table", "nope.jsonl"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stderr == "table: nope.jsonl: no such file\n"


# -- seeds, memory, throughput with the embedded model -------------------------------------------------------------
HE_TWO = """
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval(None))
def test_humaneval(outcome):
    outcome.check()
"""


@pytest.mark.slow
@pytest.mark.parametrize("serve", ["llamacpp", "off"])
def test_seeded_sampling_reproduces_and_memory_is_measured(pytester, serve):
    """The embedded model at temperature 0.8, twice: the same completions; seeds recorded; memory and throughput
    measured for the process that ran the model (the llama.cpp server, or this pytest process in-process)."""
    pytester.makepyfile(test_he=HE_TWO)
    args = [
        "--model",
        "smollm2-135m",
        "--serve",
        serve,
        "--temperature",
        "0.8",
        "--max-new-tokens",
        "24",
        "--samples",
        "2",
        "-k",
        "HumanEval/0 or HumanEval/2",
        "-p",
        "no:cacheprovider",
    ]
    for name in ("one", "two"):
        pytester.runpytest_subprocess(*args, "--agentbench-json", f"{name}.json", timeout=600)
    one, two = (
        sorted(read_records(pytester, f"{n}.jsonl"), key=lambda r: (r["task"], r["sample"])) for n in ("one", "two")
    )
    assert len(one) == 4 and all(r["status"] != "infra" for r in one), [r.get("reason") for r in one]
    assert [r["completion"] for r in one] == [r["completion"] for r in two]
    assert len({r["completion"] for r in one}) > 1  # sampled: the seeds differ per sample
    assert [r["seeds"]["python"] for r in one] == [1234, 1235, 1234, 1235]
    report = read_report(pytester, "one.json")
    res = report["resources"]["smollm2-135m"]
    # one process ran the model: the server, or this pytest (named by its xdist worker id, which a pytest run inside
    # an xdist worker inherits)
    (process,) = res["by_process"]
    assert process == "llamacpp server" if serve == "llamacpp" else process.startswith("in-process (")
    assert res["peak_rss_mb"] > 50 and res["tokens_per_s"] > 0 and res["completion_tokens"] > 0
    assert report["results"][0]["resources"]["peak_rss_mb"] == res["peak_rss_mb"]
    quant = {r["quantization"] for r in one}
    assert quant == ({"gguf Q4_1"} if serve == "llamacpp" else {"float32 (dequantized gguf Q4_1)"})
