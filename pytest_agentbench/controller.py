"""Where results are gathered (the xdist controller, or the single process): records as they arrive, the report,
the gate. As pytest-xdist's DSession gathers what its workers send, this side only receives: records come with
each test report (`report.user_properties`), which pytest carries from the workers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import provenance
from .errors import AgentbenchError, HarnessError, one_line
from .gate import GateConfig, judge, load_baseline
from .outcome import Status
from .records import Record, key, resume_key
from .report import aggregate, record_key, resources_by_model
from .runconfig import RunConfig
from .storage import REPORT_SCHEMA, RecordLog, claim, read_records, write_json
from .tasks import suite_by_name

SKIP_PROPERTY = "agentbench-skip"


def resumable(run: RunConfig) -> list[dict]:
    """The finished (non-infra) samples of an earlier run of this JSONL, for --agentbench-resume."""
    if not run.options.resume:
        return []
    claim(run.jsonl_path, "records", "per-sample records")
    return [r for r in read_records(run.jsonl_path) if r.get("status") != Status.INFRA.value]


class Controller:
    def __init__(self, run: RunConfig, config):
        self.run = run
        self.config = config
        claim(run.json_path, "report", "report")
        claim(run.jsonl_path, "records", "per-sample records")
        if run.plot_path is not None:
            claim(run.plot_path, "png", "plot")
        if run.html_path is not None:
            claim(run.html_path, "html", "HTML report")
        self.gate = self._gate()
        self.records: list[dict] = []
        self._seen: set[tuple] = set()
        self._log: RecordLog | None = None
        self._backend_info: dict[str, dict] = {}
        from .serving import Broker

        self.broker = run.broker = Broker(run, run.json_path.parent / "servers")  # the run's model servers
        self.unavailable: dict[str, str] = {}               # suite -> why it could not run
        self.no_rows: dict[tuple[str, str], list[str]] = defaultdict(list)  # (model, suite) -> tasks without rows
        self.started = datetime.now(timezone.utc)
        kept = resumable(run)
        self.resumed = len(kept)
        if run.options.resume:
            # Rewrite the file with just those records (a half-written last line of a killed run goes) before the
            # xdist workers start, so every worker deselects the same set.
            self._log = RecordLog(run.jsonl_path, records=kept)
            for rec in kept:
                self._seen.add(key(rec))
                self.records.append(rec)

    def _gate(self) -> GateConfig:
        opts = self.run.options
        baseline = None
        if opts.baseline:
            try:
                baseline = load_baseline(Path(opts.baseline))
            except ValueError as exc:
                raise AgentbenchError(str(exc)) from exc
        if opts.max_drop and baseline is None:
            raise AgentbenchError("--agentbench-max-drop needs --agentbench-baseline")
        from .compare import parse_model_map

        return GateConfig(fail_under=opts.fail_under, baseline=baseline, baseline_path=opts.baseline,
                          max_drop=opts.max_drop, alpha=opts.alpha, strict=opts.strict, seed=opts.seed,
                          model_map=parse_model_map(opts.model_map))

    def check_serving(self, say) -> None:
        """Before any item: --serve ENGINE that cannot run here is one line; vllm models that will fall back to
        transformers say so once. Servers themselves start when first needed (serving.Broker)."""
        from . import serving

        for spec in self.run.models:
            engine, asked = self.run.serve_engine(spec)
            if engine is not None and asked and serving.missing(engine):
                raise AgentbenchError(f"--serve {engine}: {serving.missing(engine)}")
            if engine is not None and not serving.missing(engine):
                serving.check(spec, engine)     # a model the engine cannot serve: one line now, not N failures
                self.run.ran_as(spec)
            if engine is None and self.run.ran_as(spec).get("fallback_from"):
                from .backends.vllm import unavailable

                self.broker.notes[spec.name] = {"engine": "vllm", "fallback": "in-process transformers",
                                                "reason": unavailable()}
                say(f"agentbench: {spec.name}: vllm cannot run here ({unavailable()}); falling back to transformers")

    def stop_servers(self) -> None:
        self.broker.close()

    def preflight_models(self) -> None:
        from .backends import backend_class, preflight

        plugin_makes = bool(self.config.hook.pytest_agentbench_make_backend.get_hookimpls())
        for spec in self.run.models:
            try:
                backend_class(spec.backend)
            except AgentbenchError as exc:
                if not plugin_makes:  # a misspelt kind, with no plugin hook that could make it
                    raise AgentbenchError(f"model {spec.name!r} ({self.run.models_file}): {exc}") from None
            preflight(spec)

    # -- as results arrive ---------------------------------------------------------------------------
    def add_record(self, record: dict) -> None:
        if key(record) in self._seen:
            return
        self._seen.add(key(record))
        info = record.pop("backend_info", None)
        if info:
            self._backend_info.setdefault(record["model"], info)
        self.config.hook.pytest_agentbench_record(record=record, config=self.config)
        try:
            record = Record.check(record)
        except HarnessError as exc:
            record = {**{k: record.get(k) for k in ("model", "suite", "task", "sample")},
                      "schema": Record.model_fields["schema_"].default, "status": Status.INFRA.value,
                      "reason": str(exc)}
        self.records.append(record)
        if self._log is None:
            self._log = RecordLog(self.run.jsonl_path)
        self._log.append(record)

    def add_skip(self, info: dict) -> None:
        """An item skipped for a reason the gate must know: its suite's data is missing, or a replay file has no
        rows for its task."""
        if info.get("kind") == "unavailable":
            self.unavailable.setdefault(info["suite"], info["reason"])
        elif info.get("kind") == "no_rows":
            self.no_rows[(info["model"], info["suite"])].append(info["task"])

    # -- at the end ----------------------------------------------------------------------------------
    def finish(self, exitstatus: int) -> tuple[dict | None, int]:
        """Write the report; return it and the exit status the gate decides (pytest's own without a gate)."""
        self.stop_servers()
        if self._log is not None:
            self._log.close()
        if not self.records and not self.gate.active:
            return None, exitstatus
        results = aggregate(self.records)
        for result in results:
            result["sandbox"] = self.run.options.sandbox
            cls = suite_by_name(result["suite"])
            if cls is not None:
                mine = [r for r in self.records if (r["model"], r["suite"]) == (result["model"], result["suite"])]
                try:
                    extra = cls.summarize(mine)
                except Exception as exc:  # a suite's metrics bug must not cost the run its report
                    extra = {"error": one_line(exc)}
                if extra:
                    result["metrics"] = extra
            missing = self.no_rows.get((result["model"], result["suite"]))
            if missing:
                result["tasks_without_samples"] = sorted(set(missing))
        verdict = judge(results, self.gate, self.unavailable)
        comparison = verdict.pop("comparison", None)
        report = {"schema": REPORT_SCHEMA, "created_utc": self.started.isoformat(timespec="seconds"),
                  "results": results, "resources": resources_by_model(self.records), "gate": verdict,
                  "comparison": comparison, "run": self.metadata(),
                  "unavailable_suites": self.unavailable, "samples_file": str(self.run.jsonl_path)}
        self.config.hook.pytest_agentbench_report(report=report, config=self.config)
        write_json(self.run.json_path, report)
        if self.run.plot_path is not None and self.records:
            from .plots import plot_records

            plot_records(self.records, self.run.plot_path)
        if self.run.html_path is not None:
            from .htmlpage import write_run_page

            try:
                write_run_page(self.run.html_path, report, self.records, str(self.run.json_path),
                               self.run.options.baseline, self.gate.baseline)
            except (AgentbenchError, OSError, ValueError) as exc:  # the JSON report and the exit status stand
                import sys

                sys.stderr.write(f"agentbench: no HTML page: {one_line(exc)}\n")
        if exitstatus == 5 and self.resumed:  # everything was already done: answer as the full run would have
            exitstatus = 0 if all(r["status"] == Status.PASSED.value for r in self.records) else 1
        if exitstatus in (0, 1) and (self.gate.active or not verdict["ok"]):
            exitstatus = 0 if verdict["ok"] else 1
        return report, exitstatus

    def metadata(self) -> dict[str, Any]:
        opts = self.run.options
        used = {r["model"] for r in self.records}
        datasets: dict[str, str | None] = {}
        for r in sorted(self.records, key=record_key):
            datasets.setdefault(r["suite"], r.get("dataset_sha256"))
        bounds = {r.get("memory_bound") for r in self.records if r.get("memory_bound")}
        return {
            "pytest_agentbench": provenance.package_versions()["pytest-agentbench"],
            "packages": provenance.package_versions(),
            "git": provenance.git_state(self.run.invocation_dir),
            "machine": provenance.machine(),
            "args": list(self.config.invocation_params.args),
            "xdist_workers": getattr(self.config.option, "numprocesses", None) or 0,
            "samples": opts.samples, "seed": opts.seed, "sandbox": opts.sandbox,
            "sandbox_memory_bound": sorted(bounds),
            "models_file": str(self.run.models_file),
            "models": {m.name: {"spec": m.to_dict(), "params": asdict(self.run.params_for(m)),
                                "backend": self._backend_info.get(m.name)}
                       for m in self.run.models if m.name in used},
            "datasets_sha256": datasets,
            "serving": self.broker.notes,
        }


def resumed_keys(run: RunConfig) -> set[tuple]:
    """In every process (workers deselect what is done): keys of the samples an earlier run finished."""
    return {resume_key(r) for r in resumable(run)}
