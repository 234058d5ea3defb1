"""The Engine interface: what serving needs to know about one kind of model server (its command line, where it
answers when ready, its environment, what decides its replies), and the lookup of an engine by name
(registry.engines). One engine per module: llama_cpp.py, transformers.py, vllm.py."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .. import registry
from ..models import WeightsSpec

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Plan:
    """How to start one engine for one model: the command line, and where it will answer."""

    engine: str
    argv: list[str]
    port: int
    served_name: str
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


class Engine:
    """One kind of model server, started on loopback for a model of models.yaml (`serve: NAME`, `--serve NAME`) and
    reached through its OpenAI-compatible API. Register a subclass with `@registry.engines.register("name")`."""

    name: ClassVar[str] = ""
    health_path: ClassVar[str] = "/health"  # answers HTTP 200 once the model is loaded
    runs_gguf: ClassVar[bool] = False  # runs a GGUF file's own quantization (else a GGUF is dequantized first)

    def missing(self) -> str | None:
        """Why this engine cannot run here (a one-line install hint), or None."""
        return None

    def refuse(self, spec: WeightsSpec) -> str | None:
        """What the model's settings lack for this engine, found without looking at any file (models.yaml is
        refused at load), or None; said after `serve: NAME`."""
        return None

    def check(self, spec: WeightsSpec) -> None:
        """What `command` would refuse, found cheaply before any item runs (nothing is loaded or started)."""

    def command(self, spec: WeightsSpec, port: int, threads: int) -> list[str]:
        """The command line that serves `spec` on HOST:port."""
        raise NotImplementedError

    def served_name(self, spec: WeightsSpec) -> str:
        """The model's name in the server's API."""
        return spec.name

    def env(self, spec: WeightsSpec) -> dict[str, str]:
        """Environment variables the server gets on top of this process's."""
        return {}

    def identity(self, spec: WeightsSpec) -> dict[str, Any]:
        """What, besides the engine's name and the model's, decides the replies (its version, the weights): part of
        the generation cache's key and of config_sha. Never the port or the pid."""
        return {"weights": spec.hf_id or spec.path, "revision": spec.revision, "dtype": spec.dtype}

    def plan(self, spec: WeightsSpec, port: int | None = None, threads: int | None = None) -> Plan:
        port = port or free_port()
        argv = self.command(spec, port, threads or os.cpu_count() or 1)
        return Plan(self.name, argv, port, self.served_name(spec), self.health_path, self.env(spec))


def engine(name: str) -> Engine:
    """The engine registered as `name`; unknown: one line listing the known ones."""
    return registry.engines.get(name)()


def missing(name: str) -> str | None:
    """Why engine `name` cannot run here (a one-line install hint), or None."""
    return engine(name).missing()


def check(spec: WeightsSpec, name: str) -> None:
    tool_template(spec)
    engine(name).check(spec)


def plan(spec: WeightsSpec, name: str, port: int | None = None, threads: int | None = None) -> Plan:
    """The command line that serves `spec` with engine `name` on loopback."""
    return engine(name).plan(spec, port=port, threads=threads)


def identity(spec: WeightsSpec, name: str) -> dict[str, Any]:
    """What decides the replies of `spec` served by engine `name`: the engine and its version, the weights'
    immutable name. The port, pid and timeouts are not in it (the generation cache and config_sha stay stable across
    runs)."""
    ident = {"kind": "served", "engine": name, "model": spec.name, **engine(name).identity(spec)}
    from ..backends.native import tool_template_sha256

    template = tool_template_sha256(spec)
    if template is not None:  # it renders every prompt: part of what decides the replies
        ident["tool_template"] = "sha256:" + template
    adapter = getattr(spec, "adapter", None)
    if adapter:  # a converted GGUF LoRA is named by its PEFT source (adapters.py)
        from ..adapters import identity as adapter_identity

        ident["adapter"] = adapter_identity(adapter)
    return ident


def tool_template(spec: WeightsSpec) -> Path | None:
    """The model's tool-aware chat template (models.yaml `tool_template`), or None (native function calling)."""
    from ..backends.native import tool_template_path

    return tool_template_path(spec)


def omp_env() -> dict[str, str]:
    """The engines' OpenMP threads spin briefly, then sleep, while they wait (backends.base.omp_env)."""
    from ..backends.base import omp_env as settings

    return settings()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def executable(name: str) -> str:
    """A console script beside this Python (the project's .venv/bin), else on PATH, else the bare name."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name
