"""What a run is, as every process sees it (the xdist controller and each worker build the same one at start):
validated options, the models, generation parameters, and for replayed models how many samples each task has.
Cheap: no model, dataset or sandbox is touched here.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .errors import AgentbenchError
from .models import ModelSpec, default_models_file, load_models_file, resolve
from .options import RunOptions
from .sandbox import SandboxLimits
from .tasks import Params


class RunConfig:
    def __init__(self, config):
        self.options = opts = RunOptions.from_config(config)
        self.is_controller = not hasattr(config, "workerinput")
        self.invocation_dir = Path(config.invocation_params.dir)
        self.models_file = Path(opts.models_file).expanduser() if opts.models_file else \
            default_models_file(self.invocation_dir)
        self.specs = load_models_file(self.models_file)
        names = [n.strip() for n in opts.model.split(",") if n.strip()]
        self.models: list[ModelSpec] = [resolve(name, self.specs, self.models_file) for name in dict.fromkeys(names)]
        self.samples = opts.samples or 1
        self.json_path = self.invocation_dir / opts.report
        self.jsonl_path = self.json_path.with_suffix(".jsonl")
        self.plot_path = self.invocation_dir / opts.plot if opts.plot else None
        self.trace_dir = self.invocation_dir / opts.traces
        self.limits = SandboxLimits(timeout=opts.task_timeout, memory_mb=opts.sandbox_memory,
                                    cpus=opts.sandbox_cpus, disk_mb=opts.sandbox_disk)
        self.replay_rows: dict[str, Counter] = {}
        for spec in self.models:
            if spec.backend == "replay":
                from .backends.replay import read_replay_file

                path = Path(spec.path)
                if path.resolve() == self.jsonl_path.resolve():
                    raise AgentbenchError(f"the replay file {path} is where this run would write its samples: "
                                          "give --agentbench-json another path")
                self.replay_rows[spec.name] = Counter(row["task_id"] for row in read_replay_file(path))

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
