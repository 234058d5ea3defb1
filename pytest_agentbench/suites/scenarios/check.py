"""`python -m pytest_agentbench check-scenario FOLDER...`: can a scenario be won, and can it be lost?

For each variant of each scenario folder, in a fresh sandbox each: the gold trajectory must pass; an agent that
answers `FINAL: done` at once must fail; the gold trajectory plus `pip install` and plus the scenario's own
`forbidden_example` must fail with a safety violation. One line per run, exit status 1 when any expectation
does not hold. Use it while writing a scenario; the project's tests run the same expectations on every shipped one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...agents.base import AgentContext, AgentLimits
from ...backends.base import Backend, Completion
from ...backends.reference import ReferenceBackend
from ...errors import AgentbenchError, HarnessError
from ...models import ModelSpec
from ...sandbox import SandboxLimits, make_sandbox
from . import Scenarios, reply_for
from ...tasks import Params


class _Plan(Backend):
    """The gold trajectory with extra steps before its FINAL (or FINAL at once)."""

    def __init__(self, spec: ModelSpec, extra: list[str] | None):
        super().__init__(spec)
        self.extra = extra

    def generate(self, request) -> Completion:
        if self.extra is None:
            return Completion(text="FINAL: done")
        gold = list(request.sample.reference or ())
        plan = gold[:-1] + self.extra + gold[-1:]
        turn = sum(m["role"] == "assistant" for m in request.messages)
        return Completion(text=plan[min(turn, len(plan) - 1)])


def check(folder: Path, sandbox: str) -> bool:
    suite = Scenarios(folder.parent, shipped=False)
    tasks = [t for t in suite.load() if t.id.split("/")[0] == folder.name]
    if not tasks:
        print(f"{folder}: no scenario.yaml")
        return False
    ok = True
    for task in tasks:
        if task.problem:
            print(f"FAIL {task.id}: {task.problem}")
            ok = False
            continue
        spec = task.data["spec"]
        install = reply_for_tool("run_cmd", {"cmd": ["pip", "install", "requests"]})
        runs = [("gold", ReferenceBackend(ModelSpec(name="reference", backend="reference")), "passed", False),
                ("quit", _Plan(ModelSpec(name="quit", backend="plan"), None), "failed", False),
                ("gold+pip install", _Plan(ModelSpec(name="install", backend="plan"), [install]), "failed", True),
                ("gold+forbidden_example", _Plan(ModelSpec(name="forbidden", backend="plan"),
                                                 [reply_for(s) for s in spec.forbidden_example]), "failed", True)]
        for name, backend, want, violation in runs:
            if name == "gold+forbidden_example" and not spec.forbidden_example:
                print(f"FAIL {task.id} {name}: the scenario has no forbidden_example")
                ok = False
                continue
            box = make_sandbox(sandbox, SandboxLimits(timeout=30), site_packages=True)
            try:
                ctx = AgentContext(backend, box, Params(task_timeout=30), task, 0, model=backend.spec,
                                   limits=AgentLimits(max_steps=40, total_s=600))
                outcome = suite.run(ctx)
            except (AgentbenchError, HarnessError) as exc:
                print(f"FAIL {task.id} {name}: harness: {exc}")
                ok = False
                continue
            finally:
                box.close()
            good = outcome.status.value == want and (not violation or bool(outcome.extra["safety_violations"]))
            ok &= good
            print(f"{'ok  ' if good else 'FAIL'} {task.id} {name}: {outcome.status.value}"
                  + (f" ({outcome.reason})" if outcome.reason else "") + ("" if good else f"; expected {want}"
                                                                        + (" with a safety violation" if violation else "")))
    return ok


def reply_for_tool(tool: str, args: dict) -> str:
    return "TOOL_CALL: " + json.dumps({"tool": tool, "args": args})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_agentbench check-scenario",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="scenario folders (each with a scenario.yaml)")
    parser.add_argument("--sandbox", default="process", choices=("process", "docker", "unconfined"))
    args = parser.parse_args(argv)
    results = [check(folder.resolve(), args.sandbox) for folder in args.folders]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
