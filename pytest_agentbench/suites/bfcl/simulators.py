"""BFCL's multi-turn API simulators, driven from the host: each request runs suites/bfcl/sandbox_program.py in the sandbox
with the installed bfcl-eval's own source (suites/bfcl.py uses it for the agent's steps and for the final check)."""

from __future__ import annotations

import functools
import json
import re
import secrets
from importlib.util import find_spec
from pathlib import Path

from ...errors import HarnessError, first_line
from ...outcome import Status
from .handler import REFUSED_CALL, refused_call

SIMULATOR_ROOT = "bfcl_eval.eval_checker.multi_turn_eval"


class Simulators:
    """BFCL's multi-turn API classes for one conversation, run in the sandbox one request at a time: a step replays
    the earlier steps from the initial configuration (the simulators are seeded, so state is the same), then runs
    its own calls. Calls the decoder could not have produced from a reply are replaced first (calls.refused_call)."""

    def __init__(self, sandbox, entry: dict, category: str, timeout: float):
        self.sandbox, self.entry, self.category, self.timeout = sandbox, entry, category, timeout
        self.last_failure: tuple[Status, str] | None = None

    def _request(self, op: str, **fields) -> dict | None:
        modules, packages = _sources(tuple(self.entry["involved_classes"]))
        nonce = secrets.token_hex(16)
        request = {
            "op": op,
            "nonce": nonce,
            "modules": modules,
            "packages": packages,
            "entry": {k: self.entry[k] for k in ("id", "initial_config", "involved_classes")},
            "long_context": "long_context" in self.category,
            "model_name": "agentbench",
            **fields,
        }
        program = _sandbox_program() + f"\nmain({json.dumps(request)!r})\n"
        run = self.sandbox.run_python(program, timeout=self.timeout)
        for line in reversed(run.stdout.splitlines()):
            if line.startswith(nonce):
                self.last_failure = None
                return json.loads(line[len(nonce) :])
        if run.timed_out:
            self.last_failure = (Status.TIMEOUT, f"BFCL's simulators did not finish within {self.timeout:g} s")
        else:
            self.last_failure = (
                Status.ERROR,
                "BFCL's simulators ended without an answer: "
                + (
                    first_line(run.stderr.strip().splitlines()[-1])
                    if run.stderr.strip()
                    else f"exit status {run.exit_code}"
                )[:200],
            )
        return None

    def execute(self, history: list[list[str]], calls: list[str]) -> list[str]:
        found = self._request("execute", history=[_safe(step) for step in history], step=_safe(calls))
        if found is None:
            self._blame()
            assert self.last_failure is not None  # the failed request's, kept by _blame
            return [f"Error during execution: {self.last_failure[1]}"] * len(calls)
        return found["results"]

    def check(self, decoded: list[list[list[str]]], truth: list[list[str]]) -> dict | None:
        return self._request(
            "check",
            decoded=[[_safe(step) for step in turn] for turn in decoded],
            ground_truth=truth,
            category=self.category,
        )

    def failure(self) -> tuple[Status, str]:
        self._blame()
        assert self.last_failure is not None  # the failed request's, kept by _blame
        return self.last_failure

    def _blame(self) -> None:
        """A run that failed: the model's calls did it, unless the simulators cannot even start here (infra)."""
        failure = self.last_failure
        if self._request("execute", history=[], step=[]) is None:
            assert self.last_failure is not None  # a request that returns None says why
            raise HarnessError(f"BFCL's simulators cannot run in this sandbox: {self.last_failure[1]}")
        self.last_failure = failure


def _safe(calls: list[str]) -> list[str]:
    return [REFUSED_CALL if refused_call(c) else c for c in calls]


@functools.cache
def _sandbox_program() -> str:
    return (Path(__file__).with_name("sandbox_program.py")).read_text(encoding="utf-8")


@functools.cache
def _sources(classes: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """The installed bfcl-eval's source of the multi-turn executor, checker and the given classes' simulators."""
    spec = find_spec("bfcl_eval")
    assert spec is not None and spec.submodule_search_locations is not None  # installed: BFCL.load() checks first
    root = Path(spec.submodule_search_locations[0])
    packages = [
        "bfcl_eval",
        "bfcl_eval.constants",
        "bfcl_eval.eval_checker",
        SIMULATOR_ROOT,
        f"{SIMULATOR_ROOT}.func_source_code",
    ]
    names = [
        "bfcl_eval.constants.executable_backend_config",
        f"{SIMULATOR_ROOT}.multi_turn_utils",
        f"{SIMULATOR_ROOT}.multi_turn_checker",
    ]
    mapping = _class_modules()
    names += sorted({mapping[c] for c in classes})

    def source(name: str, package: bool) -> str:
        rel = Path(*name.split(".")[1:])
        return (root / rel / "__init__.py" if package else root / rel.with_suffix(".py")).read_text(encoding="utf-8")

    modules = {name: source(name, True) for name in packages}
    todo = list(names)
    while todo:  # and what they import from bfcl_eval (long_context)
        name = todo.pop()
        if name in modules:
            continue
        modules[name] = source(name, False)
        todo += [m for m in re.findall(r"^from (bfcl_eval[\w.]*) import", modules[name], re.M) if m not in modules]
    return modules, packages


def _class_modules() -> dict[str, str]:
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING  # constants only

    return CLASS_FILE_PATH_MAPPING
