"""Backends turn a Request into a Completion. `make_backend` picks one by the spec's `backend` field."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import AgentbenchError
from .base import Backend, Completion, Request, SampleRef

if TYPE_CHECKING:  # pragma: no cover
    from ..models import ModelSpec

#: built-in kinds -> "module:class"; anything else may be given as "package.module:Class" in models.yaml
BUILTIN = {
    "transformers": "pytest_agentbench.backends.transformers:TransformersBackend",
    "reference": "pytest_agentbench.backends.reference:ReferenceBackend",
    "replay": "pytest_agentbench.backends.replay:ReplayBackend",
    "openai": "pytest_agentbench.backends.openai_api:OpenAIBackend",
    "vllm": "pytest_agentbench.backends.vllm:VLLMBackend",
    "scripted": "pytest_agentbench.backends.scripted:ScriptedBackend",
}


def backend_class(kind: str) -> type[Backend]:
    target = BUILTIN.get(kind, kind)
    if ":" not in target:
        from importlib.metadata import entry_points

        for ep in entry_points(group="pytest_agentbench.backends"):
            if ep.name == kind:
                return ep.load()
        raise AgentbenchError(
            f"unknown backend {kind!r} (built-in: {', '.join(sorted(BUILTIN))}; or give 'package.module:Class')"
        )
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise AgentbenchError(f"cannot import backend {target!r}: {exc}") from exc


def preflight(spec: ModelSpec) -> None:
    """Check, before any item runs, what would otherwise fail every item alike (an endpoint that cannot be
    reached, a refused key, a model it does not serve): one AgentbenchError line."""
    try:
        cls = backend_class(spec.backend)
    except AgentbenchError:
        return  # a kind that a plugin's pytest_agentbench_make_backend makes: it is checked where it is made
    cls.preflight(spec)


def make_backend(spec: ModelSpec) -> Backend:
    return backend_class(spec.backend).create(spec)


__all__ = ["Backend", "Completion", "Request", "SampleRef", "backend_class", "make_backend", "preflight"]
