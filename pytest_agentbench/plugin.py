"""pytest hooks, and nothing else: options, parametrization, records from reports, report and gate."""
from __future__ import annotations

import pytest

from . import hookspecs
from .errors import AgentbenchError, one_line
from .items import CASE_ARG, case_of, is_expression, params, select_by_keyword
from .session import SESSION_KEY, AgentbenchSession
from .sandbox import KINDS
from .tasks import Suite, suite_by_name

pytest_plugins = ("pytest_agentbench.fixtures",)
BUILTIN_SUITES = ("humaneval", "humanevalfix", "tool_use")


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser):
    g = parser.getgroup("agentbench", "benchmark code LLMs and agents (pytest-agentbench)")
    g.addoption("--model", dest="agentbench_model", default="smollm2-135m", metavar="NAME[,NAME...]",
                help="models.yaml alias, 'reference', 'replay:PATH', a local path or a hub id (default: smollm2-135m)")
    g.addoption("--models-file", dest="agentbench_models_file", default=None, metavar="PATH",
                help="models file (default: ./models.yaml, else the packaged copy)")
    g.addoption("--samples", dest="agentbench_samples", type=int, default=1, metavar="N",
                help="samples per task; feeds pass@k for k <= N (default 1)")
    g.addoption("--temperature", dest="agentbench_temperature", type=float, default=None,
                help="sampling temperature; 0 = greedy (default: the model's, else 0)")
    g.addoption("--max-new-tokens", dest="agentbench_max_new_tokens", type=int, default=None,
                help="generation budget per reply (default: the model's max_tokens, else 512)")
    g.addoption("--seed", dest="agentbench_seed", type=int, default=1234, help="base seed; sample i uses seed+i")
    g.addoption("--task-timeout", dest="agentbench_task_timeout", type=float, default=5.0, metavar="SECONDS",
                help="time limit for one run of candidate code; raised per task to 4x the reference solution's "
                     "runtime measured on this machine when that is longer (default 5)")
    g.addoption("--sandbox", dest="agentbench_sandbox", default="process", choices=KINDS,
                help="where candidate code runs: process (bubblewrap, default), docker, or unconfined "
                     "(no isolation: only for code you trust)")
    g.addoption("--sandbox-image", dest="agentbench_sandbox_image", default=None, metavar="IMAGE",
                help="image of the docker sandbox (default agentbench-python:bookworm, see scripts/docker-image.sh)")
    g.addoption("--sandbox-memory", dest="agentbench_sandbox_memory", type=int, default=1024, metavar="MB",
                help="memory limit per sandbox run (default 1024)")
    g.addoption("--sandbox-cpus", dest="agentbench_sandbox_cpus", type=float, default=1.0, metavar="N",
                help="CPU limit of the docker sandbox (default 1.0; the process sandbox limits CPU time instead)")
    g.addoption("--iters", dest="agentbench_iters", type=int, default=0, metavar="N",
                help="extra propose/execute/reflect rounds of the repair agent (default 0: one attempt, pass@1)")
    g.addoption("--humanevalfix-path", dest="humanevalfix_path", default=None, metavar="PATH",
                help="HumanEvalFix data as JSONL or parquet (default: datasets' bigcode/humanevalpack, python)")
    g.addoption("--humanevalfix-feedback", dest="humanevalfix_feedback", default="example",
                choices=("example", "hidden"),
                help="tests shown to the repair agent between rounds (default example: pass@1 stays honest)")
    g.addoption("--agentbench-json", dest="agentbench_json", default=".agentbench/report.json", metavar="PATH",
                help="report path; per-sample records go beside it as .jsonl")
    g.addoption("--agentbench-resume", dest="agentbench_resume", action="store_true",
                help="skip samples already finished in the JSONL beside the report (same model, task, sample "
                     "and settings); the report covers old and new")
    g.addoption("--agentbench-plot", dest="agentbench_plot", default=None, metavar="PATH.png",
                help="also render pass@1, runtime per task and tokens to a PNG (python -m pytest_agentbench.plots "
                     "redraws it from a JSONL)")
    g.addoption("--agentbench-baseline", dest="agentbench_baseline", default=None, metavar="PATH",
                help="an earlier report.json to gate pass@1 against")
    g.addoption("--agentbench-max-drop", dest="agentbench_max_drop", type=float, default=None, metavar="X",
                help="largest allowed absolute pass@1 drop against the baseline (default 0)")
    g.addoption("--agentbench-fail-under", dest="agentbench_fail_under", type=float, default=None, metavar="X",
                help="fail the run when pass@1 of any model/suite is below X")


def pytest_configure(config):
    config.addinivalue_line("markers", "agentbench(suite): run the test once per task of the suite")
    for name in BUILTIN_SUITES:
        config.addinivalue_line("markers", f"{name}: items of the {name} benchmark suite")
    try:
        bench = config.stash[SESSION_KEY] = AgentbenchSession(config)
    except AgentbenchError as exc:
        raise pytest.UsageError(f"agentbench: {exc}") from None
    if bench.is_controller:
        config.pluginmanager.register(ControllerHooks(bench), "agentbench-controller")
    if bench.sandbox_kind == "unconfined":
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            "--sandbox unconfined: model-written code runs with your privileges"), stacklevel=2)


def pytest_unconfigure(config):
    bench = config.stash.get(SESSION_KEY, None)
    if bench is not None:
        bench.close()


def pytest_report_header(config):
    bench = config.stash[SESSION_KEY]
    models = ", ".join(m.name for m in bench.models)
    lines = [f"agentbench: model {models}; samples {bench.samples}; sandbox {bench.sandbox_kind}; report {bench.json_path}"]
    if config.option.agentbench_resume:
        lines.append(f"agentbench: resuming: {len(bench.resumed)} sample(s) already done in {bench.jsonl_path}")
    if bench.sandbox_kind == "unconfined":
        lines.append("agentbench: WARNING --sandbox unconfined: model-written code runs with your privileges")
    return lines


def pytest_collection_finish(session):
    """Refuse to start when the chosen sandbox cannot run here (one line, before any model loads)."""
    if any(case_of(item) for item in session.items):
        try:
            session.config.stash[SESSION_KEY].preflight()
        except AgentbenchError as exc:
            raise pytest.UsageError(f"agentbench: {exc}") from None


def _suite_of(marker, config) -> Suite:
    target = marker.args[0] if marker.args else marker.kwargs.get("suite")
    if isinstance(target, Suite):
        return target
    cls = target if isinstance(target, type) and issubclass(target, Suite) else \
        suite_by_name(target) if isinstance(target, str) else None
    if cls is None:
        raise pytest.UsageError(f"agentbench: unknown suite {target!r} in @pytest.mark.agentbench")
    try:
        return cls.from_options(config.getoption)
    except ValueError as exc:
        raise pytest.UsageError(f"agentbench: suite {cls.name}: {exc}") from None


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("agentbench")
    if marker is None or CASE_ARG not in metafunc.fixturenames:
        return
    bench = metafunc.config.stash[SESSION_KEY]
    suite = _suite_of(marker, metafunc.config)
    for name in (suite.name, *suite.markers):  # so -m works without a warning for third-party suites
        metafunc.config.addinivalue_line("markers", f"{name}: items of the {suite.name} suite")
    try:
        tasks = bench.tasks(suite)
    except AgentbenchError as exc:
        raise pytest.UsageError(f"agentbench: {exc}") from None
    for name in sorted({m for task in tasks for m in task.markers} - set(suite.markers)):
        metafunc.config.addinivalue_line("markers", f"{name}: tasks of the {suite.name} suite")
    metafunc.parametrize(CASE_ARG, params(bench.models, suite, tasks, bench.samples))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """-k is evaluated here, once, with exact task ids (pytest's own -k is held back while it runs)."""
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
    bench = config.stash[SESSION_KEY]
    if bench.resumed:
        done = {id(item) for item in items if case_of(item) and bench.is_done(case_of(item))}
        if done:
            config.hook.pytest_deselected(items=[item for item in items if id(item) in done])
            items[:] = [item for item in items if id(item) not in done]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    case = case_of(item)
    if case is not None and report.when == "setup" and report.failed \
            and not any(k == "agentbench" for k, _ in report.user_properties):
        exc = call.excinfo.value if call.excinfo else None
        reason = str(exc) if isinstance(exc, pytest.fail.Exception) else one_line(exc) if exc else "setup failed"
        report.user_properties.append(("agentbench", item.config.stash[SESSION_KEY].infra_record(case, reason)))
    return report


class ControllerHooks:
    """Hooks that run only where results are gathered (the xdist controller, or the single process)."""

    def __init__(self, bench: AgentbenchSession):
        self.bench = bench
        self.report: dict | None = None

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.failed):
            records = [value for key, value in report.user_properties if key == "agentbench"]
            if records:
                self.bench.add_record(dict(records[-1]))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.report, session.exitstatus = self.bench.finish(int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter):
        from .report import summary_lines

        if not self.report:
            return
        tr = terminalreporter
        tr.write_sep("=", "agentbench")
        for line in summary_lines(self.report["results"]):
            tr.write_line(line)
        for r in self.report["results"]:
            overall = r.get("metrics", {}).get("overall")
            if overall and "tool_selection_accuracy" in overall:
                tr.write_line(f"{r['model']}/{r['suite']}: correctness {overall['correctness']:.3f}, tool selection "
                              f"{overall['tool_selection_accuracy']:.3f}, tool calls/task "
                              f"{overall['tool_calls_per_task']:.2f}, unnecessary calls {overall['unnecessary_tool_calls']}")
        tr.write_line(f"report: {self.bench.json_path}  samples: {self.report['samples_file']}"
                      + (f"  plot: {self.bench.plot_path}" if self.bench.plot_path else ""))
        for line in self.report["gate"]["lines"]:
            tr.write_line(f"gate: {line}", red=line.startswith("FAIL"), green=line.startswith("PASS"))
