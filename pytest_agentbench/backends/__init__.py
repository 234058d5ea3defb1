"""Backends turn a Request into a Completion. `make_backend` picks one by the spec's `backend` field."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import AgentbenchError
from .base import Backend, Completion, Request

if TYPE_CHECKING:  # pragma: no cover
    from ..models import ModelSpec

#: built-in kinds -> "module:class"; anything else may be given as "package.module:Class" in models.yaml
BUILTIN = {
    "transformers": "pytest_agentbench.backends.transformers:TransformersBackend",
    "reference": "pytest_agentbench.backends.reference:ReferenceBackend",
    "replay": "pytest_agentbench.backends.replay:ReplayBackend",
}


def backend_class(kind: str) -> type[Backend]:
    target = BUILTIN.get(kind, kind)
    if ":" not in target:
        from importlib.metadata import entry_points

        for ep in entry_points(group="pytest_agentbench.backends"):
            if ep.name == kind:
                return ep.load()
        raise AgentbenchError(f"unknown backend {kind!r} (built-in: {', '.join(sorted(BUILTIN))}; "
                              "or give 'package.module:Class')")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise AgentbenchError(f"cannot import backend {target!r}: {exc}") from exc


def make_backend(spec: "ModelSpec") -> Backend:
    return backend_class(spec.backend)(spec)


__all__ = ["Backend", "Completion", "Request", "backend_class", "make_backend"]
