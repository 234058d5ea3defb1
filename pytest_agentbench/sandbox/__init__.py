"""Sandboxes run untrusted, model-written code. Pick one by name with `make_sandbox`."""

from __future__ import annotations

from .base import Candidate, ExecResult, GradedRun, HiddenTests, Refused, Sandbox, SandboxLimits

KINDS = ("process", "docker", "unconfined")


def make_sandbox(
    kind: str,
    limits: SandboxLimits,
    site_packages: bool = False,
    image: str | None = None,
    docker_host: str | None = None,
) -> Sandbox:
    """`site_packages`: the suite's code needs the installed packages (read-only), e.g. sympy. `docker_host`: the
    docker sandbox's engine (default $DOCKER_HOST, else the local one)."""
    if kind in ("process", "unconfined"):
        from .process import ProcessSandbox

        return ProcessSandbox(limits, confine=kind == "process", site_packages=site_packages)
    if kind == "docker":
        from .docker import DockerSandbox

        return DockerSandbox(limits, image=image, site_packages=site_packages, host=docker_host)
    raise ValueError(f"unknown sandbox {kind!r} (known: {', '.join(KINDS)})")


__all__ = ["Candidate", "ExecResult", "GradedRun", "HiddenTests", "Refused", "Sandbox", "SandboxLimits", "make_sandbox"]
