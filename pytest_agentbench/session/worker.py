"""Where tests run (each xdist worker, or the single process): suites' tasks, loaded backends, fresh sandboxes, and
the evaluation of one case into a record. Nothing here writes the report; records travel to the controller with
each test report (controller.py), as pytest-xdist's WorkerInteractor hands results to its DSession.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import warnings
from dataclasses import asdict
from typing import Any

from .. import registry
from ..agents.base import AgentContext, AgentLimits
from ..backends import Backend, make_backend
from ..backends import cache as gencache
from ..backends.replay import Recording
from ..errors import AgentbenchError, AgentbenchWarning, HarnessError, one_line
from ..models import ModelSpec
from ..outcome import Outcome, Status
from ..plugin.items import Case
from ..results import records
from ..sandbox import Sandbox, make_sandbox
from ..suites.base import Suite
from ..task import Task
from .config import RunConfig


class Worker:
    def __init__(self, run: RunConfig, hook):
        self.run = run
        self.hook = hook
        self._tasks: dict[int, list[Task]] = {}
        self._backends: dict[str, Backend | HarnessError] = {}
        self._backend_info: dict[str, dict] = {}
        self._sandbox_ok: set[tuple] = set()
        self._served: dict[str, dict] = {}  # model -> the run's server that answered it (engine, pid, URL)
        self._replica_pids: dict[str, dict[str, int]] = {}  # model -> URL -> pid of each replica (replicas: N)
        self._quantization: dict[str, str | None] = {}

    # -- what runs -----------------------------------------------------------------------------------
    def tasks(self, suite: Suite) -> list[Task]:
        if id(suite) not in self._tasks:
            try:
                self._tasks[id(suite)] = suite.load()
            except (OSError, ValueError) as exc:
                raise AgentbenchError(f"suite {suite.name!r} cannot load its data: {one_line(exc)}") from exc
        return self._tasks[id(suite)]

    def backend(self, spec: ModelSpec) -> Backend:
        """Loaded once per process per model; a failed load fails every item of that model fast."""
        if spec.name not in self._backends:
            try:
                made = self.served_backend(spec) or self.hook.pytest_agentbench_make_backend(spec=spec)
                loaded = gencache.wrap(made if made is not None else make_backend(spec), self.run.options.cache)
                self._backends[spec.name] = loaded
                self._backend_info[spec.name] = loaded.info()
            except (HarnessError, AgentbenchError) as exc:
                self._backends[spec.name] = HarnessError(str(exc))
            except Exception as exc:  # a backend library's own error: the harness's, never the model's
                self._backends[spec.name] = HarnessError(f"backend {spec.name!r} failed to load: {one_line(exc)}")
        found = self._backends[spec.name]
        if isinstance(found, HarnessError):
            raise found
        return found

    def served_backend(self, spec: ModelSpec) -> Backend | None:
        """The run's one server of `spec` (serving.py), reached over loopback; None: this model runs in-process."""
        engine = self.run.serve_engine(spec)[0]
        if engine is None:
            return None
        from .. import serving

        answer = serving.ask(self.run, spec.name)
        if "error" in answer:
            raise HarnessError(answer["error"])
        if "fallback" in answer:
            warnings.warn(
                AgentbenchWarning(
                    f"{spec.name} is not served by {engine} ({answer['fallback']}); running it in-process"
                ),
                stacklevel=2,
            )
            return None
        from ..backends.openai_api import ServedBackend

        served = serving.Served.from_dict(answer["served"])
        self._served[spec.name] = {"engine": served.engine, "pid": served.pid, "base_url": served.base_url}
        self._replica_pids[spec.name] = {r["base_url"]: r["pid"] for r in served.replicas}
        return ServedBackend(spec, served)

    def sandbox(self, suite: Suite) -> Sandbox:
        """A fresh sandbox. The first of each kind in this process must run a trivial program: a sandbox that
        cannot (an image without python3, limits too small to start) is the harness's failure, not every model
        answer's."""
        try:
            box = self._make_sandbox(suite)
        except HarnessError as exc:
            if not self._fail_over(exc):
                raise
            box = self._make_sandbox(suite)
        key = (box.kind, suite.sandbox_site_packages)
        if key not in self._sandbox_ok:
            try:
                probe = box.run_python("pass\n", timeout=max(self.run.limits.timeout, 30.0))
            except HarnessError:
                box.close()
                raise
            if probe.verdict[0] != "passed":
                box.close()
                raise HarnessError(
                    f"the {box.kind} sandbox cannot run Python: {probe.verdict[1] or probe.stderr[-200:]}"
                )
            self._sandbox_ok.add(key)
        return box

    def _make_sandbox(self, suite: Suite) -> Sandbox:
        return make_sandbox(
            self.run.options.sandbox,
            self.run.limits,
            site_packages=suite.sandbox_site_packages,
            image=self.run.options.sandbox_image,
            docker_host=self.run.docker_host,
        )

    def _fail_over(self, exc: HarnessError) -> bool:
        """`--docker-host` with several engines: this worker's engine no longer answers, so it moves, for its next
        items, to the next engine of the list that answers and holds the image (one warning line). The item that was
        running there when it died stays infra; an item that had not started gets its sandbox on the new engine.
        False: one engine, this engine still answers (the failure was something else), or none of them does."""
        from ..plugin.options import docker_hosts
        from ..sandbox.docker import engine

        hosts, here = docker_hosts(self.run.options.docker_host), self.run.docker_host
        if self.run.options.sandbox != "docker" or len(hosts) < 2 or here not in hosts:
            return False
        try:
            engine(here)
            return False  # the engine answers: not an engine that went away
        except HarnessError:
            pass
        start = hosts.index(here)
        for other in hosts[start + 1 :] + hosts[:start]:
            try:
                registry.sandboxes.get("docker").preflight(image=self.run.options.sandbox_image, host=other)
            except AgentbenchError:
                continue
            self.run.docker_host = other
            self._sandbox_ok = {key for key in self._sandbox_ok if key[0] != "docker"}  # probe the new engine once
            warnings.warn(
                AgentbenchWarning(f"{one_line(exc)}; this worker goes on with the Docker engine at {other}"),
                stacklevel=2,
            )
            return True
        return False

    def preflight(self) -> None:
        """Fail closed: no isolation tools, no run (unless --sandbox unconfined was asked for)."""
        registry.sandboxes.get(self.run.options.sandbox).preflight(
            image=self.run.options.sandbox_image, host=self.run.docker_host
        )

    # -- one case ------------------------------------------------------------------------------------
    def evaluate(self, case: Case, backend: Backend, sandbox: Sandbox) -> tuple[Outcome, dict]:
        params = self.run.params_for(case.model).for_sample(case.sample)
        suite = case.suite
        seeds = seed_generators(params.seed)
        started, started_at = time.perf_counter(), time.time()
        before = gencache.counts(backend)
        model = Recording(backend)  # every reply, as it came, goes into the record (a run can be re-graded)
        try:
            if type(suite).evaluate is not Suite.evaluate:  # a one-shot suite that drives the model itself
                outcome = suite.evaluate(case.task, model, sandbox, params, case.sample)
            else:
                opts = self.run.options
                ctx = AgentContext(
                    model,
                    sandbox,
                    params,
                    case.task,
                    case.sample,
                    model=case.model,
                    limits=AgentLimits(
                        max_steps=opts.max_steps, tool_timeout=opts.tool_timeout, total_s=opts.agent_timeout
                    ),
                )
                outcome = suite.run(ctx)
        except (HarnessError, AgentbenchError):
            raise
        except Exception as exc:
            raise HarnessError(f"evaluating {case.task.id} raised {one_line(exc)}") from exc
        wall = time.perf_counter() - started
        found: dict[str, Any] = {
            "replies": model.replies,
            "endpoints": model.endpoints,
            # what the report page shows beside the model's code: what the model was asked, what graded it
            "prompt": outcome.trace.prompt if outcome.trace is not None and outcome.trace.prompt else case.task.prompt,
            "tests": suite.shown_tests(case.task),
            "seeds": seeds,
            "quantization": self.quantization(case.model, backend),
            "memory_bound": getattr(sandbox, "memory_bound", None),
        }
        if type(suite).evaluate is Suite.evaluate:
            found["agent_limits"] = asdict(ctx.limits)
        if suite.writes_traces and outcome.trace is not None:
            found["trace"] = self.write_trace(outcome.trace)
        resources = backend.resources()
        if resources is not None:
            found["resources"] = resources
        if outcome.trace is not None:
            ttft = [s.ttft_s for s in outcome.trace.steps if s.ttft_s is not None]
            if ttft:
                found["ttft_s"] = ttft
        if case.model.name in self._served:
            found["served_by"] = self._served[case.model.name]
            replicas = self._replica_pids.get(case.model.name)
            if replicas and model.endpoints:  # the replica that answered (the last one, if one failed over)
                url = model.endpoints[-1]
                found["served_by"] = {**found["served_by"], "base_url": url, "pid": replicas.get(url)}
        if before is not None:  # replies of this sample served from the generation cache (no model time counted)
            after = gencache.counts(backend)
            assert after is not None  # the same cached backend that gave `before`
            hits, misses = after
            found["cache"] = {"hits": hits - before[0], "misses": misses - before[1]}
        record = self.record(case, {**outcome.to_record(), **found}, wall_s=wall, started_at=started_at)
        info = self._backend_info.pop(case.model.name, None)
        if info:  # sent once per worker beside the record; the controller moves it into the report's metadata
            record["backend_info"] = info
        return outcome, record

    def quantization(self, spec: ModelSpec, backend: Backend) -> str | None:
        if spec.name not in self._quantization:
            from ..models import quantization

            # the dtype an in-process backend loaded (resolves `dtype: auto`); served or remote backends name none
            self._quantization[spec.name] = quantization(spec, self.run.ran_as(spec), backend.info().get("dtype"))
        return self._quantization[spec.name]

    def write_trace(self, trace) -> dict:
        """The trace file, written here (the process that ran it); the record carries its path and sha256."""
        if self.run.options.embed:
            from ..embeddings import embed_trace

            embed_trace(trace)
        path, sha = trace.write(self.run.trace_dir)
        return {"path": str(path), "sha256": sha}

    def config_sha(self, case: Case) -> str:
        """What decides a sample's result besides its identity: model spec, parameters, suite settings, data."""
        params = self.run.params_for(case.model).for_sample(case.sample)
        opts = self.run.options
        limits = [opts.max_steps, opts.tool_timeout, opts.agent_timeout]  # an agent's limits change its results
        blob = json.dumps(
            [
                case.model.to_dict(),
                self.run.ran_as(case.model),
                asdict(params),
                case.suite.settings(),
                case.suite.dataset_sha256(),
                limits,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def settings_change(self, case: Case, record: dict) -> str | None:
        """None when `record` was made with this run's settings for `case` (the same config_sha); else what changed,
        in a few words (`max_new_tokens 512 -> 100`)."""
        if record.get("config_sha") == self.config_sha(case):
            return None
        params = asdict(self.run.params_for(case.model).for_sample(case.sample))
        changed = [
            f"{k} {then.get(k)!r} -> {now.get(k)!r}"
            for now, then in (
                (params, record.get("params") or {}),
                (case.suite.settings(), record.get("suite_settings") or {}),
            )
            for k in sorted(set(now) | set(then))
            if now.get(k) != then.get(k)
        ]
        if case.suite.dataset_sha256() != record.get("dataset_sha256"):
            changed.append("the dataset")
        return ", ".join(changed) or "the model, its backend or the agent limits"

    def record(self, case: Case, fields: dict[str, Any], wall_s: float, started_at: float | None = None) -> dict:
        """The sample's record; `started_at`: the wall-clock Unix time it started (default: now). Every record names
        the process that made it (an xdist worker, or `main`), infra ones too: a dead engine or server is traced to
        the worker that used it."""
        params = self.run.params_for(case.model).for_sample(case.sample)
        fields = {
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            **fields,
            **{k: round(fields.get(k, 0.0), 6) for k in ("model_s", "sandbox_s")},
        }
        return records.build(
            model=case.model.name,
            suite=case.suite.name,
            task=case.task.id,
            sample=case.sample,
            **fields,
            wall_s=round(wall_s, 6),
            started_at=round(time.time() if started_at is None else started_at, 6),
            params=asdict(params),
            suite_settings=case.suite.settings(),
            config_sha=self.config_sha(case),
            dataset_sha256=case.suite.dataset_sha256(),
        )

    def infra_record(self, case: Case, reason: str) -> dict:
        return self.record(case, Outcome(Status.INFRA, reason=reason).to_record(), wall_s=0.0)

    def close(self) -> None:
        for backend in self._backends.values():
            if isinstance(backend, Backend):
                backend.close()


def quiet_when_orphaned(config) -> None:
    """An xdist worker whose controller is gone (killed) stops after the item in progress, quietly. Without this each
    of its sends to the dead controller raises OSError, and every worker prints a PluggyTeardownRaisedWarning block.
    Wraps the worker side's `sendevent` (xdist's WorkerInteractor); a send fails only when the controller is gone."""
    parent = os.getppid()
    for plugin in config.pluginmanager.get_plugins():
        send, channel = getattr(plugin, "sendevent", None), getattr(plugin, "channel", None)
        if type(plugin).__name__ != "WorkerInteractor" or send is None or channel is None:
            continue

        def sendevent(name, _send=send, _plugin=plugin, _channel=channel, **kwargs):
            try:
                _send(name, **kwargs)
            except OSError:
                if os.getppid() == parent and not _channel.isclosed():
                    raise
                session = getattr(_plugin, "session", None)
                if session is not None:
                    session.shouldstop = "the xdist controller is gone"

        plugin.sendevent = sendevent


def seed_generators(seed: int) -> dict[str, int]:
    """Seed Python's, NumPy's and torch's global generators for one sample, so that a rerun at temperature > 0
    replays the same draws on the same machine and backend. NumPy and torch are seeded only where something has
    loaded them (an in-process backend loads them before its first sample); neither is imported here just to be
    seeded, since a served model or a reference run needs none of them (NumPy's import was 0.1-0.2 s of CPU in every
    worker). Served models get the seed with each request instead. Returns the seeds, for the record (the same
    whichever process ran the sample)."""
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)  # every device's generator, CUDA's too
    return {"python": seed, "numpy": seed % 2**32, "torch": seed}
