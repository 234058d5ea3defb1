"""What a run is, as every process sees it (the xdist controller and each worker build the same one at start):
validated options, the models, generation parameters, and for replayed models how many samples each task has.
Cheap: no model, dataset or sandbox is touched here.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ..errors import AgentbenchError
from ..models import ModelSpec, WeightsSpec, default_models_file, load_models_file, resolve
from ..plugin.options import RunOptions, docker_host_of, rootdir_moved
from ..sandbox import SandboxLimits
from ..task import Params
from .shard import parse_shard


class RunConfig:
    def __init__(self, config):
        self.options = opts = RunOptions.from_config(config)
        self.is_controller = not hasattr(config, "workerinput")
        # `--agentbench-json PATH` with a space can move pytest's rootdir (options.rootdir_moved): said at start
        self.rootdir_moved = rootdir_moved(config) if self.is_controller else None
        self.invocation_dir = Path(config.invocation_params.dir)
        self.models_file = (
            Path(opts.models_file).expanduser() if opts.models_file else default_models_file(self.invocation_dir)
        )
        self.specs = load_models_file(self.models_file)
        # --agentbench-merge runs no model: the shards' reports say which ones ran (results/merge.py)
        names = [] if opts.merge else [n.strip() for n in opts.model.split(",") if n.strip()]
        self.models: list[ModelSpec] = [resolve(name, self.specs, self.models_file) for name in dict.fromkeys(names)]
        self.samples = opts.samples or 1
        # --agentbench-shard I/N: this run's share of the tasks; its files are named by shard (session/shard.py)
        self.shard = parse_shard(opts.shard, opts.shard_var)
        if self.shard is not None and opts.merge:
            raise AgentbenchError("--agentbench-merge merges shards: it cannot be one (drop --agentbench-shard)")
        suffix = self.shard.suffix if self.shard is not None else ""
        named = lambda p: p.with_name(p.stem + suffix + p.suffix)
        self.json_path = named(self.invocation_dir / opts.report)
        self.jsonl_path = self.json_path.with_suffix(".jsonl")
        self.plot_path = named(self.invocation_dir / opts.plot) if opts.plot else None
        self.html_path = named(self.invocation_dir / opts.html) if opts.html else None
        self.otlp_file_path = named(self.invocation_dir / opts.otlp_file) if opts.otlp_file else None
        self.trace_dir = self.invocation_dir / opts.traces
        self.limits = SandboxLimits(
            timeout=opts.task_timeout, memory_mb=opts.sandbox_memory, cpus=opts.sandbox_cpus, disk_mb=opts.sandbox_disk
        )
        # the docker sandbox's engine for this process (--docker-host: worker i uses engine i mod n)
        self.docker_host = docker_host_of(opts.docker_host, os.environ.get("PYTEST_XDIST_WORKER", ""))
        if opts.docker_host and opts.sandbox != "docker":
            raise AgentbenchError("--docker-host is for --sandbox docker")
        self.replay_rows: dict[str, Counter] = {}
        self.regrades: dict[str, dict] = {}  # replay models whose file is a run's records: that run, for the report
        self._ran_as: dict[str, dict] = {}
        # Model servers of this run (serving.py): the controller's Broker starts them when first asked; xdist workers
        # ask it at the address their workerinput carries.
        self.broker = None
        self.broker_address: dict | None = getattr(config, "workerinput", {}).get("agentbench_broker")
        for spec in self.models:
            if spec.backend == "replay":
                from ..backends.replay import read_replay_file

                path = Path(spec.path)
                if path.resolve() == self.jsonl_path.resolve():
                    raise AgentbenchError(
                        f"the replay file {path} is where this run would write its samples: "
                        "give --agentbench-json another path"
                    )
                rows = read_replay_file(path)
                self.replay_rows[spec.name] = Counter(row["task_id"] for row in rows)
                if rows[0].get("record") is not None:
                    self.regrades[spec.name] = {"records": str(path), "model": rows[0]["record"].get("model")}

    def serve_engine(self, spec: ModelSpec) -> tuple[str | None, bool]:
        """(engine, asked): the engine that should serve `spec` this run, and whether --serve named it (an engine
        that cannot run is then an error; one that models.yaml names falls back to in-process with a warning)."""
        wanted = self.options.serve
        if wanted == "off" or not isinstance(spec, WeightsSpec):  # a server loads weights: not an endpoint or data
            return None, False
        if wanted == "auto":
            return spec.serve, False
        return wanted, True

    def ran_as(self, spec: ModelSpec) -> dict:
        """The backend that runs `spec` in this run after any serving or fallback decision, as every process sees it
        (part of each sample's config_sha, so a served run never resumes an in-process one)."""
        if spec.name not in self._ran_as:
            from .. import serving

            engine = self.serve_engine(spec)[0]
            if engine is not None and isinstance(spec, WeightsSpec) and serving.missing(engine) is None:
                ran = {"backend": "openai", "served": serving.identity(spec, engine)}
            elif instead := self.fallback(spec):
                ran = {"backend": instead[0], "fallback_from": spec.backend}
            else:
                ran = {"backend": spec.backend}
            adapter = getattr(spec, "adapter", None)
            if adapter:  # the adapter's content, not its path (rebuilt in place: not resumed)
                from ..adapters import identity

                ran["adapter"] = identity(adapter)
            self._ran_as[spec.name] = ran
        return self._ran_as[spec.name]

    @staticmethod
    def fallback(spec: ModelSpec) -> tuple[str, str] | None:
        """(the backend that runs `spec` instead, why) when its own cannot run here (vllm without CUDA), else None."""
        from .. import registry
        from ..errors import AgentbenchError

        try:
            cls = registry.backends.find(spec.backend)
        except AgentbenchError:
            return None
        if cls is None or not cls.fallback:
            return None
        why = cls.unavailable()
        return (cls.fallback, why) if why else None

    def params_for(self, model: ModelSpec) -> Params:
        opts = self.options
        temperature = opts.temperature
        if temperature is None:
            temperature = model.temperature if model.temperature is not None else 0.0
        max_new = opts.max_new_tokens if opts.max_new_tokens is not None else model.max_tokens or 512
        return Params(temperature=temperature, max_new_tokens=max_new, seed=opts.seed, task_timeout=opts.task_timeout)

    def samples_for(self, model: ModelSpec, task_id: str) -> int:
        """Samples of one task: --samples, or for a replay file every row it has for the task (at most --samples)."""
        rows = self.replay_rows.get(model.name)
        if rows is None:
            return self.samples
        have = rows.get(task_id, 0)
        return min(have, self.options.samples) if self.options.samples else have
