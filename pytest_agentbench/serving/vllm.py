"""`vllm`: `vllm serve` (GPU). Not executable on these CPU machines; its command line is tested, not its run."""

from __future__ import annotations

from ..errors import AgentbenchError
from ..models import WeightsSpec
from .engine import HOST, Engine, executable, tool_template


class VLLMServe(Engine):
    name = "vllm"

    def missing(self) -> str | None:
        from ..backends.vllm import unavailable

        return unavailable()

    def check(self, spec: WeightsSpec) -> None:
        if not (spec.path or spec.hf_id):
            raise AgentbenchError(f"model {spec.name!r}: vllm serves a hub id or a local folder (hf_id or path)")

    def command(self, spec: WeightsSpec, port: int, threads: int) -> list[str]:
        self.check(spec)
        argv = [
            executable("vllm"),
            "serve",
            str(spec.path or spec.hf_id),
            "--host",
            HOST,
            "--port",
            str(port),
            "--served-model-name",
            spec.name,
            "--dtype",
            spec.dtype,
            "--seed",
            "0",
        ]
        if spec.revision:
            argv += ["--revision", spec.revision]
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        engine_args = spec.options.model_dump(exclude_none=True)
        for key in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "quantization"):
            if key in engine_args:
                argv += ["--" + key.replace("_", "-"), str(engine_args[key])]
        if engine_args.get("enforce_eager"):
            argv.append("--enforce-eager")
        if spec.adapter:  # docs.vllm.ai "LoRA Adapters": requests name the adapter as their model; the base is apart
            from ..adapters import identity, vllm_max_lora_rank

            name = argv.index("--served-model-name") + 1
            argv[name] = f"{spec.name}:base"
            rank = vllm_max_lora_rank(identity(spec.adapter))
            argv += ["--enable-lora", "--lora-modules", f"{spec.name}={spec.adapter}", "--max-lora-rank", str(rank)]
        if engine_args.get("tool_call_parser"):  # native function calling: vllm serve parses the calls itself
            argv += ["--enable-auto-tool-choice", "--tool-call-parser", engine_args["tool_call_parser"]]
        template = tool_template(spec)
        if template is not None:
            argv += ["--chat-template", str(template)]
        return argv

    def identity(self, spec: WeightsSpec) -> dict:
        ident = super().identity(spec)
        if spec.options.tool_call_parser:
            ident["tool_call_parser"] = spec.options.tool_call_parser
        return ident
