"""Process sandbox: kernel confinement (bwrap.py), a uid of its own (uids.py), a memory cgroup (cgroups.py).

Confined runs go through a warm server (runner.serve, the "zygote") started inside bwrap: the confinement is built
once, a run costs a fork instead of a sandbox and interpreter start. A server serves one open sandbox at a time;
its workspace is a tmpfs that exists only inside, emptied when the sandbox closes. `confine=False` is
`--sandbox unconfined`: each run is a plain subprocess of the same runner with rlimits, in a host temp folder,
for code you trust.

Output is read through a selector until the run reports its end (the server's answer, or a pidfd), so a leftover
child holding the pipe cannot hold the run open; at most `limits.output_bytes` per stream stay in memory, the
tail kept.
"""
from __future__ import annotations

import atexit
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import HarnessError
from . import bwrap, runner, seccomp, uids
from .base import RUNNER_SOURCE, ExecResult, Sandbox, SandboxLimits, decode
from .cgroups import MemoryCgroup

_DRAIN_AFTER_EXIT_S = 0.2   # bounded read of what is still buffered once the run has ended
_BACKSTOP_S = 3.0           # the server enforces the time limit; this catches a server that stopped
_SERVER_ALLOWANCE = 32 << 20  # the server process itself lives in the run's memory cgroup


def run_env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "TMPDIR": "/tmp",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra or {})
    return env


def rlimits(limits: SandboxLimits, timeout: float) -> dict[str, int]:
    return {"RLIMIT_AS": limits.memory_mb << 20, "RLIMIT_CPU": int(timeout) + 1, "RLIMIT_FSIZE": limits.file_bytes,
            "RLIMIT_NOFILE": bwrap.NOFILE, "RLIMIT_NPROC": bwrap.NPROC, "RLIMIT_CORE": 0}


class ProcessSandbox(Sandbox):
    def __init__(self, limits: SandboxLimits, confine: bool = True, site_packages: bool = False):
        super().__init__(limits)
        self.confine = confine
        self.kind = "process" if confine else "unconfined"
        self.site_packages = site_packages
        self.server: _Server | None = None
        if confine:
            self.server = _acquire(site_packages, limits.disk_mb << 20)
            self.uid = self.server.uid
            self.workdir = self.server.workdir
            self.memory_bound = "cgroup" if self.server.cgroup is not None else "per-process"
        else:
            self.python = [sys.executable, "-I"] + ([] if site_packages else ["-S"])
            self._base = Path(tempfile.mkdtemp(prefix="agentbench-unconfined-"))
            self.root = self._base / "work"
            self.root.mkdir()
            (self._base / "tmp").mkdir()
            self.workdir = str(self.root)
            self.memory_bound = "per-process"

    # -- the transport ----------------------------------------------------------------------------------
    def _run(self, *, mode=None, argv=None, stdin=b"", timeout, env=None, nofork=False, verdict=False):
        if self.server is None and self.confine:
            raise HarnessError("the sandbox is closed")
        if self.confine:
            req = {"cwd": self.workdir, "env": run_env(self.workdir, env), "rlimits": rlimits(self.limits, timeout),
                   "timeout": timeout}
            if argv is not None:
                req["argv"] = argv
                req["nofork_bpf"] = seccomp.nofork_bpf().hex() if nofork else ""
            else:
                req["mode"] = mode
            return self.server.run(req, stdin, timeout, verdict, self.limits)
        return self._spawn(mode, argv, stdin, timeout, env, nofork)

    def _spawn(self, mode, argv, stdin, timeout, env, nofork) -> tuple[ExecResult, str]:
        """--sandbox unconfined: a subprocess of the runner (no isolation but rlimits and the no-fork filter)."""
        transport = {"argv": argv, "nofork_bpf": seccomp.nofork_bpf().hex() if nofork else ""}
        data = runner.frame(json.dumps(transport).encode()) + stdin
        limits = rlimits(self.limits, timeout)
        limits.pop("RLIMIT_NPROC")  # per uid: it would count the whole host user's processes

        def apply() -> None:  # in the child between fork and exec
            for name, value in limits.items():
                resource.setrlimit(getattr(resource, name), (value, value))

        cmd = [*self.python, "-c", RUNNER_SOURCE + "\nmain()\n", "exec" if argv is not None else mode]
        start = time.perf_counter()
        in_r, in_w = os.pipe()
        try:
            proc = subprocess.Popen(cmd, cwd=self.root, env=run_env(str(self.root), {"TMPDIR": str(self._base / "tmp"),
                                                                                    **(env or {})}),
                                    preexec_fn=apply, start_new_session=True, stdin=in_r,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            os.close(in_w)
            raise HarnessError(f"sandbox could not start {cmd[0]}: {exc}") from exc
        finally:
            os.close(in_r)
        pidfd = os.pidfd_open(proc.pid)
        try:  # pump owns (and closes) in_w
            out, err, truncated, ended = pump(write=(in_w, data),
                                              reads=[proc.stdout.fileno(), proc.stderr.fileno()], done_fd=pidfd,
                                              deadline=start + timeout, cap=self.limits.output_bytes,
                                              after_end=lambda: (_killpg(proc.pid), proc.wait()))
        finally:
            os.close(pidfd)
            proc.stdout.close()
            proc.stderr.close()
        if not ended:
            _killpg(proc.pid)
            proc.wait()
        result = ExecResult(exit_code=proc.returncode if ended else None, stdout=decode(out), stderr=decode(err),
                            duration_s=time.perf_counter() - start, timed_out=not ended, truncated=truncated)
        return result, result.stdout

    def close(self) -> None:
        if self.confine:
            server, self.server = self.server, None
            if server is not None:
                _release(server)
        else:
            subprocess.run(["rm", "-rf", "--one-file-system", str(self._base)], check=False)


class _Server:
    """One confined zygote, serving one open sandbox at a time; started on first use, restarted when a run kills it
    or it stops answering (its workspace, a tmpfs inside, goes with it)."""

    def __init__(self, site_packages: bool, disk_bytes: int):
        self.python, self.binds, self.masks = bwrap.interpreter(site_packages)
        self.workdir = bwrap.workdir(self.binds)
        self.disk_bytes = disk_bytes
        self.key = (site_packages, disk_bytes)
        self.claim = uids.claim()
        self.uid = self.claim.uid
        MemoryCgroup.sweep("agentbench-", lambda uid: uid != self.uid and uids.is_free(uid))
        self.cgroup = MemoryCgroup.create(f"agentbench-{self.uid}")
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None
        self.busy = False
        self.verified: set[SandboxLimits] = set()

    def start(self) -> None:
        missing = bwrap.missing_tools()
        if missing:
            raise HarnessError(f"{', '.join(missing)} not found: {bwrap.INSTALL_HINT}")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = seccomp.memfd(seccomp.base_bpf())
        log = tempfile.TemporaryFile()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.workdir, "AGENTBENCH_CONFINED": "1"}
        cmd = bwrap.command([*self.python, "-c", RUNNER_SOURCE + "\nserve()\n"], workdir=self.workdir,
                            disk_bytes=self.disk_bytes, env=env, binds=self.binds, masks=self.masks,
                            seccomp_fd=fd, uid=self.uid)
        try:
            self.proc = subprocess.Popen(cmd, stdin=theirs, stdout=subprocess.DEVNULL, stderr=log, pass_fds=(fd,),
                                         start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                                         preexec_fn=self.cgroup.enter if self.cgroup else None)
        except (OSError, subprocess.SubprocessError) as exc:
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

    def destroy(self) -> None:
        self.stop()
        if self.cgroup is not None:
            self.cgroup.destroy()
        self.claim.release()

    def wipe(self) -> bool:
        """Empty the workspace (the server does it itself: no run of the test is alive any more)."""
        if self.proc is None or self.proc.poll() is not None:
            return True  # a fresh server starts with a fresh tmpfs
        try:
            self.ctl.sendall(json.dumps({"op": "wipe", "cwd": self.workdir}).encode())
            self.ctl.settimeout(60)
            reply = self.ctl.recv(4096)
        except OSError:
            return False
        finally:
            if self.ctl is not None:
                self.ctl.settimeout(None)
        return b'"ok": true' in reply

    def run(self, req: dict, stdin: bytes, timeout: float, verdict: bool,
            limits: SandboxLimits) -> tuple[ExecResult, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        if self.cgroup is not None:
            self.cgroup.set_limit((limits.memory_mb << 20) + _SERVER_ALLOWANCE)
        pipes = [os.pipe() for _ in range(4 if verdict else 3)]
        (in_r, in_w), rest = pipes[0], pipes[1:]
        start = time.perf_counter()
        try:
            socket.send_fds(self.ctl, [json.dumps(req).encode()], [in_r] + [w for _, w in rest])
        except OSError as exc:
            self.stop()
            for r, w in pipes:
                os.close(r)
                os.close(w)
            raise HarnessError(f"the sandbox server is gone: {exc}") from exc
        os.close(in_r)
        for _, w in rest:
            os.close(w)
        reads = [r for r, _ in rest]
        try:  # pump owns (and closes) in_w
            *outs, truncated, answered = pump(write=(in_w, stdin), reads=reads, done_fd=self.ctl.fileno(),
                                              deadline=start + timeout + _BACKSTOP_S, cap=limits.output_bytes)
        finally:
            for fd in reads:
                os.close(fd)
        out, err = outs[0], outs[1]
        channel = decode(outs[2]) if verdict else ""
        reply = self.ctl.recv(4096) if answered else b""
        duration = time.perf_counter() - start
        if not reply:  # the run killed (or stopped) its server: the run failed, the next one restarts it
            self.stop()
            note = "sandbox: the program stopped the sandbox's process server\n" if answered else ""
            return ExecResult(exit_code=None if not answered else -signal.SIGKILL, stdout=decode(out),
                              stderr=decode(err) + note, duration_s=duration, timed_out=not answered,
                              truncated=truncated), channel
        status = json.loads(reply)
        return ExecResult(exit_code=None if status["timed_out"] else status["exit"], stdout=decode(out),
                          stderr=decode(err), duration_s=duration, timed_out=status["timed_out"],
                          truncated=truncated), channel


# -- the pool: one server per open sandbox, kept warm between tests -----------------------------------------
_POOL: list[_Server] = []


def _acquire(site_packages: bool, disk_bytes: int) -> _Server:
    for server in _POOL:
        if not server.busy and server.key == (site_packages, disk_bytes):
            break
    else:
        server = _Server(site_packages, disk_bytes)
        _POOL.append(server)
    server.busy = True
    return server


def _release(server: _Server) -> None:
    """Empty the workspace for the next test; a server that cannot be emptied is stopped (its tmpfs goes)."""
    if not server.wipe():
        server.stop()
    server.busy = False


@atexit.register
def _stop_servers() -> None:
    for server in _POOL:
        server.destroy()
    _POOL.clear()


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def pump(write: tuple[int, bytes], reads: list[int], done_fd: int, deadline: float, cap: int,
         after_end=None) -> tuple:
    """Feed `write`'s bytes and read `reads` into capped tail buffers until `done_fd` is readable (the run ended)
    or the deadline. Returns (*outputs, truncated, ended). `after_end` runs once the end is seen, before a bounded
    drain of what is still buffered (a child that escaped must not hold us)."""
    bufs = {fd: bytearray() for fd in reads}
    truncated = ended = False
    in_fd, data = write
    view = memoryview(data)
    sel = selectors.DefaultSelector()
    try:
        for fd in reads:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        os.set_blocking(in_fd, False)
        if view:
            sel.register(in_fd, selectors.EVENT_WRITE)
        else:
            os.close(in_fd)
            in_fd = None
        sel.register(done_fd, selectors.EVENT_READ)
        while not ended:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            for key, _ in sel.select(remaining):
                if key.fd == done_fd:
                    ended = True
                elif key.fd == in_fd:
                    try:
                        view = view[os.write(in_fd, view[:1 << 16]):]
                    except (BrokenPipeError, BlockingIOError) as exc:
                        if isinstance(exc, BrokenPipeError):
                            view = view[:0]
                    if not view:
                        sel.unregister(in_fd)
                        os.close(in_fd)
                        in_fd = None
                else:
                    truncated |= _read_into(key.fd, bufs[key.fd], cap, sel)
        sel.unregister(done_fd)
        if in_fd is not None:
            sel.unregister(in_fd)
            os.close(in_fd)
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
    return (*(bytes(bufs[fd][-cap:]) for fd in reads), truncated, ended)


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
