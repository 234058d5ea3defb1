"""The one extension mechanism: a name -> class table for each of the five kinds of part the harness is made of.

    backends   turn a Request into a Completion               (backends.base.Backend)
    sandboxes  run model-written code                         (sandbox.base.Sandbox)
    suites     a benchmark: tasks, agent, grader              (suites.base.Suite)
    tools      actions an agent may call                      (agents.tools.Tool)
    engines    a model server the run starts (`serve:`)       (serving.engine.Engine)

A name resolves, in order, to a class registered in this process (`@registry.backends.register("name")` in any
module or conftest), a built-in (listed below as "module:Class", imported only when first asked for: importing this
module imports nothing of torch, docker or the suites), or a Python entry point of a third-party package, in the
group `pytest_agentbench.<kind>` (e.g. `[project.entry-points."pytest_agentbench.backends"] mine =
"my_pkg.backend:MyBackend"`). An unknown name is one AgentbenchError line listing the known ones.

Each class carries what the rest of the harness needs to know about it (its settings, options, preflight, markers,
summary lines, fallback): see docs/extending.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Optional, TypeVar, overload

from .errors import AgentbenchError

T = TypeVar("T")
C = TypeVar("C", bound=type)


@dataclass(frozen=True)
class Opt:
    """A command-line option, declared by the core (plugin/options.py) or by the class that reads it (a suite's
    `options`). `field`: the pydantic annotation that validates its value at start (`Annotated[int, Field(ge=0)]`);
    None: any value of `type` (or a string), or None."""

    flag: str
    dest: str
    help: str
    default: Any = None
    type: Any = None
    metavar: Optional[str] = None
    choices: Optional[tuple[str, ...]] = None
    action: Optional[str] = None
    field: Any = None

    @property
    def name(self) -> str:
        """The RunOptions field: the dest without its prefix (`report` for --agentbench-json)."""
        return {"agentbench_json": "report"}.get(self.dest, self.dest.removeprefix("agentbench_"))


class Kind(Generic[T]):
    """The registered classes of one kind, by name."""

    def __init__(self, kind: str, what: str, builtin: dict[str, str]):
        self.kind = kind  # "backends": the entry-point group is pytest_agentbench.backends
        self.what = what  # "backend": how an error names one
        self.group = f"pytest_agentbench.{kind}"
        self._builtin = dict(builtin)  # name -> "module:Class", imported when first asked for
        self._added: dict[str, type[T]] = {}
        self.version = 0  # counts registrations in this process (who caches what depends on them)

    # -- registering -----------------------------------------------------------------------------------------
    @overload
    def register(self, name: C) -> C: ...
    @overload
    def register(self, name: Optional[str] = None) -> Callable[[C], C]: ...
    def register(self, name: Any = None) -> Any:
        """Class decorator: `@registry.suites.register` (the class's own `name`) or `.register("name")`."""
        if isinstance(name, type):
            return self.add(name)

        def decorate(cls: C) -> C:
            return self.add(cls, name)

        return decorate

    def add(self, cls: C, name: Optional[str] = None) -> C:
        key = name or getattr(cls, "name", None)
        if not isinstance(key, str) or not key:
            raise AgentbenchError(f"a {self.what} is registered with a name: {cls.__qualname__} has none")
        self._added[key] = cls
        self.version += 1
        return cls

    def remove(self, name: str) -> None:
        """Forget a class registered in this process (tests); built-ins stay."""
        if self._added.pop(name, None) is not None:
            self.version += 1

    # -- looking up ------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every name known now: registered, built-in, and those of installed packages' entry points."""
        return sorted({*self._added, *self._builtin, *(ep.name for ep in self._entry_points())})

    def find(self, name: str) -> Optional[type[T]]:
        """The class registered as `name`, or None."""
        if name in self._added:
            return self._added[name]
        if name in self._builtin:
            cls = _load(self._builtin[name], self.what)
            self._added[name] = cls
            return cls
        for ep in self._entry_points():
            if ep.name == name:
                try:
                    cls = ep.load()
                except Exception as exc:
                    raise AgentbenchError(
                        f"cannot load {self.what} {name!r} from entry point {ep.value!r}: {exc}"
                    ) from exc
                self._added[name] = cls
                return cls
        return None

    def get(self, name: str) -> type[T]:
        """The class registered as `name`; unknown: one line listing the known names. A backend may also be named
        "package.module:Class"."""
        found = self.find(name)
        if found is None and ":" in name:
            found = _load(name, self.what)
        if found is None:
            raise AgentbenchError(f"unknown {self.what} {name!r} (known: {', '.join(self.names()) or 'none'})")
        return found

    def _entry_points(self) -> Any:
        from importlib.metadata import entry_points

        return entry_points(group=self.group)


def _load(target: str, what: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise AgentbenchError(f"cannot import {what} {target!r}: {exc}") from exc


_P = "pytest_agentbench."

backends: Kind[Any] = Kind(
    "backends",
    "backend",
    {
        "transformers": _P + "backends.transformers:TransformersBackend",
        "reference": _P + "backends.reference:ReferenceBackend",
        "replay": _P + "backends.replay:ReplayBackend",
        "openai": _P + "backends.openai_api:OpenAIBackend",
        "vllm": _P + "backends.vllm:VLLMBackend",
        "scripted": _P + "backends.scripted:ScriptedBackend",
    },
)
sandboxes: Kind[Any] = Kind(
    "sandboxes",
    "sandbox",
    {
        "process": _P + "sandbox.process:ProcessSandbox",
        "unconfined": _P + "sandbox.process:UnconfinedSandbox",
        "docker": _P + "sandbox.docker:DockerSandbox",
    },
)
suites: Kind[Any] = Kind(
    "suites",
    "suite",
    {
        "humaneval": _P + "suites.humaneval:HumanEval",
        "humanevalfix": _P + "suites.humanevalfix:HumanEvalFix",
        "tool_use": _P + "suites.tool_use:ToolUse",
        "scenarios": _P + "suites.scenarios:Scenarios",
        "bfcl": _P + "suites.bfcl:BFCL",
    },
)
tools: Kind[Any] = Kind(
    "tools",
    "tool",
    {
        name: _P + "agents.tools:" + cls
        for name, cls in {
            "code_executor": "CodeExecutor",
            "symbolic_math": "SymbolicMath",
            "read_file": "ReadFile",
            "write_file": "WriteFile",
            "list_dir": "ListDir",
            "run_cmd": "RunCmd",
            "git_diff": "GitDiff",
            "grep": "Grep",
        }.items()
    },
)
engines: Kind[Any] = Kind(
    "engines",
    "serving engine",
    {
        "llamacpp": _P + "serving.llama_cpp:LlamaCpp",
        "transformers": _P + "serving.transformers:TransformersServe",
        "vllm": _P + "serving.vllm:VLLMServe",
    },
)

KINDS: dict[str, Kind[Any]] = {k.kind: k for k in (backends, sandboxes, suites, tools, engines)}

__all__ = ["KINDS", "Kind", "Opt", "backends", "engines", "sandboxes", "suites", "tools"]
