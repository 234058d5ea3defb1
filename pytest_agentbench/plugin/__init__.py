"""pytest hooks, and nothing else: options, parametrization, records from reports, report and gate."""

from __future__ import annotations

import types

import pytest

from .. import registry
from ..errors import AgentbenchError, one_line
from ..sanitize import for_terminal
from ..session.config import RunConfig
from ..session.controller import SKIP_PROPERTY, Controller, resumed_records
from ..session.shard import make_plan
from ..session.shard import select as shard_select
from ..session.worker import Worker, quiet_when_orphaned
from ..suites.base import Suite, suite_by_name
from ..timeouts import item_alarm
from . import hookspecs
from .items import CASE_ARG, case_of, is_expression, params, select_by_keyword
from .live import LiveView, failures_block_without, leaves_out_failures
from .options import add_options
from .state import STATE, State

pytest_plugins = ("pytest_agentbench.plugin.fixtures",)


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser, pluginmanager):
    add_options(parser)
    pluginmanager.__dict__["_agentbench_parser"] = parser


def pytest_plugin_registered(plugin, manager):
    """A conftest (or plugin) registered a suite with options of its own: they are declared before pytest parses the
    command line (initial conftests load before that)."""
    parser = manager.__dict__.get("_agentbench_parser")
    if parser is not None and isinstance(plugin, types.ModuleType):
        add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "agentbench(suite): run the test once per task of the suite")
    for name in registry.suites.names():
        config.addinivalue_line("markers", f"{name}: items of the {name} benchmark suite")
    try:
        run = RunConfig(config)
        controller = Controller(run, config) if run.is_controller else None
        config.stash[STATE] = State(run, Worker(run, config.hook), controller, resumed_records(run))
        exporter = None
        if controller is not None and (run.options.otlp or run.options.otlp_file) and not config.option.collectonly:
            from ..results.otel import OtelExport

            exporter = OtelExport(run)
    except AgentbenchError as exc:
        raise pytest.UsageError(f"agentbench: {for_terminal(str(exc))}") from None
    if controller is not None:
        config.pluginmanager.register(ControllerHooks(controller), "agentbench-controller")
    else:
        quiet_when_orphaned(config)
    if exporter is not None:  # spans of each sample, as records arrive (results/otel.py)
        config.pluginmanager.register(exporter, "agentbench-otel")
    warning = _sandbox_warning(run)
    if warning:
        config.issue_config_time_warning(pytest.PytestConfigWarning(warning), stacklevel=2)
    if run.rootdir_moved:
        config.issue_config_time_warning(pytest.PytestConfigWarning(f"agentbench: {run.rootdir_moved}"), stacklevel=2)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """--agentbench-merge GLOB: merge shard reports (results/merge.py) instead of running items; the gate's options
    and --agentbench-json/--agentbench-html apply to the merged report."""
    if not config.getoption("agentbench_merge") or hasattr(config, "workerinput"):
        return None
    from ..results.merge import lines, merge

    config._do_configure()  # as pytest's own --markers does: the plugin's state, then no session
    try:
        state = config.stash[STATE]
        run = state.run
        try:
            report, status = merge(
                run.options.merge, run.json_path, state.controller.gate, run.html_path, run.options.keep_runs
            )
        except AgentbenchError as exc:
            raise pytest.UsageError(f"agentbench: {for_terminal(str(exc))}") from None
        for line in lines(report, run.json_path):
            print(line)
        return status
    finally:
        config._ensure_unconfigure()


def _sandbox_warning(run: RunConfig) -> str | None:
    """The chosen sandbox's own warning (unconfined: no isolation), as `--sandbox NAME: warning`."""
    try:
        said = registry.sandboxes.get(run.options.sandbox).warning
    except AgentbenchError:
        return None
    return f"--sandbox {run.options.sandbox}: {said}" if said else None


def pytest_unconfigure(config):
    state = config.stash.get(STATE, None)
    if state is not None:
        state.worker.close()


def pytest_report_header(config):
    state = config.stash[STATE]
    run = state.run
    models = ", ".join(for_terminal(m.name) for m in run.models)
    samples = run.options.samples or ("each replay row" if run.replay_rows else 1)
    lines = [f"agentbench: model {models}; samples {samples}; sandbox {run.options.sandbox}; report {run.json_path}"]
    if run.shard is not None:
        lines.append(f"agentbench: shard {run.shard} (the tasks whose id hashes to it; merge with agentbench merge)")
    if run.options.resume:
        lines.append(f"agentbench: resuming: {len(state.resumed)} sample(s) already done in {run.jsonl_path}")
    for name, source in run.regrades.items():
        lines.append(
            f"agentbench: re-grading {for_terminal(name)}: the replies of {for_terminal(str(source['model']))} "
            "as recorded, graded afresh (the model is not asked)"
        )
    warning = _sandbox_warning(run)
    if warning:
        lines.append(f"agentbench: WARNING {warning}")
    if run.rootdir_moved:
        lines.append(f"agentbench: WARNING {run.rootdir_moved}")
    return lines


def pytest_collection_finish(session):
    """Refuse to start when the chosen sandbox cannot run here (one line, before any model loads)."""
    state = session.config.stash[STATE]
    try:
        if any(case_of(item) for item in session.items):
            state.worker.preflight()
        if state.controller is not None:
            state.controller.begin(len(session.items))
    except AgentbenchError as exc:
        raise pytest.UsageError(f"agentbench: {for_terminal(str(exc))}") from None


def _suite_of(marker, config) -> Suite:
    target = marker.args[0] if marker.args else marker.kwargs.get("suite")
    cls = (
        type(target)
        if isinstance(target, Suite)
        else target
        if isinstance(target, type) and issubclass(target, Suite)
        else suite_by_name(target)
        if isinstance(target, str)
        else None
    )
    if cls is None:
        raise pytest.UsageError(f"agentbench: unknown suite {target!r} in @pytest.mark.agentbench")
    try:
        suite = target if isinstance(target, Suite) else cls.from_options(config.getoption)
        suite.configure(config.getoption)
    except ValueError as exc:
        raise pytest.UsageError(f"agentbench: suite {cls.name}: {exc}") from None
    return suite


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("agentbench")
    if marker is None or CASE_ARG not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    suite = _suite_of(marker, metafunc.config)
    for name in (suite.name, *suite.markers):  # so -m works without a warning for third-party suites
        metafunc.config.addinivalue_line("markers", f"{name}: items of the {suite.name} suite")
    try:
        tasks = state.worker.tasks(suite)
    except AgentbenchError as exc:  # refused once collection is done (a raise here is a collection error)
        state.refusal = state.refusal or str(exc)
        tasks = []
    for name in sorted({m for task in tasks for m in task.markers} - set(suite.markers)):
        metafunc.config.addinivalue_line("markers", f"{name}: tasks of the {suite.name} suite")
    metafunc.parametrize(CASE_ARG, params(state.run.models, suite, tasks, state.run.samples_for))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """-k is evaluated here, once, with exact task ids (pytest's own -k is held back while it runs); samples an earlier
    run finished are deselected (--agentbench-resume)."""
    state = config.stash[STATE]
    collected = sum(1 for item in items if case_of(item))
    refusal = state.refusal or (_resume_conflict(state, items) if state.resumed else None)
    if refusal:
        _refuse(config, items, refusal)
        yield
        return
    keyword = config.option.keyword
    take_over = bool(keyword.strip()) and any(case_of(item) for item in items) and is_expression(keyword)
    if take_over:
        config.option.keyword = ""
    try:
        yield
    finally:
        config.option.keyword = keyword
    if take_over:
        kept, dropped = select_by_keyword(items, keyword.strip())
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
    plan = None
    if state.run.shard is not None:  # the whole run's selection, then this shard's part of it (session/shard.py)
        plan = make_plan(map(case_of, items))
        kept, dropped = shard_select(items, state.run.shard, case_of)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
    if state.resumed:
        done = {id(item) for item in items if case_of(item) and case_of(item).key() in state.resumed}
        if done:
            config.hook.pytest_deselected(items=[item for item in items if id(item) in done])
            items[:] = [item for item in items if id(item) not in done]
    if state.controller is not None:
        state.controller.collected = collected
        state.controller.plan = plan
    else:  # an xdist worker: the controller learns it when the worker is done (ControllerHooks.pytest_testnodedown)
        getattr(config, "workeroutput", {})["agentbench"] = {"collected": collected, "plan": plan}


def _resume_conflict(state, items) -> str | None:
    """A resumed run whose finished samples were made with other settings: one line, or None. Checked on every item
    collected, before -k: deselection and the records both key on the settings (config_sha), so a resumed run never
    drops its new results or mixes settings in one report."""
    changed = [
        (case, what)
        for case in map(case_of, items)
        if case is not None and case.key() in state.resumed
        for what in [state.worker.settings_change(case, state.resumed[case.key()])]
        if what
    ]
    if not changed:
        return None
    case, what = changed[0]
    return (
        f"--agentbench-resume: {len(changed)} finished sample(s) in {state.run.jsonl_path} were made with other "
        f"settings ({what}, e.g. {case.task.id} sample {case.sample}): resume with the settings they were made "
        "with, or run without --agentbench-resume (that run is then kept under runs/)"
    )


def _refuse(config, items, message: str) -> None:
    """Stop the run before any item, with one line. An xdist worker cannot (its errors are the controller's
    INTERNALERROR): it selects nothing and the controller says the line (ControllerHooks.pytest_sessionfinish)."""
    if not hasattr(config, "workerinput"):
        raise pytest.UsageError(f"agentbench: {for_terminal(message)}")
    config.workeroutput.setdefault("agentbench", {})["refused"] = message
    config.hook.pytest_deselected(items=list(items))
    items[:] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    case = case_of(item)
    if (
        case is not None
        and report.when == "setup"
        and report.failed
        and not any(k == "agentbench" for k, _ in report.user_properties)
    ):
        exc = call.excinfo.value if call.excinfo else None
        reason = str(exc) if isinstance(exc, pytest.fail.Exception) else one_line(exc) if exc else "setup failed"
        record = item.config.stash[STATE].worker.infra_record(case, reason)
        report.user_properties.append(("agentbench", record))
    return report


class ControllerHooks:
    """Hooks that run only where results are gathered (the xdist controller, or the single process)."""

    def __init__(self, controller: Controller):
        self.controller = controller
        self.report: dict | None = None
        self.live = LiveView(controller, controller.config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        """Before xdist starts its workers: an endpoint that cannot serve the run is one line, not N failures."""
        self.controller.session = session
        if session.config.option.collectonly:
            return
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        say = (lambda line: tr.write_line(for_terminal(line))) if tr is not None else print
        try:
            self.controller.preflight_models(say)
            self.controller.check_serving(say)
            if session.config.pluginmanager.hasplugin("dsession"):  # a worker's failed check would be an INTERNALERROR
                self.controller.preflight_engines()
        except AgentbenchError as exc:
            self.controller.stop_servers()
            raise pytest.UsageError(f"agentbench: {for_terminal(str(exc))}") from None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        """pytest-xdist: each worker learns where to ask for this run's model servers."""
        run = self.controller.run
        if any(run.serve_engine(spec)[0] for spec in run.models):
            node.workerinput["agentbench_broker"] = self.controller.broker.address()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        said = getattr(node, "workeroutput", {}).get("agentbench") or {}
        if said.get("collected") is not None:
            self.controller.collected = said["collected"]
        if said.get("plan") is not None and self.controller.plan is None:
            self.controller.plan = said["plan"]
        self.controller.refused = self.controller.refused or said.get("refused")

    def pytest_unconfigure(self, config):
        self.live.stop()
        self.controller.stop_servers()  # Ctrl-C and errors: never leave a server behind

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session):
        """The live view (live.py) runs while items run: a bar on a terminal, a line every N seconds otherwise."""
        self.live.start(session)
        try:
            return (yield)
        finally:
            self.live.stop()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.live.set_total(len(ids))
        if self.controller.selected is None:  # every worker collects the same items; none has run yet
            try:
                self.controller.begin(len(ids))
            except AgentbenchError as exc:
                self.controller.stop_with(str(exc))

    def pytest_runtest_logstart(self, nodeid):
        self.live.item_started(nodeid)

    def pytest_runtest_logfinish(self, nodeid):
        self.live.item_finished(nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        if (
            report.when == "call"
            or (report.when == "setup" and not report.passed)
            or report.when not in ("setup", "call", "teardown")
        ):  # xdist reports a crashed worker's item as "???"
            self.controller.item_finished(report.nodeid)
        if report.when == "call" or (report.when == "setup" and report.failed):
            records = [value for key, value in report.user_properties if key == "agentbench"]
            if records:
                self.controller.add_record(dict(records[-1]))
        elif report.skipped:
            for key, value in report.user_properties:
                if key == SKIP_PROPERTY:
                    self.controller.add_skip(value)
        self.live.report(report)
        # The whole record is the report's business: --junitxml (which reads every phase's report after this hook)
        # keeps the short agentbench_* properties.
        report.user_properties = [(k, v) for k, v in report.user_properties if k not in ("agentbench", SKIP_PROPERTY)]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.report, session.exitstatus = self.controller.finish(int(exitstatus))
        if self.controller.refused and exitstatus != pytest.ExitCode.USAGE_ERROR:
            # xdist's workers refused the run (_refuse): said here, after xdist's own sessionfinish stopped them
            raise pytest.UsageError(f"agentbench: {for_terminal(self.controller.refused)}")

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_terminal_summary")
    def pytest_terminal_summary_wrapper(self, terminalreporter):
        """pytest's FAILURES block leaves out benchmark items (the agentbench section sums them up by reason)
        unless --tb names a style; its -r short summary is untouched."""
        with failures_block_without(terminalreporter, self.live.benchmark_items):
            return (yield)

    def pytest_terminal_summary(self, terminalreporter):
        from ..results.report import failure_lines, resource_lines, summary_lines

        tr = terminalreporter
        controller = self.controller
        for (model, suite), tasks in sorted(controller.no_rows.items()):
            shown = ", ".join(for_terminal(t) for t in tasks[:8]) + (", ..." if len(tasks) > 8 else "")
            tr.write_line(
                f"agentbench: the replay file of {for_terminal(model)} has no rows for {len(tasks)} selected "
                f"{suite} task(s), skipped: {shown}",
                yellow=True,
            )
        if not self.report:
            return
        tr.write_sep("=", "agentbench")
        if self.report["status"] != "complete":
            tr.write_line(f"agentbench: {for_terminal(self.report['status_line'])}", yellow=True)
        if self.report["results"]:
            for line in summary_lines(self.report["results"]):
                tr.write_line(line)
        for line in failure_lines(
            controller.records, left_out=leaves_out_failures(tr.config, self.live.benchmark_items)
        ):
            tr.write_line(line)
        for r in self.report["results"]:
            cls = suite_by_name(r["suite"])
            if cls is not None and r.get("metrics") and "error" not in r["metrics"]:
                for line in cls.terminal_lines(r["metrics"]):
                    tr.write_line(f"{for_terminal(r['model'])}/{r['suite']}: {line}")
        for line in resource_lines(self.report.get("resources") or {}):
            tr.write_line(line)
        run = controller.run
        tr.write_line(
            f"report: {run.json_path}  samples: {self.report['samples_file']}"
            + (f"  plot: {run.plot_path}" if run.plot_path else "")
            + (f"  previous run: {self.report['previous_run']}" if self.report.get("previous_run") else "")
        )
        for line in self.report["gate"]["lines"]:
            tr.write_line(f"gate: {line}", red=line.startswith("FAIL"), green=line.startswith("PASS"))


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item, settings):
    """pytest-timeout's --timeout on a benchmark item with its signal method: one line, not every thread's stack."""
    import threading

    if (
        case_of(item) is None
        or settings.method != "signal"
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    item_alarm(item, settings.timeout)
    return True
