"""Where results are gathered (the xdist controller, or the single process): records as they arrive, the report,
the gate. As pytest-xdist's DSession gathers what its workers send, this side only receives: records come with
each test report (`report.user_properties`), which pytest carries from the workers.

Nothing is written before the first item is about to run (a run refused at start touches no file); then the previous
run's report, records and traces move aside (storage.archive_run) unless this run resumes them. Every report says
how the run ended (`status`): complete, interrupted (N of M selected items done), or empty (0 samples, and why). A
file that cannot be written stops the run with one line; what was written stays valid for --agentbench-resume.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from .. import provenance
from ..backends.replay import regrade_source
from ..errors import AgentbenchError, AgentbenchWarning, HarnessError, one_line
from ..models import ReplaySpec, WeightsSpec
from ..outcome import Status
from ..results import records
from ..results.compare import load_baseline
from ..results.gate import GateConfig, judge
from ..results.records import key, resume_key
from ..results.report import record_key, resources_by_model, run_results
from ..results.storage import REPORT_SCHEMA, RecordLog, archive_run, check_writable, claim, write_json
from ..sanitize import for_terminal
from .config import RunConfig
from .shard import shard_block

SKIP_PROPERTY = "agentbench-skip"


def resumable(run: RunConfig) -> list[dict]:
    """The finished (non-infra) samples of an earlier run of this JSONL, for --agentbench-resume."""
    if not run.options.resume:
        return []
    claim(run.jsonl_path, "records", "per-sample records")
    return [r for r in records.read_records(run.jsonl_path) if r.get("status") != Status.INFRA.value]


class Controller:
    def __init__(self, run: RunConfig, config):
        self.run = run
        self.config = config
        claim(run.json_path, "report", "report")
        claim(run.jsonl_path, "records", "per-sample records")
        check_writable(run.json_path.parent, "report and records")
        if run.plot_path is not None:
            claim(run.plot_path, "png", "plot")
            check_writable(run.plot_path.parent, "plot")
        if run.html_path is not None:
            claim(run.html_path, "html", "HTML report")
            check_writable(run.html_path.parent, "HTML report")
        self.gate = self._gate()
        self.records: list[dict] = []
        self._seen: set[tuple] = set()
        self._log: RecordLog | None = None
        self._backend_info: dict[str, dict] = {}
        self._stray_said = False  # a hook's stray keys are warned about once
        from ..serving import Broker

        self.broker = run.broker = Broker(run, run.json_path.parent / "servers")  # the run's model servers
        self.unavailable: dict[str, str] = {}  # suite -> why it could not run
        self.no_rows: dict[tuple[str, str], list[str]] = defaultdict(list)  # (model, suite) -> tasks without rows
        self.started = datetime.now(timezone.utc)
        # How far the run got: benchmark items collected (before -k, -m, resume), items selected, node ids finished.
        self.collected: int | None = None
        self.selected: int | None = None
        self.done: set[str] = set()
        self.session = None  # set at session start (ControllerHooks)
        self.plan: dict | None = None  # a shard's view of the whole run's selection (session/shard.py)
        self.refused: str | None = None  # an xdist worker refused the run at collection (says it at the end)
        self.io_error: str | None = None  # a file of the run could not be written: the run stops
        self.previous_run: Path | None = None  # where the previous run's report and records were moved
        self._kept = resumable(run)
        self.resumed = len(self._kept)
        for rec in self._kept:
            self._seen.add(resume_key(rec))
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
        from ..results.compare import parse_model_map

        return GateConfig(
            fail_under=opts.fail_under,
            baseline=baseline,
            baseline_path=opts.baseline,
            max_drop=opts.max_drop,
            alpha=opts.alpha,
            strict=opts.strict,
            seed=opts.seed,
            model_map=parse_model_map(opts.model_map),
        )

    def check_serving(self, say) -> None:
        """Before any item: --serve ENGINE that cannot run here is one line; models whose backend falls back to
        another (vllm -> transformers) say so once. Servers themselves start when first needed (serving.Broker)."""
        from .. import serving

        for spec in self.run.models:
            engine, asked = self.run.serve_engine(spec)
            if engine is not None and asked and serving.missing(engine):
                raise AgentbenchError(f"--serve {engine}: {serving.missing(engine)}")
            if engine is not None and not serving.missing(engine):
                # a model the engine cannot serve: one line now, not N failures (an engine serves a WeightsSpec only)
                serving.check(cast(WeightsSpec, spec), engine)
                self.run.ran_as(spec)
            fallback = self.run.fallback(spec) if engine is None else None  # as ran_as decides it
            if fallback:
                instead, why = fallback
                self.broker.notes[spec.name] = {
                    "engine": spec.backend,
                    "fallback": f"in-process {instead}",
                    "reason": why,
                }
                say(f"agentbench: {spec.name}: {spec.backend} cannot run here ({why}); falling back to {instead}")

    def stop_servers(self) -> None:
        self.broker.close()

    def preflight_engines(self) -> None:
        """Under xdist, before the workers start: every engine of `--docker-host` (or the local one) answers and has
        the image, so a dead one is one line here instead of a worker that fails to start."""
        from .. import registry
        from ..plugin.options import docker_hosts

        opts = self.run.options
        if opts.sandbox != "docker":
            return
        sandbox = registry.sandboxes.get(opts.sandbox)
        hosts: list[str | None] = list(docker_hosts(opts.docker_host)) or [None]  # None: the local engine
        for host in hosts:
            sandbox.preflight(image=opts.sandbox_image, host=host)

    def preflight_models(self, say=None) -> None:
        """Each model's preflight; what it warns of (a pool's dead endpoint) is one line each through `say`."""
        import warnings

        from ..backends import backend_class, preflight

        plugin_makes = bool(self.config.hook.pytest_agentbench_make_backend.get_hookimpls())
        for spec in self.run.models:
            try:
                backend_class(spec.backend)
            except AgentbenchError as exc:
                if not plugin_makes:  # a misspelt kind, with no plugin hook that could make it
                    raise AgentbenchError(f"model {spec.name!r} ({self.run.models_file}): {exc}") from None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AgentbenchWarning)
                preflight(spec)
            for warning in caught:
                if issubclass(warning.category, AgentbenchWarning) and say is not None:
                    say(f"agentbench: WARNING {warning.message}")
                else:
                    warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
            if getattr(spec, "adapter", None):  # missing, or for another base model: one line now (adapters.py)
                from .. import adapters, serving

                engine = self.run.serve_engine(spec)[0]
                adapters.check(spec, engine if engine and not serving.missing(engine) else None)

    def say(self, line: str, **markup) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(for_terminal(line), **markup)
        else:
            import sys

            sys.stderr.write(for_terminal(line) + "\n")

    # -- as results arrive ---------------------------------------------------------------------------
    def _records_log(self) -> RecordLog:
        """The records file, opened at the first write: a resumed run's records rewritten (a half line a killed run
        left goes); otherwise the previous run's report and records moved aside first."""
        if self._log is None:
            if not self.run.options.resume:
                self.previous_run = archive_run(
                    self.run.json_path, self.run.jsonl_path, self.run.options.keep_runs, self.run.trace_dir
                )
            self._log = RecordLog(self.run.jsonl_path, records=self._kept if self.run.options.resume else ())
        return self._log

    def begin(self, selected: int) -> None:
        """The start-up checks passed and `selected` items are about to run: open the records file now (the previous
        run's report, records and traces move aside before any item can write a trace over one of them)."""
        self.selected = selected
        if selected and not self.io_error and not self.config.option.collectonly:
            try:
                self._records_log()
            except OSError as exc:
                raise AgentbenchError(
                    f"cannot write the records to {self.run.jsonl_path}: {exc.strerror or one_line(exc)}"
                ) from None

    def add_record(self, record: dict) -> None:
        # The key deselection uses (config_sha included): a resumed run never mixes settings (refused at collection,
        # plugin.pytest_collection_modifyitems), and a sample made with other settings is never taken for this one.
        if resume_key(record) in self._seen or self.io_error:  # io_error: stopping, nothing more is written
            return
        self._seen.add(resume_key(record))
        info = record.pop("backend_info", None)
        if info:
            self._backend_info.setdefault(record["model"], info)
        record.setdefault("plugins", {})
        self.config.hook.pytest_agentbench_record(record=record, config=self.config)
        stray = records.move_to_plugins(record)  # a hook's top-level keys: kept, where they belong
        if stray and not self._stray_said:
            self._stray_said = True
            warnings.warn(
                AgentbenchWarning(
                    f"a pytest_agentbench_record hook added {', '.join(map(repr, stray))} at the top of the record: "
                    "kept under record['plugins']; write them there (docs/records.md)"
                ),
                stacklevel=1,
            )
        try:
            record = records.Record.check(record)
        except HarnessError as exc:  # a hook broke it: the sample counts as infra, saying why
            record = records.infra_instead(record, str(exc))
        try:
            self._records_log().append(record)
        except OSError as exc:
            self.stop_with(f"cannot write the records to {self.run.jsonl_path}: {exc.strerror or one_line(exc)}")
            return
        self.records.append(record)

    def item_finished(self, nodeid: str) -> None:
        self.done.add(nodeid)

    def stop_with(self, problem: str) -> None:
        """A file of the run cannot be written: the run stops after the items in progress, and pytest's own
        "Interrupted:" line says why, once."""
        self.io_error = problem
        self.stop(
            f"agentbench: {problem}; the {len(self.records)} record(s) written stay valid: make room and run "
            "again with --agentbench-resume"
        )

    def stop(self, why: str) -> None:
        """Stop the run after the items in progress (pytest's own -x path; xdist's controller has its own flag)."""
        if self.session is not None:
            self.session.shouldstop = why
        dsession = self.config.pluginmanager.get_plugin("dsession")
        if dsession is not None:
            dsession.shouldstop = why

    def add_skip(self, info: dict) -> None:
        """An item skipped for a reason the gate must know: its suite's data is missing, or a replay file has no
        rows for its task."""
        if info.get("kind") == "unavailable":
            self.unavailable.setdefault(info["suite"], info["reason"])
        elif info.get("kind") == "no_rows":
            self.no_rows[(info["model"], info["suite"])].append(info["task"])

    # -- at the end ----------------------------------------------------------------------------------
    def status(self, exitstatus: int) -> tuple[str, str]:
        """How the run ended, and one line saying so: ("complete" | "interrupted" | "empty", line)."""
        from pytest import ExitCode

        done, selected = len(self.done), self.selected
        of = f"{done} of {selected} selected" if selected is not None else f"{done}"
        short = (
            self.io_error
            or exitstatus in (ExitCode.INTERRUPTED, ExitCode.INTERNAL_ERROR)
            or (selected is not None and done < selected)
        )
        if short:
            return (
                "interrupted",
                f"interrupted: {of} items done ({self._stopped_by(exitstatus)}); --agentbench-resume finishes the run",
            )
        if not self.records:
            return "empty", f"0 samples: {self._why_empty()}"
        return "complete", f"complete: {of} items done" + (
            f", {self.resumed} sample(s) resumed" if self.resumed else ""
        )

    def _stopped_by(self, exitstatus: int) -> str:
        from pytest import ExitCode

        dsession = self.config.pluginmanager.get_plugin("dsession")
        said = (
            self.io_error
            or getattr(dsession, "shouldstop", None)
            or getattr(self.session, "shouldstop", None)
            or getattr(self.session, "shouldfail", None)
        )
        if said:
            return str(said)
        said_by: dict[int, str] = {ExitCode.INTERRUPTED: "KeyboardInterrupt", ExitCode.INTERNAL_ERROR: "internal error"}
        return said_by.get(exitstatus, f"pytest exit status {int(exitstatus)}")

    def _why_empty(self) -> str:
        opt = self.config.option
        if self.selected == 0:
            by = [
                f"{flag} {value!r}"
                for flag, value in (("-k", getattr(opt, "keyword", "")), ("-m", getattr(opt, "markexpr", "")))
                if value
            ]
            collected = f"{self.collected} collected, " if self.collected is not None else ""
            return f"no benchmark item selected ({collected}all deselected{' by ' + ' and '.join(by) if by else ''})"
        why = [f"{suite}: {reason}" for suite, reason in sorted(self.unavailable.items())]
        for (model, suite), tasks in sorted(self.no_rows.items()):
            has = sorted(self.run.replay_rows.get(model, {}))
            shown = ", ".join(has[:3]) + (", ..." if len(has) > 3 else "")
            why.append(
                f"the replay file of {model} has no rows for the {len(set(tasks))} selected {suite} task(s)"
                + (f" (its rows are for {shown})" if has else "")
            )
        return "; ".join(why) or "every selected item was skipped or none finished"

    def finish(self, exitstatus: int) -> tuple[dict | None, int]:
        """Write the report; return it and the exit status the gate decides (pytest's own without a gate)."""
        from pytest import ExitCode

        self.stop_servers()
        if self.refused or exitstatus == ExitCode.USAGE_ERROR:  # refused at start: nothing is written
            return None, exitstatus
        ran_benchmark = self.records or self.unavailable or self.no_rows or self.collected or self.gate.active
        if not ran_benchmark or self.config.option.collectonly:  # no benchmark items (a project's own tests): no file
            return None, exitstatus
        try:
            self._records_log().close()  # the previous run moves aside first, also for a run without records
        except OSError as exc:
            return self._unwritten(exc, exitstatus)
        status, status_line = self.status(exitstatus)
        results = run_results(self.records, self.run.options.sandbox, self.no_rows)
        verdict = judge(results, self.gate, self.unavailable)
        comparison = verdict.pop("comparison", None)
        report = {
            "schema": REPORT_SCHEMA,
            "created_utc": self.started.isoformat(timespec="seconds"),
            "status": status,
            "status_line": status_line,
            "items": {"collected": self.collected, "selected": self.selected, "done": len(self.done)},
            "results": results,
            "resources": resources_by_model(self.records),
            "gate": verdict,
            "comparison": comparison,
            "run": self.metadata(),
            "unavailable_suites": self.unavailable,
            "samples_file": str(self.run.jsonl_path),
            "previous_run": str(self.previous_run) if self.previous_run else None,
        }
        if self.run.shard is not None:  # which shard of how many, and the whole run's plan (results/merge.py)
            report["shard"] = shard_block(self.run.shard, self.plan)
            if exitstatus == ExitCode.NO_TESTS_COLLECTED and self.selected == 0 and self.plan:
                exitstatus = ExitCode.OK  # a shard the hash gave no task: nothing to do is its success
        self.config.hook.pytest_agentbench_report(report=report, config=self.config)
        try:
            write_json(self.run.json_path, report)
        except OSError as exc:
            return self._unwritten(exc, exitstatus)
        self._derived_files(report)
        if exitstatus == 5 and self.resumed:  # everything was already done: answer as the full run would have
            exitstatus = 0 if all(r["status"] == Status.PASSED.value for r in self.records) else 1
        if status == "interrupted":  # a gate over part of the run never passes it
            exitstatus = exitstatus or ExitCode.INTERRUPTED
        elif exitstatus in (0, 1) and (self.gate.active or not verdict["ok"]):
            exitstatus = 0 if verdict["ok"] else 1
        return report, exitstatus

    def _unwritten(self, exc: OSError, exitstatus: int) -> tuple[None, int]:
        """The report cannot be written: one line; the exit status says the run's results are not all saved."""
        from pytest import ExitCode

        if not self.io_error:  # else the run's stop already said why
            problem = f"cannot write {exc.filename or self.run.json_path}: {exc.strerror or one_line(exc)}"
            self.say(
                f"agentbench: no report written: {problem}; the records written stay valid "
                "(--agentbench-resume finishes the run)",
                red=True,
            )
            self.io_error = problem
        return None, exitstatus if exitstatus not in (0, 1) else ExitCode.INTERRUPTED

    def _derived_files(self, report: dict) -> None:
        """The plot and the HTML page: a failure costs that file, one line, never the report or the exit status."""
        if self.run.plot_path is not None and self.records:
            from ..results.plots import plot_records

            try:
                plot_records(self.records, self.run.plot_path)
            except OSError as exc:
                self.say(f"agentbench: no plot: {one_line(exc)}", red=True)
        if self.run.html_path is not None:
            from ..results.page import write_run_page

            try:
                write_run_page(
                    self.run.html_path,
                    report,
                    self.records,
                    str(self.run.json_path),
                    self.run.options.baseline,
                    self.gate.baseline,
                )
            except (AgentbenchError, OSError, ValueError) as exc:  # the JSON report and the exit status stand
                import sys

                sys.stderr.write(f"agentbench: no HTML page: {one_line(exc)}\n")

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
            "samples": opts.samples,
            "seed": opts.seed,
            "sandbox": opts.sandbox,
            "sandbox_memory_bound": sorted(bounds),
            "models_file": str(self.run.models_file),
            "models": {
                m.name: {
                    "spec": m.to_dict(),
                    "params": asdict(self.run.params_for(m)),
                    "backend": self._backend_info.get(m.name),
                    **({"adapter": self.run.ran_as(m).get("adapter")} if getattr(m, "adapter", None) else {}),
                }
                for m in self.run.models
                if m.name in used
            },
            "datasets_sha256": datasets,
            "serving": self.broker.notes,
            "regraded_from": {
                # regrades: replay models only (RunConfig)
                m.name: regrade_source(Path(cast(ReplaySpec, m).path))
                for m in self.run.models
                if m.name in self.run.regrades
            },
        }


def resumed_records(run: RunConfig) -> dict[tuple, dict]:
    """In every process (workers deselect what is done): the samples an earlier run finished, by (model, suite, task,
    sample)."""
    return {key(r): r for r in resumable(run)}
