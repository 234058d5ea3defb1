"""The run's state, owned in one place (pytest-benchmark's BenchmarkSession): options, models, loaded
backends, suites' tasks, and, on the controller, the records and the report."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backends import Backend, make_backend
from .errors import AgentbenchError, HarnessError, one_line
from .items import Case
from .models import ModelSpec, default_models_file, load_models_file, resolve
from .outcome import Outcome, Status
from .report import (SCHEMA, GateConfig, RecordLog, aggregate, judge, load_baseline, read_records, record_key,
                     resume_key, write_json)
from .sandbox import Sandbox, SandboxLimits, make_sandbox
from .tasks import Params, Suite, Task, suite_by_name
from . import provenance

import pytest

SESSION_KEY = pytest.StashKey["AgentbenchSession"]()


class AgentbenchSession:
    def __init__(self, config):
        self.config = config
        opt = config.option
        self.is_controller = not hasattr(config, "workerinput")
        self.invocation_dir = Path(config.invocation_params.dir)
        given = opt.agentbench_models_file
        self.models_file = Path(given).expanduser() if given else default_models_file(self.invocation_dir)
        self.specs = load_models_file(self.models_file)
        names = [n.strip() for n in opt.agentbench_model.split(",") if n.strip()]
        if not names:
            raise AgentbenchError("--model needs at least one model name")
        self.models: list[ModelSpec] = []
        for name in dict.fromkeys(names):
            self.models.append(resolve(name, self.specs, self.models_file))
        if opt.agentbench_samples < 1:
            raise AgentbenchError(f"--samples must be >= 1, got {opt.agentbench_samples}")
        self.samples = opt.agentbench_samples
        self.sandbox_kind = opt.agentbench_sandbox
        self.sandbox_image = opt.agentbench_sandbox_image
        self.limits = SandboxLimits(timeout=opt.agentbench_task_timeout, memory_mb=opt.agentbench_sandbox_memory,
                                    cpus=opt.agentbench_sandbox_cpus)
        self.json_path = self.invocation_dir / opt.agentbench_json
        self.jsonl_path = self.json_path.with_suffix(".jsonl")
        self.gate = self._gate(opt)
        self._tasks: dict[int, list[Task]] = {}
        self._backends: dict[str, Backend | HarnessError] = {}
        self._backend_info: dict[str, dict] = {}
        self.records: list[dict] = []
        self._seen: set[tuple] = set()
        self._log: RecordLog | None = None
        self.started = datetime.now(timezone.utc)
        self.plot_path = self.invocation_dir / opt.agentbench_plot if opt.agentbench_plot else None
        self.resumed: set[tuple] = set()
        if opt.agentbench_resume:
            self._resume()

    def _resume(self) -> None:
        """Keep the finished samples of an earlier run of this JSONL; their items are deselected.

        The controller rewrites the file with just those records (a half-written last line from a killed run
        is dropped) before xdist workers start, so every worker reads the same set.
        """
        kept = [r for r in read_records(self.jsonl_path) if r.get("status") != Status.INFRA.value]
        self.resumed = {resume_key(r) for r in kept}
        if self.is_controller:
            self._log = RecordLog(self.jsonl_path, records=kept)
            for rec in kept:
                self._seen.add(resume_key(rec)[:4])
                self.records.append(rec)

    def _gate(self, opt) -> GateConfig:
        baseline = None
        if opt.agentbench_baseline:
            try:
                baseline = load_baseline(Path(opt.agentbench_baseline))
            except ValueError as exc:
                raise AgentbenchError(str(exc)) from exc
        if opt.agentbench_max_drop is not None and baseline is None:
            raise AgentbenchError("--agentbench-max-drop needs --agentbench-baseline")
        return GateConfig(fail_under=opt.agentbench_fail_under, baseline=baseline,
                          baseline_path=opt.agentbench_baseline, max_drop=opt.agentbench_max_drop or 0.0)

    # -- what runs -----------------------------------------------------------------------------
    def params_for(self, model: ModelSpec) -> Params:
        opt = self.config.option
        temperature = opt.agentbench_temperature
        if temperature is None:
            temperature = model.temperature if model.temperature is not None else 0.0
        max_new = opt.agentbench_max_new_tokens or model.max_tokens or 512
        return Params(temperature=temperature, max_new_tokens=max_new, seed=opt.agentbench_seed,
                      task_timeout=opt.agentbench_task_timeout)

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
                made = self.config.hook.pytest_agentbench_make_backend(spec=spec)
                self._backends[spec.name] = made if made is not None else make_backend(spec)
                self._backend_info[spec.name] = self._backends[spec.name].info()
            except (HarnessError, AgentbenchError) as exc:
                self._backends[spec.name] = HarnessError(str(exc))
            except Exception as exc:  # a backend library's own error: the harness's, never the model's
                self._backends[spec.name] = HarnessError(f"backend {spec.name!r} failed to load: {one_line(exc)}")
        found = self._backends[spec.name]
        if isinstance(found, HarnessError):
            raise found
        return found

    def sandbox(self, suite: Suite) -> Sandbox:
        return make_sandbox(self.sandbox_kind, self.limits, site_packages=suite.sandbox_site_packages,
                            image=self.sandbox_image)

    def preflight(self) -> None:
        """Fail closed: no isolation tools, no run (unless --sandbox unconfined was asked for)."""
        if self.sandbox_kind == "process":
            from .sandbox.bwrap import INSTALL_HINT, missing_tools

            missing = missing_tools()
            if missing:
                raise AgentbenchError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
        elif self.sandbox_kind == "docker":
            from .sandbox.docker import DEFAULT_IMAGE, engine

            try:
                client = engine()
            except HarnessError as exc:
                raise AgentbenchError(str(exc)) from exc
            image = self.sandbox_image or DEFAULT_IMAGE
            try:
                client.images.get(image)
            except Exception as exc:
                raise AgentbenchError(f"docker image {image} not found: build it with scripts/docker-image.sh") from exc

    def evaluate(self, case: Case, backend: Backend, sandbox: Sandbox) -> tuple[Outcome, dict]:
        params = self.params_for(case.model).for_sample(case.sample)
        started = time.perf_counter()
        try:
            outcome = case.suite.evaluate(case.task, backend, sandbox, params, case.sample)
        except (HarnessError, AgentbenchError):
            raise
        except Exception as exc:
            raise HarnessError(f"evaluating {case.task.id} raised {one_line(exc)}") from exc
        wall = time.perf_counter() - started
        record = self.record(case, outcome.to_record(), wall_s=wall, params=params)
        info = self._backend_info.pop(case.model.name, None)
        if info:  # sent once per worker; the controller moves it into the report's metadata
            record["backend_info"] = info
        return outcome, record

    def config_sha(self, case: Case) -> str:
        """What decides a sample's result besides its identity: model spec, parameters, suite settings, data."""
        params = self.params_for(case.model).for_sample(case.sample)
        blob = json.dumps([case.model.to_dict(), asdict(params), case.suite.settings(),
                           case.suite.dataset_sha256()], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def is_done(self, case: Case) -> bool:
        return bool(self.resumed) and (*case.key(), self.config_sha(case)) in self.resumed

    def record(self, case: Case, fields: dict[str, Any], wall_s: float, params: Params | None = None) -> dict:
        params = params or self.params_for(case.model).for_sample(case.sample)
        fields.pop("program", None)
        rec = {"model": case.model.name, "suite": case.suite.name, "task": case.task.id, "sample": case.sample,
               **fields, "wall_s": round(wall_s, 6), "params": asdict(params),
               "suite_settings": case.suite.settings(), "config_sha": self.config_sha(case),
               "dataset_sha256": case.suite.dataset_sha256()}
        for key in ("model_s", "sandbox_s"):
            rec[key] = round(rec.get(key, 0.0), 6)
        return rec

    def infra_record(self, case: Case, reason: str) -> dict:
        fields = Outcome(Status.INFRA, reason=reason).to_record()
        return self.record(case, fields, wall_s=0.0)

    # -- controller side -----------------------------------------------------------------------
    def add_record(self, record: dict) -> None:
        key = (record["model"], record["suite"], record["task"], record["sample"])
        if key in self._seen:
            return
        self._seen.add(key)
        info = record.pop("backend_info", None)
        if info:
            self._backend_info.setdefault(record["model"], info)
        self.config.hook.pytest_agentbench_record(record=record, config=self.config)
        self.records.append(record)
        if self._log is None:
            self._log = RecordLog(self.jsonl_path)
        self._log.append(record)

    def finish(self, exitstatus: int) -> tuple[dict | None, int]:
        """Write the report; return it and the exit status the gate decides (pytest's own without a gate)."""
        if self._log is not None:
            self._log.close()
        if not self.records and not self.gate.active:
            return None, exitstatus
        results = aggregate(self.records)
        for result in results:
            cls = suite_by_name(result["suite"])
            if cls is not None:
                mine = [r for r in self.records if (r["model"], r["suite"]) == (result["model"], result["suite"])]
                try:
                    extra = cls.summarize(mine)
                except Exception as exc:  # a suite's metrics bug must not cost the run its report
                    extra = {"error": one_line(exc)}
                if extra:
                    result["metrics"] = extra
        harness_errors = sum(1 for r in self.records if r["status"] == Status.INFRA.value)
        verdict = judge(results, self.gate, harness_errors)
        report = {"schema": SCHEMA, "created_utc": self.started.isoformat(timespec="seconds"),
                  "results": results, "gate": verdict, "run": self.metadata(),
                  "samples_file": str(self.jsonl_path)}
        self.config.hook.pytest_agentbench_report(report=report, config=self.config)
        write_json(self.json_path, report)
        if self.plot_path is not None and self.records:
            from .plots import plot_records

            plot_records(self.records, self.plot_path)
        if exitstatus == 5 and self.resumed:  # everything was already done: answer as the full run would have
            exitstatus = 0 if all(r["status"] == Status.PASSED.value for r in self.records) else 1
        if exitstatus in (0, 1) and (self.gate.active or harness_errors):
            exitstatus = 0 if verdict["ok"] else 1
        return report, exitstatus

    def metadata(self) -> dict[str, Any]:
        opt = self.config.option
        used = {r["model"] for r in self.records}
        datasets = {}
        for r in sorted(self.records, key=record_key):
            datasets.setdefault(r["suite"], r.get("dataset_sha256"))
        return {
            "pytest_agentbench": provenance.package_versions()["pytest-agentbench"],
            "packages": provenance.package_versions(),
            "git": provenance.git_state(self.invocation_dir),
            "machine": provenance.machine(),
            "args": list(self.config.invocation_params.args),
            "xdist_workers": getattr(opt, "numprocesses", None) or 0,
            "samples": self.samples, "seed": opt.agentbench_seed, "sandbox": self.sandbox_kind,
            "models_file": str(self.models_file),
            "models": {m.name: {"spec": m.to_dict(), "params": asdict(self.params_for(m)),
                                "backend": self._backend_info.get(m.name)}
                       for m in self.models if m.name in used},
            "datasets_sha256": datasets,
        }

    def close(self) -> None:
        for backend in self._backends.values():
            if isinstance(backend, Backend):
                backend.close()
