"""Process sandbox: a private workspace, kernel confinement (bwrap.py), rlimits, a cleared environment,
bounded output. `confine=False` is `--sandbox unconfined`: same interface, no isolation beyond rlimits.

Output is read through a selector with a pidfd, so the run ends when the program ends (not when some
leftover child closes the pipe), the whole process group is killed afterwards, and at most
`limits.output_bytes` per stream stay in memory.
"""
from __future__ import annotations

import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import HarnessError
from . import bwrap
from .base import ExecResult, Sandbox, SandboxLimits

_DRAIN_AFTER_EXIT_S = 0.2  # a child that inherited the pipe must not hold the run open


class ProcessSandbox(Sandbox):
    def __init__(self, limits: SandboxLimits, confine: bool = True, site_packages: bool = False):
        super().__init__(limits)
        self.confine = confine
        self.kind = "process" if confine else "unconfined"
        if confine:
            missing = bwrap.missing_tools()
            if missing:
                raise HarnessError(f"{', '.join(missing)} not found: {bwrap.INSTALL_HINT}")
            self.python, self.binds = bwrap.interpreter(site_packages)
            self.uid = bwrap.worker_uid()
        else:
            # -I: ignore PYTHON* env vars and user site; -S: no site-packages (stdlib only, 20 ms faster).
            self.python = [sys.executable, "-I"] + ([] if site_packages else ["-S"])
        try:
            self.root = Path(tempfile.mkdtemp(prefix="agentbench-"))
            if confine and os.geteuid() == 0:
                os.chown(self.root, self.uid, self.uid)
                os.chmod(self.root, 0o711)  # bwrap, root without CAP_DAC_OVERRIDE, must chdir into it
        except OSError as exc:
            raise HarnessError(f"cannot create sandbox dir: {exc}") from exc

    def _path(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise PermissionError(f"path escapes the sandbox: {path}")
        return full

    def write_file(self, path: str, content: str | bytes) -> None:
        full = self._path(path)
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(content.encode() if isinstance(content, str) else content)

    def read_file(self, path: str) -> str:
        return self._path(path).read_text(errors="replace")

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        home = bwrap.WORKDIR if self.confine else str(self.root)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home,
               "TMPDIR": "/tmp" if self.confine else str(self.root), "PYTHONDONTWRITEBYTECODE": "1"}
        env.update(extra or {})
        return env

    def _limit(self, timeout: float):
        lim = self.limits

        def apply() -> None:  # unconfined only: runs in the child between fork and exec
            mem = lim.memory_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            cpu = int(timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_bytes, lim.file_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return apply

    def exec(self, argv, *, timeout=None, stdin=None, env=None) -> ExecResult:
        timeout = self.limits.timeout if timeout is None else timeout
        env = self._env(env)
        seccomp_fd = -1
        if self.confine:
            seccomp_fd = os.memfd_create("agentbench-seccomp", 0)
            os.write(seccomp_fd, bwrap.seccomp_bpf())
            os.lseek(seccomp_fd, 0, os.SEEK_SET)
            args = bwrap.command(argv, self.root, self.limits, timeout, env, self.binds, seccomp_fd, self.uid)
            popen = {"pass_fds": (seccomp_fd,), "env": {"PATH": "/usr/bin:/bin"}}
        else:
            args, popen = argv, {"preexec_fn": self._limit(timeout), "env": env}
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                args, cwd=self.root, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, close_fds=True, **popen,
            )
        except OSError as exc:
            raise HarnessError(f"sandbox could not start {args[0]}: {exc}") from exc
        finally:
            if seccomp_fd >= 0:
                os.close(seccomp_fd)
        if stdin is not None:
            try:
                proc.stdin.write(stdin)
            except BrokenPipeError:
                pass
            proc.stdin.close()
        out, err, truncated, timed_out = _pump(proc, start + timeout, self.limits.output_bytes)
        err_text = err.decode(errors="replace")
        if self.confine and proc.returncode == 1 and err_text.startswith("bwrap: "):
            raise HarnessError(f"sandbox failed to start: {err_text.strip().splitlines()[0]}")
        return ExecResult(
            exit_code=None if timed_out else proc.returncode,
            stdout=out.decode(errors="replace"), stderr=err_text,
            duration_s=time.perf_counter() - start, timed_out=timed_out, truncated=truncated,
        )

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Read both pipes into capped tail buffers until the process exits or the deadline passes."""
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = timed_out = False
    pidfd = os.pidfd_open(proc.pid)
    sel = selectors.DefaultSelector()
    try:
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        sel.register(pidfd, selectors.EVENT_READ)
        exited = False
        while not exited:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(remaining):
                if key.fd == pidfd:
                    exited = True
                elif not _read_into(key.fd, bufs[key.fd], cap, sel):
                    continue
                elif len(bufs[key.fd]) > cap:
                    truncated = True
        _killpg(proc.pid)
        proc.wait()
        sel.unregister(pidfd)
        # Bounded drain: whatever is still buffered, but never wait on a child that escaped the group.
        drain_end = time.perf_counter() + _DRAIN_AFTER_EXIT_S
        while sel.get_map() and time.perf_counter() < drain_end:
            events = sel.select(max(0.0, drain_end - time.perf_counter()))
            if not events:
                break
            for key, _ in events:
                _read_into(key.fd, bufs[key.fd], cap, sel)
                truncated |= len(bufs[key.fd]) > cap
    finally:
        sel.close()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    out, err = (bytes(b[-cap:]) for b in bufs.values())
    return out, err, truncated, timed_out


def _read_into(fd: int, buf: bytearray, cap: int, sel: selectors.BaseSelector) -> bool:
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return True
    if not chunk:
        sel.unregister(fd)
        return False
    buf.extend(chunk)
    if len(buf) > 2 * cap:  # keep memory bounded while still knowing we went past the cap
        del buf[: len(buf) - cap - 1]
    return True
