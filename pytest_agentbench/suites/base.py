"""Tasks are pure data; a Suite loads them, sets up a task's workspace, names the agent, and grades what the
agent did (Inspect AI's dataset + solver + scorer). A Suite knows nothing of pytest or of how it is executed: the
plugin turns its tasks into items and the worker runs `Suite.run` with an agents.AgentContext.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from .. import registry
from ..registry import Opt
from ..results.storage import jsonl_rows  # noqa: F401  (suites read their JSONL data with it)
from ..task import Params, Task

if TYPE_CHECKING:  # pragma: no cover
    from ..agents.base import Agent, AgentContext
    from ..backends.base import Backend
    from ..outcome import Outcome
    from ..sandbox.base import Sandbox
    from ..trace import Trace


class Suite(ABC):
    """A benchmark: a dataset loader, a workspace set-up, an agent, a grader. Subclass it, then mark a test with it
    (see README). Implement `load`, and either `agent` + `grade` (and `setup` when a task needs files), or, for
    one-shot suites, `evaluate` as a whole."""

    name: str = ""
    #: markers every item of the suite gets (the suite's name is always one)
    markers: tuple[str, ...] = ()
    #: the suite's code needs installed packages (read-only) in the sandbox, e.g. sympy
    sandbox_site_packages: bool = False
    #: every run leaves a JSON trace file (agent scenarios)
    writes_traces: bool = False
    #: command-line options the suite reads in `from_options`/`configure` (declared and validated at start)
    options: ClassVar[tuple[Opt, ...]] = ()

    @classmethod
    def from_options(cls, option) -> Suite:
        """Build the suite from command-line options (`option(dest)` reads one); for suites named in a marker."""
        return cls()

    def configure(self, option) -> None:
        """Read command-line options that shape this suite's items (`option(dest)` reads one), for every suite, also
        one given as an instance in `@pytest.mark.agentbench(...)`; raise ValueError with a one-line reason."""

    def settings(self) -> dict:
        """Suite options that change results: part of a sample's configuration (resume) and the report."""
        return {}

    @abstractmethod
    def load(self) -> list[Task]:
        """Return the tasks, in a stable order (xdist needs every worker to see the same items)."""

    # -- the agent seam --------------------------------------------------------------------------------
    def setup(self, ctx: AgentContext) -> None:
        """Prepare the task's workspace in `ctx.sandbox` before the agent starts (default: nothing)."""

    def agent(self, ctx: AgentContext) -> tuple[Agent, list[dict], str]:
        """The agent for this task, its opening messages, and the trace label (a variant); may set ctx.tools."""
        raise NotImplementedError(f"suite {self.name!r} implements neither agent() nor evaluate()")

    def grade(self, ctx: AgentContext, trace: Trace) -> Outcome:
        """What the agent achieved, from its trace and the sandbox (hidden checks run here)."""
        raise NotImplementedError(f"suite {self.name!r} implements neither grade() nor evaluate()")

    def run(self, ctx: AgentContext) -> Outcome:
        """set up -> agent -> grade, for one sample. Raise HarnessError for failures that are not the model's."""
        import time

        self.setup(ctx)
        agent, messages, label = self.agent(ctx)
        trace = ctx.new_trace(
            prompt="\n\n".join(m["content"] for m in messages if m["role"] != "assistant"),
            label=label,
            scenario=ctx.task.data.get("scenario"),
        )
        agent.run(ctx, messages, trace)
        trace.outcome.elapsed_seconds = round(time.perf_counter() - ctx.started, 6)
        trace.outcome.num_steps = len(trace.steps)
        outcome = self.grade(ctx, trace)
        outcome.trace = trace
        return outcome

    def evaluate(self, task: Task, backend: Backend, sandbox: Sandbox, params: Params, sample: int) -> Outcome:
        """Run one sample with default limits. Override it instead of agent/grade for a one-shot suite."""
        from ..agents.base import AgentContext

        return self.run(AgentContext(backend, sandbox, params, task, sample))

    def shown_tests(self, task: Task) -> str | None:
        """What grades a sample of `task`, as the report page shows it beside the prompt and the model's code
        (default: the task's `test` code, as HumanEval's). Records carry it (`tests`)."""
        test = task.data.get("test")
        return test if isinstance(test, str) else None

    def dataset_sha256(self) -> str | None:
        """Hash of the data the tasks came from, for the report's provenance (called per sample: cache it)."""
        return None

    @classmethod
    def summarize(cls, records: list[dict]) -> dict | None:
        """Suite-specific metrics for the report, computed on the controller from one model's records."""
        return None

    @classmethod
    def terminal_lines(cls, metrics: dict) -> list[str]:
        """Lines of `summarize`'s metrics for the terminal summary (default: none)."""
        return []

    def time_limit(self, task_id: str, reference, tests, sandbox, floor: float) -> float:
        """The task's limit on this machine: max(floor, 4x its reference solution's graded runtime here), measured
        once per task, sandbox kind and machine (see timeouts). `reference` is a sandbox Candidate or None."""
        from ..timeouts import time_limit

        def measure(limit: float) -> tuple[bool, float]:
            run = sandbox.run_tests(reference, tests, timeout=limit)
            return run.passed, run.result.duration_s

        return time_limit(
            task_id,
            measure if reference is not None else None,
            floor,
            suite=self.name,
            dataset_sha=self.dataset_sha256(),
            sandbox_kind=sandbox.kind,
        )

    def skip_reason(self) -> str | None:
        """Why the suite cannot run here (e.g. data not staged); its items are skipped with this line."""
        return None


def register_suite(cls: type[Suite]) -> type[Suite]:
    """Class decorator: lets `@pytest.mark.agentbench("name")` find a suite by its `name` (registry.suites)."""
    return registry.suites.add(cls)


def suite_by_name(name: str) -> type[Suite] | None:
    return registry.suites.find(name)
