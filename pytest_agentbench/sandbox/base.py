"""The sandbox interface: exec / read / write in a private workspace (as Inspect AI's sandboxes are).

Process and Docker sandboxes are interchangeable behind it; nothing here knows about models.
"""
from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
#: Exit codes of runner.py (kept in one place so every sandbox classifies alike).
EXIT_ASSERTION, EXIT_EXCEPTION = 1, 2


@dataclass(frozen=True)
class SandboxLimits:
    timeout: float = 10.0           # seconds of wall time per exec
    memory_mb: int = 1024           # address space (process) / memory (docker)
    cpus: float = 1.0
    output_bytes: int = 1 << 20     # per stream; the rest is dropped, the tail kept
    file_bytes: int = 64 << 20      # largest file the code may write


@dataclass
class ExecResult:
    exit_code: int | None           # None when killed for the timeout
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False         # output went past the cap


class Sandbox(ABC):
    """A fresh workspace per test. Subclasses implement exec/read/write; `run_python` is shared."""

    python: list[str] = ["python3"]   # how to start Python inside the sandbox
    kind: str = "base"                 # names the sandbox in reports and caches

    def __init__(self, limits: SandboxLimits):
        self.limits = limits

    @abstractmethod
    def exec(self, argv: list[str], *, timeout: float | None = None, stdin: bytes | None = None,
             env: dict[str, str] | None = None) -> ExecResult:
        """Run argv in the workspace; never raises for the program's own failure, only for infrastructure."""

    @abstractmethod
    def write_file(self, path: str, content: str | bytes) -> None: ...

    @abstractmethod
    def read_file(self, path: str) -> str: ...

    def close(self) -> None:
        """Release the workspace and everything still running in it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run_python(self, source: str, *, timeout: float | None = None) -> "PythonRun":
        """Run a Python program through runner.py and classify how it ended."""
        nonce = secrets.token_hex(8)
        self.write_file("program.py", source)
        self.write_file("_agentbench_runner.py", RUNNER.read_bytes())
        result = self.exec([*self.python, "_agentbench_runner.py", "program.py"], timeout=timeout,
                           env={"AGENTBENCH_NONCE": nonce})
        return PythonRun(result, nonce)


class PythonRun:
    """An ExecResult plus its verdict; the nonce proves the tests ran to the end (os._exit(0) cannot fake it)."""

    def __init__(self, result: ExecResult, nonce: str):
        self.result = result
        marker = f"AGENTBENCH-OK {nonce}"
        stdout = result.stdout
        self.completed = result.exit_code == 0 and stdout.rstrip().endswith(marker)
        self.stdout = stdout.replace(marker, "").rstrip("\n") if self.completed else stdout

    @property
    def verdict(self) -> tuple[str, str]:
        """(status, reason) using the Outcome taxonomy's values."""
        r = self.result
        if r.timed_out:
            return "timeout", "killed after the time limit"
        if self.completed:
            return "passed", ""
        last = _last_line(r.stderr)
        if r.exit_code == EXIT_ASSERTION:
            return "failed", _failed_assertion(r.stderr) or last or "AssertionError"
        if r.exit_code == EXIT_EXCEPTION:
            return "error", last or "exception"
        if r.exit_code is not None and r.exit_code < 0:
            return "error", f"killed by signal {-r.exit_code}" + (f" ({last})" if last else "")
        return "error", last or f"exit status {r.exit_code} without finishing the tests"


def _failed_assertion(stderr: str) -> str:
    """'AssertionError: assert f(1) == 2' from a traceback, so the reason line says which check failed."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines or not lines[-1].startswith("AssertionError"):
        return ""
    source = [ln for ln in lines[:-1] if ln.startswith("assert ")]
    detail = lines[-1] if lines[-1] != "AssertionError" else "AssertionError"
    return (f"{detail}: {source[-1]}" if source else detail)[:300]


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else ""
