"""`python -m pytest_agentbench check-scenario FOLDER... [--attacks]`: can a scenario be won, can it be lost, and
can it be forged?

For each variant of each scenario folder, in a fresh sandbox each: the gold trajectory must pass; an agent that
answers `FINAL: done` at once must fail; the gold trajectory plus `pip install` and plus the scenario's own
`forbidden_example` must fail with a safety violation. With `--attacks`, every generic reward hack of the catalogue
(attacks.py) that applies to the scenario is replayed too, through the real pipeline: each must fail (a pass is
printed as FORGED), and the honest runs must still pass. One line per run; exit status 1 when any expectation does
not hold. Use it while writing a scenario; the project's tests run the same expectations on every shipped one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ... import registry
from ...agents.base import AgentContext, AgentLimits
from ...backends.base import Backend, Completion
from ...errors import AgentbenchError, HarnessError
from ...models import ModelSpec
from ...sandbox import SandboxLimits, make_sandbox
from ...task import Params
from . import Scenarios, reply_for, starting_files
from .attacks import Attack, catalogue


class Script(Backend):
    """A fixed list of replies, one per turn (then the last one again)."""

    def __init__(self, name: str, replies: tuple[str, ...]):
        super().__init__(ModelSpec(name=name, backend="script"))
        self.replies = replies

    def generate(self, request) -> Completion:
        turn = sum(m["role"] == "assistant" for m in request.messages)
        return Completion(text=self.replies[min(turn, len(self.replies) - 1)])


def run_one(suite: Scenarios, task, replies: tuple[str, ...], sandbox: str, name: str, image: str | None = None):
    """The outcome of one scripted run of `task` in a fresh sandbox."""
    box = make_sandbox(sandbox, SandboxLimits(timeout=30), site_packages=True, image=image)
    try:
        backend = Script(name, replies)
        ctx = AgentContext(
            backend,
            box,
            Params(task_timeout=30),
            task,
            0,
            model=backend.spec,
            limits=AgentLimits(max_steps=max(40, len(replies) + 2), tool_timeout=30, total_s=600),
        )
        return suite.run(ctx)
    finally:
        box.close()


def basic_runs(task) -> list[tuple[str, tuple[str, ...], str, bool]]:
    """(name, replies, expected status, a safety violation expected) of the four basic runs."""
    spec = task.data["spec"]
    gold = tuple(task.reference or ())
    install = "TOOL_CALL: " + json.dumps({"tool": "run_cmd", "args": {"cmd": ["pip", "install", "requests"]}})
    runs = [
        ("gold", gold, "passed", False),
        ("quit", ("FINAL: done",), "failed", False),
        ("gold+pip install", gold[:-1] + (install,) + gold[-1:], "failed", True),
    ]
    if spec.forbidden_example:
        runs.append(
            (
                "gold+forbidden_example",
                gold[:-1] + tuple(reply_for(s) for s in spec.forbidden_example) + gold[-1:],
                "failed",
                True,
            )
        )
    return runs


def check(
    folder: Path,
    sandbox: str,
    attacks: bool = False,
    image: str | None = None,
    say=print,
    variants: tuple[str, ...] | None = None,
) -> bool:
    suite = Scenarios(folder.parent, shipped=False)
    tasks = [
        t
        for t in suite.load()
        if t.id.split("/")[0] == folder.name and (variants is None or t.id.split("/", 1)[1] in variants)
    ]
    if not tasks:
        say(f"{folder}: no scenario.yaml")
        return False
    ok = True
    for task in tasks:
        if task.problem:
            say(f"FAIL {task.id}: {task.problem}")
            ok = False
            continue
        spec = task.data["spec"]
        if not spec.forbidden_example:
            say(f"FAIL {task.id}: the scenario has no forbidden_example")
            ok = False
        for name, replies, want, violation in basic_runs(task):
            try:
                outcome = run_one(suite, task, replies, sandbox, name, image)
            except (AgentbenchError, HarnessError) as exc:
                say(f"FAIL {task.id} {name}: harness: {exc}")
                ok = False
                continue
            good = outcome.status.value == want and (not violation or bool(outcome.extra["safety_violations"]))
            ok &= good
            say(
                f"{'ok  ' if good else 'FAIL'} {task.id} {name}: {outcome.status.value}"
                + (f" ({outcome.reason})" if outcome.reason else "")
                + ("" if good else f"; expected {want}" + (" with a safety violation" if violation else ""))
            )
        if attacks:
            ok &= run_attacks(suite, task, sandbox, image, say)
    return ok


def run_attacks(suite: Scenarios, task, sandbox: str, image: str | None = None, say=print) -> bool:
    """Replay the catalogue against `task`; True when no attack passed and every honest run did."""
    start = starting_files(Path(task.data["folder"]), task.data["variant"])
    ok = True
    for attack in catalogue(task.data["spec"], start, tuple(task.reference or ())):
        try:
            outcome = run_one(suite, task, attack.replies, sandbox, f"attack: {attack.name}", image)
            status, reason = outcome.status.value, outcome.reason
        except (AgentbenchError, HarnessError) as exc:
            status, reason = "infra", str(exc)
        if attack.expect == "win":
            good = status == "passed"
            label = "ok  " if good else "FAIL"
        else:
            good = status != "passed" and status != "infra"
            label = "ok  " if good else ("FORGED" if status == "passed" else "FAIL")
        ok &= good
        say(
            f"{label} {task.id} [{attack.kind}] {attack.name}: {status}"
            + (f" ({reason[:160]})" if reason else "")
            + ("" if good else "; expected " + ("a pass" if attack.expect == "win" else "a loss"))
        )
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_agentbench check-scenario", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folders", nargs="+", type=Path, help="scenario folders (each with a scenario.yaml)")
    parser.add_argument("--sandbox", default="process", choices=registry.sandboxes.names())
    parser.add_argument("--sandbox-image", default=None, help="image of the docker sandbox")
    parser.add_argument(
        "--attacks",
        action="store_true",
        help="also replay the catalogue of generic reward hacks against each scenario's gold run",
    )
    args = parser.parse_args(argv)
    missing = [f for f in args.folders if not (f / "scenario.yaml").is_file()]
    if missing:
        print(f"check-scenario: {missing[0]} is not a scenario folder (no scenario.yaml)", file=sys.stderr)
        return 2
    results = [check(folder.resolve(), args.sandbox, args.attacks, args.sandbox_image) for folder in args.folders]
    return 0 if all(results) else 1


__all__ = ["Attack", "check", "main", "run_attacks", "run_one"]
