"""One registry (registry.py) for the five kinds of part: a backend, a sandbox, a suite, a tool and a serving engine
added from a project's own file, without touching the package (one class and one registration each), and each one
used by a real run; the same through a third-party package's entry points."""

import sys
import textwrap
from pathlib import Path

import pytest

from conftest import read_records, read_report
from pytest_agentbench import registry, serving
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import load_models_file, spec_of

# One file, five extensions: each is one class and one registration.
EXTENSION = '''
import sys
from typing import Literal, Optional

from pydantic import BaseModel

from pytest_agentbench import Outcome, Status, Suite, Task, registry
from pytest_agentbench.agents.toolloop import ToolLoopAgent
from pytest_agentbench.agents.tools import Args, Tool, ToolResult, tools
from pytest_agentbench.backends import Backend, Completion
from pytest_agentbench.models import ModelSpec
from pytest_agentbench.registry import Opt
from pytest_agentbench.sandbox.process import UnconfinedSandbox
from pytest_agentbench.serving import Engine


class ShoutArgs(Args):
    text: str


@registry.tools.register
class Shout(Tool):
    """A tool: the text, upper-cased."""

    name = "shout"
    description = "Upper-case a text."
    Args = ShoutArgs

    def call(self, args, env):
        return ToolResult(True, args.text.upper())


class ParrotSpec(ModelSpec):
    backend: Literal["parrot"] = "parrot"
    shout: bool  # required: the backend's own validated setting (false: it answers without the tool)


@registry.backends.register("parrot")
class Parrot(Backend):
    """A backend: asks the shout tool to shout the word it is given, then answers with what the tool said."""

    spec_class = ParrotSpec

    def generate(self, request):
        word = request.messages[0]["content"].split()[-1].rstrip(".")
        seen = [m["content"] for m in request.messages if m["content"].startswith("OBSERVATION")]
        if self.spec.shout and not seen:
            return Completion(text='TOOL_CALL: {"tool": "shout", "args": {"text": "%s"}}' % word)
        return Completion(text="FINAL: " + (seen[-1].split(":", 1)[1].strip() if seen else word))


@registry.sandboxes.register("counting")
class Counting(UnconfinedSandbox):
    """A sandbox: the unconfined one that counts the programs it runs (`warning` comes with it)."""

    kind = "counting"
    runs = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = "counting"

    def _run(self, **kwargs):
        type(self).runs += 1
        return super()._run(**kwargs)


@registry.suites.register
class Shouting(Suite):
    """A suite with an option of its own: the tool-loop agent with the shout tool; graded in the sandbox."""

    name = "shouting"
    markers = ("loud",)
    options = (Opt("--shout-words", "shout_words", "words to shout", "hello,world", field=Optional[str]),)

    def __init__(self, words="hello,world"):
        self.words = words.split(",")

    @classmethod
    def from_options(cls, option):
        return cls(option("shout_words"))

    def load(self):
        return [Task(id=f"shouting/{w}", prompt=f"Shout {w}.", data={"word": w}) for w in self.words]

    def agent(self, ctx):
        ctx.tools = tools("shout")
        return ToolLoopAgent(), [{"role": "user", "content": ctx.task.prompt}], "default"

    def grade(self, ctx, trace):
        program = f"import sys; sys.exit(0 if {trace.final_answer!r} == {ctx.task.data['word'].upper()!r} else 1)"
        run = ctx.sandbox.run_python(program, timeout=30)
        ok = run.verdict[0] == "passed"
        return Outcome(Status.PASSED if ok else Status.FAILED, reason="" if ok else f"got {trace.final_answer!r}",
                       completion=str(trace.final_answer), extra={"sandbox_runs": Counting.runs})

    @classmethod
    def terminal_lines(cls, metrics):
        return [f"shouted {metrics['shouted']} word(s)"]

    @classmethod
    def summarize(cls, records):
        return {"shouted": sum(r["status"] == "passed" for r in records)}


@registry.engines.register("http-echo")
class HttpEcho(Engine):
    """An engine: Python's own HTTP server (answers GET / when it is up)."""

    health_path = "/"

    def refuse(self, spec):
        return None if spec.hf_id else "serves a hub id: set hf_id"

    def command(self, spec, port, threads):
        return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
'''

MODELS = """
models:
  parrot: {backend: parrot, shout: true}
  mute: {backend: parrot, shout: false}
"""

TEST = """
import pytest

@pytest.mark.agentbench("shouting")
def test_shouting(outcome):
    outcome.check()
"""


@pytest.fixture
def project(pytester):
    pytester.makepyfile(myext=EXTENSION, test_shouting=TEST)
    pytester.makeconftest("pytest_plugins = ['myext']\n")
    pytester.makefile(".yaml", models=MODELS)
    yield pytester
    for kind, name in [("tools", "shout"), ("backends", "parrot"), ("sandboxes", "counting"), ("suites", "shouting")]:
        registry.KINDS[kind].remove(name)
    registry.engines.remove("http-echo")
    sys.modules.pop("myext", None)


def test_a_backend_sandbox_suite_and_tool_added_from_a_project_file_run(project):
    result = project.runpytest("--model", "parrot", "--sandbox", "counting", "--shout-words", "hey,you", "-v")
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(
        [
            "*--sandbox counting: model-written code runs with your privileges*",  # the sandbox's own warning
            "*test_shouting?shouting/hey? PASSED*",  # the suite's option shaped its items
            "*test_shouting?shouting/you? PASSED*",
            "parrot/shouting: shouted 2 word(s)",  # the suite's own summary line
        ]
    )
    records = read_records(project)
    assert {r["task"] for r in records} == {"shouting/hey", "shouting/you"}
    assert all(r["status"] == "passed" for r in records)
    # the backend asked the tool, the tool-loop agent ran it, the answer came back through the model
    assert {r["completion"] for r in records} == {"HEY", "YOU"}
    # graded in the registered sandbox: its first run is the worker's probe, then one program per sample
    assert sorted(r["extra"]["sandbox_runs"] for r in records) == [2, 3]
    (res,) = read_report(project)["results"]
    assert (res["model"], res["suite"], res["pass@1"]) == ("parrot", "shouting", 1.0)
    # the backend's setting is read: without the tool the words are not shouted, and the grader says so
    mute = project.runpytest("--model", "mute", "--sandbox", "counting", "--agentbench-json", "mute.json")
    assert mute.ret == 1
    mute.stdout.fnmatch_lines(["*shouting/hello s0: failed: got 'hello'*"])
    # the suite's markers select its items
    marked = project.runpytest("--model", "parrot", "--sandbox", "counting", "-m", "loud", "--collect-only", "-q")
    marked.stdout.fnmatch_lines(["*2 tests collected*"])


def test_the_registered_backend_validates_its_own_settings(project):
    project.makefile(".yaml", models="models:\n  parrot: {backend: parrot, shout: true, volume: 11}\n")
    result = project.runpytest("--model", "parrot", "--collect-only")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*ERROR: agentbench: *model 'parrot': unknown field 'volume' for backend parrot*"])


def test_an_unknown_name_is_one_line_listing_the_known_ones(project):
    result = project.runpytest("--model", "parrot", "--sandbox", "nope", "--collect-only")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: agentbench: --sandbox must be one of counting, docker, process, unconfined (got 'nope')"]
    )
    with pytest.raises(AgentbenchError, match=r"^unknown suite 'nope' \(known: bfcl, .*humaneval, .*tool_use\)$"):
        registry.suites.get("nope")


def test_a_registered_engine_is_what_serving_starts(project, tmp_path):
    project.syspathinsert()
    __import__("myext")
    spec = load_models_file(_models(tmp_path, "  m: {hf_id: org/tiny, serve: http-echo}\n"))["m"]
    plan = serving.plan(spec, "http-echo", port=8321)
    assert plan.argv == [sys.executable, "-m", "http.server", "8321", "--bind", "127.0.0.1"]
    assert (plan.health_path, plan.served_name, plan.base_url) == ("/", "m", "http://127.0.0.1:8321/v1")
    assert serving.identity(spec, "http-echo") == {
        "kind": "served",
        "engine": "http-echo",
        "model": "m",
        "weights": "org/tiny",
        "revision": None,
        "dtype": "auto",
    }
    # the server's lifecycle runs it for real: started, healthy, stopped
    server = serving.ModelServer(spec, "http-echo", tmp_path / "logs", ready_timeout=60)
    served = server.start()
    try:
        assert served.engine == "http-echo" and served.argv[:3] == [sys.executable, "-m", "http.server"]
    finally:
        server.stop()
    assert server.proc is None
    # the engine's own refusal is said when models.yaml is read; --serve knows its name
    with pytest.raises(AgentbenchError, match="serve: http-echo serves a hub id: set hf_id"):
        load_models_file(_models(tmp_path, "  m: {path: /tmp, serve: http-echo}\n"))
    assert "http-echo" in registry.engines.names()


def _models(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n" + body)
    return path


# -- entry points: a third-party package ------------------------------------------------------------------------
PACKAGE = """
from pytest_agentbench import Outcome, Status, Task
from pytest_agentbench.backends import Backend, Completion, Request
from pytest_agentbench.sandbox.process import UnconfinedSandbox
from pytest_agentbench.serving import Engine
from pytest_agentbench.suites.base import Suite
from pytest_agentbench.agents.tools import Tool


class ThirdBackend(Backend):
    def generate(self, request):
        return Completion(text="third")


class ThirdSandbox(UnconfinedSandbox):
    kind = "third"


class ThirdSuite(Suite):
    name = "third"

    def load(self):
        return [Task(id="third/1", prompt="say third")]

    def evaluate(self, task, backend, sandbox, params, sample):
        said = backend.generate(Request(messages=[{"role": "user", "content": task.prompt}])).text
        ran = sandbox.run_python(f"print({said!r})", timeout=30).stdout.strip()
        return Outcome(Status.PASSED if ran == "third" else Status.FAILED, completion=ran)


class ThirdTool(Tool):
    name = "third"
    description = "a third party's tool"


class ThirdEngine(Engine):
    def command(self, spec, port, threads):
        return ["third-server", str(port)]
"""


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """An installed distribution with an entry point in each of the five groups (its .dist-info on sys.path)."""
    (tmp_path / "third_ext.py").write_text(PACKAGE)
    info = tmp_path / "third_ext-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: third-ext\nVersion: 1.0\n")
    groups = {"backends": "ThirdBackend", "sandboxes": "ThirdSandbox", "suites": "ThirdSuite"}
    groups.update({"tools": "ThirdTool", "engines": "ThirdEngine"})
    (info / "entry_points.txt").write_text(
        "".join(f"[pytest_agentbench.{kind}]\nthird = third_ext:{cls}\n\n" for kind, cls in groups.items())
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield groups
    for kind in groups:
        registry.KINDS[kind].remove("third")
    sys.modules.pop("third_ext", None)


def test_entry_points_add_each_kind(third_party):
    for kind, cls in third_party.items():
        assert "third" in registry.KINDS[kind].names()
        assert registry.KINDS[kind].get("third").__name__ == cls
    from pytest_agentbench.backends import make_backend

    backend = make_backend(spec_of({"name": "t", "backend": "third"}))
    assert backend.generate(None).text == "third"
    assert serving.plan(spec_of({"name": "t", "hf_id": "a/b"}), "third", port=9).argv == ["third-server", "9"]


def test_entry_point_suite_and_backend_in_a_run(third_party, pytester):
    """A run names the third party's backend in models.yaml and its suite in a marker: both found by entry point."""
    pytester.makefile(".yaml", models="models:\n  t: {backend: third}\n")
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.agentbench("third")
            def test_third(outcome):
                outcome.check()
            """
        )
    )
    result = pytester.runpytest("--model", "t", "--sandbox", "third", "-v")
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*test_third?third/1? PASSED*"])
    [record] = read_records(pytester)
    assert (record["model"], record["suite"], record["completion"]) == ("t", "third", "third")


def test_a_backend_that_is_not_installed_falls_back_through_its_class():
    """vLLM's fallback is carried by its class (fallback, unavailable), not written where runs are configured."""
    vllm = registry.backends.get("vllm")
    assert vllm.fallback == "transformers" and registry.backends.get("transformers").fallback is None
    from pytest_agentbench.session.config import RunConfig

    spec = spec_of({"name": "v", "backend": "vllm", "hf_id": "a/b"})
    why = vllm.unavailable()
    assert RunConfig.fallback(spec) == (("transformers", why) if why else None)
