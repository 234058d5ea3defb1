"""Tool use: the generator, the protocol, the metrics, and self-checks through pytest."""

import json
import subprocess
import sys

import pytest

from conftest import TOOL_USE_DATA as DATA
from conftest import TOOL_USE_TEST, call, planned_tool_use, read_records, read_report
from pytest_agentbench.agents.tools import BadArgs, Final, ToolCall, Unparsable, parse_reply, tool_use_tools
from pytest_agentbench.metrics import confusion, per_class
from pytest_agentbench.suites.tool_use import grade, tool_metrics


def rows():
    return [json.loads(line) for line in DATA.read_text().splitlines()]


def test_generator_is_reproducible_and_every_ground_truth_recomputes():
    check = subprocess.run(
        [sys.executable, str(DATA.with_name("make_tool_use.py")), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "250 tasks verified; tool_use.jsonl matches the generator" in check.stdout


def test_dataset_shape():
    data = rows()
    assert len(data) >= 240 and len({r["id"] for r in data}) == len(data)
    by_cat = {}
    for r in data:
        by_cat.setdefault(r["category"], []).append(r)
        assert {
            "id",
            "prompt",
            "category",
            "difficulty",
            "optimal_tool",
            "alternative_tools",
            "reasoning",
            "ground_truth_output",
        } <= set(r)
        assert r["answer_type"] in ("exact", "normalized", "choice", "sympy")
    assert {k: len(v) for k, v in by_cat.items()} == dict.fromkeys(
        ("pure_reasoning", "execution", "symbolic", "ambiguous", "multi_step"), 50
    )
    assert all(r["optimal_tool"] == "none" for r in by_cat["pure_reasoning"])
    assert all(r["alternative_tools"] for r in by_cat["ambiguous"])
    assert all(r["min_tool_calls"] == 2 for r in by_cat["multi_step"])


TOOLS = tool_use_tools()


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("THOUGHT: easy\nFINAL: 42", Final("42")),
        (
            'TOOL_CALL: {"tool": "code_executor", "args": {"code": "print(1)"}}',
            ToolCall("code_executor", {"code": "print(1)"}),
        ),
        (
            'THOUGHT: use sympy\nTOOL_CALL: {"tool": "symbolic_math", "args": {"operation": "diff", "expression": "x**2"}}\n',
            ToolCall("symbolic_math", {"operation": "diff", "expression": "x**2"}),
        ),
        ("The answer is 42.", Unparsable("no TOOL_CALL: or FINAL: line")),
        (
            'TOOL_CALL: {"tool": "code_executor", "args": {"code": "print(1)"',
            Unparsable("TOOL_CALL is not one JSON object (Expecting ',' delimiter)"),
        ),
        (
            'TOOL_CALL: {"tool": "browser", "args": {}}',
            Unparsable("unknown tool 'browser' (tools: code_executor, symbolic_math)"),
        ),
        (
            'TOOL_CALL: {"tool": "code_executor", "args": {"src": "x"}}',
            BadArgs("code_executor needs 'code' (str)", "code_executor"),
        ),
        (
            'TOOL_CALL: {"tool": "code_executor", "args": {"code": "x"}, "why": 1}',
            Unparsable('TOOL_CALL must be {"tool": name, "args": {...}}'),
        ),
        ("FINAL:", Unparsable("empty FINAL:")),
        ("THOUGHT: two lines\nFINAL: 47 failures\ntop client C-1", Final("47 failures\ntop client C-1")),  # all of it
    ],
)
def test_protocol_is_strict(reply, expected):
    assert parse_reply(reply, TOOLS) == expected


@pytest.mark.parametrize(
    "answer, want, kind, ok",
    [
        ("12,345", "12345", "exact", True),
        ("12345.0", "12345", "exact", True),
        ("12346", "12345", "exact", False),
        ("B) O(n)", "B", "choice", True),
        ("b", "B", "choice", True),
        ("A", "B", "choice", False),
        ("Both", "B", "choice", False),
        ("-3, 4.", "-3, 4", "normalized", True),
        ("4, -3", "-3, 4", "normalized", False),
        ("`a1b2c3d4e5f6`", "a1b2c3d4e5f6", "exact", True),
    ],
)
def test_grading(answer, want, kind, ok):
    assert grade(answer, want, kind) is ok


def test_metrics_against_hand_values():
    pairs = [
        ("no_call", "no_call"),
        ("no_call", "code_executor"),
        ("code_executor", "unparsable"),
        ("code_executor", "no_call"),
        ("symbolic_math", "symbolic_math"),
        ("symbolic_math", "code_executor"),
    ]
    classes = ("code_executor", "symbolic_math", "no_call")
    pc = per_class(pairs, classes)
    assert pc["code_executor"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2, "predicted": 2}
    assert pc["symbolic_math"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3, abs=1e-6),
        "support": 2,
        "predicted": 1,
    }
    assert pc["no_call"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    cm = confusion(pairs, classes, (*classes, "unparsable"))
    assert cm["matrix"] == [[0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]]
    empty = per_class([], classes)  # no support and no predictions: undefined, not 0.0
    assert empty["no_call"] == {"precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0}
    one_sided = per_class([("no_call", "code_executor")], classes)
    assert one_sided["no_call"] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0}
    assert one_sided["code_executor"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0, "predicted": 1}
    assert confusion([], classes, classes)["matrix"] == [[0] * 3] * 3
    assert tool_metrics([])["overall"]["tasks"] == 0


def test_markers_select_category_and_difficulty(pytester):
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    result = pytester.runpytest("--model", "reference", "-m", "tool_use and symbolic", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*50/250 tests collected (200 deselected)*"])
    result = pytester.runpytest(
        "--model", "reference", "-m", "tool_use and multi_step and complex", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(["*50/250 tests collected (200 deselected)*"])


def test_reference_scores_one_on_correctness_and_tool_selection(pytester):
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    result = pytester.runpytest_subprocess("--model", "reference", "-n", "2", "-q")
    assert result.ret == 0
    report = read_report(pytester)
    (res,) = report["results"]
    overall = res["metrics"]["overall"]
    assert (overall["tasks"], overall["correctness"], overall["tool_selection_accuracy"]) == (250, 1.0, 1.0)
    assert overall["unnecessary_tool_calls"] == 0
    assert set(res["metrics"]["by_category"]) == {"pure_reasoning", "execution", "symbolic", "ambiguous", "multi_step"}
    assert all(v["f1"] == 1.0 for v in res["metrics"]["per_tool"].values())
    assert report["run"]["datasets_sha256"]["tool_use"] == __import__("hashlib").sha256(DATA.read_bytes()).hexdigest()
    truth = {r["id"]: r for r in rows()}
    for rec in read_records(pytester):  # the reference's programs really compute the ground truth in the sandbox
        results = [s for s in rec["extra"]["steps"] if s["type"] == "tool_result"]
        assert all(r["ok"] for r in results), rec["task"]
        if results and truth[rec["task"]]["answer_type"] == "exact":
            assert results[-1]["text"] == truth[rec["task"]]["ground_truth_output"], rec["task"]


def test_scripted_mix_gives_exact_metrics(pytester):
    """A known mix of choices, per task."""
    planned_tool_use(
        pytester,
        "mixed",
        {
            "pure_reasoning/000": ["FINAL: {truth}"],
            "pure_reasoning/001": [call("code_executor", code="print(1)"), "FINAL: {truth}"],
            "execution/000": ["I think it is big."],
            "execution/001": ["FINAL: 7"],
            "symbolic/000": [call("symbolic_math", operation="simplify", expression="x"), "FINAL: {truth}"],
            "symbolic/001": [call("code_executor", code="print(2)"), "FINAL: wrong"],
            "ambiguous/000": [call("symbolic_math", operation="evaluate", expression="1+1"), "FINAL: {truth}"],
        },
    )
    ids = [
        "pure_reasoning/000",
        "pure_reasoning/001",
        "execution/000",
        "execution/001",
        "symbolic/000",
        "symbolic/001",
        "ambiguous/000",
    ]
    result = pytester.runpytest("--model", "mixed", "-k", " or ".join(f"tool_use/{i}" for i in ids))
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 4 and outcomes["failed"] == 3
    (res,) = read_report(pytester)["results"]
    m = res["metrics"]
    assert m["confusion_matrix"] == {
        "rows_truth": ["code_executor", "symbolic_math", "no_call"],
        "columns_predicted": ["code_executor", "symbolic_math", "no_call", "unparsable"],
        "matrix": [[0, 0, 1, 1], [1, 2, 0, 0], [1, 0, 1, 0]],
    }
    assert m["per_tool"]["code_executor"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2, "predicted": 2}
    assert m["per_tool"]["symbolic_math"] == {
        "precision": 1.0,
        "recall": 0.666667,
        "f1": 0.8,
        "support": 3,
        "predicted": 2,
    }
    assert m["per_tool"]["no_call"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    overall = m["overall"]
    assert overall["tool_selection_accuracy"] == round(3 / 7, 6)
    assert overall["correctness"] == round(4 / 7, 6)
    assert overall["unnecessary_tool_calls"] == 1
    assert overall["tool_calls_per_task"] == round(4 / 7, 4)
    assert res["outcomes"]["unparsable"] == 1
    assert m["by_category"]["pure_reasoning"]["tool_selection_accuracy"] == 0.5
    result.stdout.fnmatch_lines(["mixed/tool_use: correctness 0.571, tool selection 0.429*"])
