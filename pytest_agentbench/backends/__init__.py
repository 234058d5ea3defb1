"""Backends turn a Request into a Completion. `make_backend` picks one by the spec's `backend` field, through the
registry (registry.backends: built-ins, classes registered in this process, entry points, or "package.module:Class"
in models.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import registry
from ..errors import AgentbenchError
from .base import Backend, Completion, Request, SampleRef

if TYPE_CHECKING:  # pragma: no cover
    from ..models import ModelSpec


def backend_class(kind: str) -> type[Backend]:
    return registry.backends.get(kind)


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
