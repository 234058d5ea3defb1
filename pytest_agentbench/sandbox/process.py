"""Process sandbox: a private workspace per test, kernel confinement (bwrap.py), rlimits, a cleared
environment, bounded output.

Confined runs go through one warm server per xdist worker (zygote.py inside bwrap), which forks per run:
the confinement is built once, a run costs a fork instead of a sandbox and interpreter start.
`confine=False` is `--sandbox unconfined`: a plain subprocess with rlimits, for code you trust.

Output is read through a selector until the run reports its end (pidfd or the server's answer), so a
leftover child holding the pipe cannot hold the run open; at most `limits.output_bytes` per stream
stay in memory, the tail kept.
"""
from __future__ import annotations

import atexit
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import HarnessError
from . import bwrap
from .base import ExecResult, PythonRun, Sandbox, SandboxLimits

_DRAIN_AFTER_EXIT_S = 0.2   # bounded read of what is still buffered once the run has ended
_BACKSTOP_S = 3.0           # the server enforces the time limit; this catches a server that stopped
_HERE = Path(__file__).resolve().parent
_SERVER_DIR = "/opt/agentbench"


class ProcessSandbox(Sandbox):
    def __init__(self, limits: SandboxLimits, confine: bool = True, site_packages: bool = False):
        super().__init__(limits)
        self.confine = confine
        self.kind = "process" if confine else "unconfined"
        try:
            if confine:
                self.server = _server(site_packages)
                self.uid = self.server.uid
                self.python = self.server.python
                self.root = Path(tempfile.mkdtemp(prefix="task-", dir=self.server.base))
                if os.geteuid() == 0:
                    os.chown(self.root, self.uid, self.uid)
                self.cwd = f"{bwrap.WORKDIR}/{self.root.name}"
            else:
                # -I: ignore PYTHON* env vars and user site; -S: no site-packages (stdlib only, 20 ms faster).
                self.python = [sys.executable, "-I"] + ([] if site_packages else ["-S"])
                self.root = Path(tempfile.mkdtemp(prefix="agentbench-"))
        except OSError as exc:
            raise HarnessError(f"cannot create sandbox dir: {exc}") from exc

    # -- files (host side; never follows a link out of the workspace) ---------------------------
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

    # -- running ---------------------------------------------------------------------------------
    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        home = self.cwd if self.confine else str(self.root)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home,
               "TMPDIR": "/tmp" if self.confine else str(self.root), "PYTHONDONTWRITEBYTECODE": "1"}
        env.update(extra or {})
        return env

    def _rlimits(self, timeout: float) -> dict[str, int]:
        lim = self.limits
        return {"RLIMIT_AS": lim.memory_mb << 20, "RLIMIT_CPU": int(timeout) + 1, "RLIMIT_FSIZE": lim.file_bytes,
                "RLIMIT_NOFILE": bwrap.NOFILE, "RLIMIT_NPROC": bwrap.NPROC, "RLIMIT_CORE": 0}

    def exec(self, argv, *, timeout=None, stdin=None, env=None) -> ExecResult:
        timeout = self.limits.timeout if timeout is None else timeout
        if self.confine:
            if stdin is not None:
                raise HarnessError("the confined process sandbox does not take stdin")
            return self.server.run({"argv": list(argv), "env": self._env(env)}, self, timeout)
        return self._popen(argv, timeout, stdin, self._env(env))

    def run_python(self, source: str, *, timeout: float | None = None) -> PythonRun:
        if not self.confine:
            return super().run_python(source, timeout=timeout)
        nonce = secrets.token_hex(8)
        self.write_file("program.py", source)
        timeout = self.limits.timeout if timeout is None else timeout
        result = self.server.run({"python": "program.py", "nonce": nonce, "env": self._env(None)}, self, timeout)
        return PythonRun(result, nonce)

    def _popen(self, argv, timeout, stdin, env) -> ExecResult:
        rlimits = self._rlimits(timeout)
        rlimits.pop("RLIMIT_NPROC")  # per uid: it would count the whole host user's processes

        def apply() -> None:  # runs in the child between fork and exec
            for name, value in rlimits.items():
                resource.setrlimit(getattr(resource, name), (value, value))

        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=self.root, env=env, preexec_fn=apply, start_new_session=True,
                                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            raise HarnessError(f"sandbox could not start {argv[0]}: {exc}") from exc
        if stdin is not None:
            try:
                proc.stdin.write(stdin)
            except BrokenPipeError:
                pass
            proc.stdin.close()
        pidfd = os.pidfd_open(proc.pid)
        try:
            out, err, truncated, ended = _pump([proc.stdout.fileno(), proc.stderr.fileno()], pidfd,
                                               start + timeout, self.limits.output_bytes,
                                               after_end=lambda: (_killpg(proc.pid), proc.wait()))
        finally:
            os.close(pidfd)
            proc.stdout.close()
            proc.stderr.close()
        if not ended:
            _killpg(proc.pid)
            proc.wait()
        return ExecResult(exit_code=proc.returncode if ended else None, stdout=_text(out), stderr=_text(err),
                          duration_s=time.perf_counter() - start, timed_out=not ended, truncated=truncated)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class _Server:
    """One confined zygote per worker process and interpreter choice; started on first use, restarted
    when a run kills it or it stops answering."""

    def __init__(self, site_packages: bool):
        self.python, self.binds = bwrap.interpreter(site_packages)
        self.uid = bwrap.worker_uid()
        self.base = Path(tempfile.mkdtemp(prefix=f"agentbench-{self.uid}-"))
        os.chmod(self.base, 0o711)  # bwrap (root without CAP_DAC_OVERRIDE) must enter it
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None

    def start(self) -> None:
        missing = bwrap.missing_tools()
        if missing:
            raise HarnessError(f"{', '.join(missing)} not found: {bwrap.INSTALL_HINT}")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = bwrap.seccomp_fd()
        log = tempfile.TemporaryFile()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": bwrap.WORKDIR}
        cmd = bwrap.command([*self.python, f"{_SERVER_DIR}/zygote.py"], self.base, env, self.binds, fd, self.uid,
                            ro_binds=((str(_HERE), _SERVER_DIR),))
        try:
            self.proc = subprocess.Popen(cmd, stdin=theirs, stdout=subprocess.DEVNULL, stderr=log,
                                         pass_fds=(fd,), start_new_session=True, env={"PATH": "/usr/bin:/bin"})
        except OSError as exc:
            raise HarnessError(f"cannot start the sandbox: {exc}") from exc
        finally:
            os.close(fd)
            theirs.close()
        self.ctl = ours
        ours.settimeout(15)
        try:
            hello = ours.recv(4096)
        except OSError:
            hello = b""
        ours.settimeout(None)
        if b"ready" not in hello:
            self.stop()
            log.seek(0)
            detail = log.read().decode(errors="replace").strip().splitlines()
            raise HarnessError(f"the sandbox did not start: {detail[-1] if detail else 'no output'}")

    def stop(self) -> None:
        if self.proc is not None:
            _killpg(self.proc.pid)
            self.proc.wait()
            self.proc = None
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None

    def run(self, request: dict, box: ProcessSandbox, timeout: float) -> ExecResult:
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        request = {**request, "cwd": box.cwd, "timeout": timeout, "rlimits": box._rlimits(timeout)}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.perf_counter()
        try:
            socket.send_fds(self.ctl, [json.dumps(request).encode()], [out_w, err_w])
        except OSError as exc:
            self.stop()
            raise HarnessError(f"the sandbox server is gone: {exc}") from exc
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            out, err, truncated, answered = _pump([out_r, err_r], self.ctl.fileno(), start + timeout + _BACKSTOP_S,
                                                  box.limits.output_bytes)
        finally:
            os.close(out_r)
            os.close(err_r)
        reply = self.ctl.recv(4096) if answered else b""
        duration = time.perf_counter() - start
        if not reply:  # the run killed (or stopped) its server: the run failed, the next one restarts it
            self.stop()
            note = "sandbox: the program stopped the sandbox's process server\n" if answered else ""
            return ExecResult(exit_code=None if not answered else -signal.SIGKILL, stdout=_text(out),
                              stderr=_text(err) + note, duration_s=duration, timed_out=not answered,
                              truncated=truncated)
        status = json.loads(reply)
        return ExecResult(exit_code=None if status["timed_out"] else status["exit"], stdout=_text(out),
                          stderr=_text(err), duration_s=duration, timed_out=status["timed_out"], truncated=truncated)


_SERVERS: dict[bool, _Server] = {}


def _server(site_packages: bool) -> _Server:
    if site_packages not in _SERVERS:
        _SERVERS[site_packages] = _Server(site_packages)
    return _SERVERS[site_packages]


@atexit.register
def _stop_servers() -> None:
    for server in _SERVERS.values():
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


def _text(data: bytes) -> str:
    return data.decode(errors="replace")


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(fds: list[int], done_fd: int, deadline: float, cap: int, after_end=None) -> tuple[bytes, bytes, bool, bool]:
    """Read the pipes into capped tail buffers until `done_fd` is readable (the run ended) or the deadline.

    Returns (stdout, stderr, truncated, ended). `after_end` runs once the end is seen, before a bounded
    drain of what is still buffered (a child that escaped must not hold us).
    """
    bufs = {fd: bytearray() for fd in fds}
    truncated = ended = False
    sel = selectors.DefaultSelector()
    try:
        for fd in fds:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        sel.register(done_fd, selectors.EVENT_READ)
        while not ended:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            for key, _ in sel.select(remaining):
                if key.fd == done_fd:
                    ended = True
                else:
                    truncated |= _read_into(key.fd, bufs[key.fd], cap, sel)
        sel.unregister(done_fd)
        if ended and after_end is not None:
            after_end()
        drain_end = time.perf_counter() + _DRAIN_AFTER_EXIT_S
        while sel.get_map() and time.perf_counter() < drain_end:
            events = sel.select(max(0.0, drain_end - time.perf_counter()))
            if not events:
                break
            for key, _ in events:
                truncated |= _read_into(key.fd, bufs[key.fd], cap, sel)
    finally:
        sel.close()
    out, err = (bytes(bufs[fd][-cap:]) for fd in fds)
    return out, err, truncated, ended


def _read_into(fd: int, buf: bytearray, cap: int, sel: selectors.BaseSelector) -> bool:
    """Append what is readable; True once the stream went past the cap (only the tail is kept)."""
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return len(buf) > cap
    if not chunk:
        sel.unregister(fd)
        return len(buf) > cap
    buf.extend(chunk)
    if len(buf) > 2 * cap:
        del buf[: len(buf) - cap - 1]
    return len(buf) > cap
