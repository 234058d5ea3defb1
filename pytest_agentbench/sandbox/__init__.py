"""Sandboxes run untrusted, model-written code. Pick one by name with `make_sandbox`."""
from __future__ import annotations

from .base import ExecResult, Sandbox, SandboxLimits


def make_sandbox(kind: str, limits: SandboxLimits) -> Sandbox:
    if kind in ("process", "unconfined"):
        from .process import ProcessSandbox

        return ProcessSandbox(limits)
    raise ValueError(f"unknown sandbox {kind!r} (known: process)")


__all__ = ["ExecResult", "Sandbox", "SandboxLimits", "make_sandbox"]
