"""Sandboxes run untrusted, model-written code. Pick one by name with `make_sandbox` (registry.sandboxes: process,
docker, unconfined, and any registered one)."""

from __future__ import annotations

from .. import registry
from .base import Candidate, ExecResult, GradedRun, HiddenTests, Refused, Sandbox, SandboxLimits


def make_sandbox(
    kind: str,
    limits: SandboxLimits,
    site_packages: bool = False,
    image: str | None = None,
    docker_host: str | None = None,
) -> Sandbox:
    """`site_packages`: the suite's code needs the installed packages (read-only), e.g. sympy. `docker_host`: a
    container sandbox's engine (default $DOCKER_HOST, else the local one)."""
    cls: type[Sandbox] = registry.sandboxes.get(kind)
    return cls.create(limits, site_packages=site_packages, image=image, host=docker_host)


__all__ = ["Candidate", "ExecResult", "GradedRun", "HiddenTests", "Refused", "Sandbox", "SandboxLimits", "make_sandbox"]
