"""Process sandbox: kernel confinement (bwrap.py), a uid of its own (uids.py), a memory cgroup (cgroups.py).

Runs go through a warm server (runner.serve, the "zygote") started inside bwrap: the confinement is built once, a
run costs a fork instead of a sandbox and interpreter start. A server serves one open sandbox at a time; its
workspace is a tmpfs that exists only inside, emptied when the sandbox closes. `confine=False` is
`--sandbox unconfined`: the same server as a plain subprocess with rlimits, in a host temp folder, for code you
trust.

Output is read through a selector until the run reports its end (the server's answer, or a pidfd), so a leftover
child holding the pipe cannot hold the run open; at most `limits.output_bytes` per stream stay in memory, the
tail kept.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from ..errors import AgentbenchError, HarnessError
from . import bwrap, runner, seccomp, uids
from .base import GIT_SAFE, RUNNER_SOURCE, ExecResult, Sandbox, SandboxLimits, decode
from .cgroups import MemoryCgroup

_DRAIN_AFTER_EXIT_S = 0.2  # bounded read of what is still buffered once the run has ended
_BACKSTOP_S = 3.0  # the server enforces the time limit; this catches a server that stopped
_SERVER_ALLOWANCE = 32 << 20  # the server process itself lives in the run's memory cgroup
_AUDIT_CAP = 64 << 20  # an audit record (compressed) may be longer than a run's output cap


def run_env(home: str, extra: dict[str, str] | None = None, path: str = "/usr/bin:/bin") -> dict[str, str]:
    env = {"PATH": path, "LANG": "C.UTF-8", "HOME": home, "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", **GIT_SAFE}
    env.update(extra or {})
    return env


def rlimits(limits: SandboxLimits, timeout: float) -> dict[str, int]:
    return {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": int(timeout) + 1,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NOFILE": bwrap.NOFILE,
        "RLIMIT_NPROC": bwrap.NPROC,
        "RLIMIT_CORE": 0,
    }


class ProcessSandbox(Sandbox):
    """Bubblewrap, seccomp and a cgroup around a server that runs each program (--sandbox process)."""

    kind = "process"

    @classmethod
    def create(
        cls, limits: SandboxLimits, *, site_packages: bool = False, image: str | None = None, host: str | None = None
    ) -> Sandbox:
        return cls(limits, confine=cls.kind == "process", site_packages=site_packages)

    @classmethod
    def preflight(cls, image: str | None = None, host: str | None = None) -> None:
        missing = bwrap.missing_tools()
        if missing:
            raise AgentbenchError(f"{', '.join(missing)} not found: {bwrap.INSTALL_HINT}")

    def __init__(self, limits: SandboxLimits, confine: bool = True, site_packages: bool = False):
        super().__init__(limits)
        self.confine = confine
        self.kind = "process" if confine else "unconfined"
        self.site_packages = site_packages
        self.server: _Server | None = _acquire(confine, site_packages, limits.disk_mb << 20)
        self.uid = self.server.uid
        self.workdir = self.server.workdir
        self.scratch = self.server.scratch
        self.memory_bound = "cgroup" if self.server.cgroup is not None else "per-process"
        # Confined, the workspace is empty until a run: a server is emptied when released (or replaced by a fresh
        # one), and the server kills every process a run left before it answers, so nothing writes between runs.
        self.empty = confine

    def _run(
        self, *, mode=None, argv=None, stdin=b"", timeout, env=None, nofork=False, verdict=False, audit=False, cap=None
    ):
        if self.server is None:
            raise HarnessError("the sandbox is closed")
        self.empty = False
        req = self.server.request(mode, argv, env, nofork, self.limits, timeout)
        if audit and argv is not None:
            req["audit"] = self.audit_config()
        proc = self.server.proc
        if proc is not None and proc.poll() is not None:  # it ended while nothing of ours ran in it
            self.lost(
                f"the sandbox's process server ended between runs (exit status {proc.returncode})", during_run=False
            )
        limits = self.limits if cap is None else replace(self.limits, output_bytes=cap)
        result = self.server.run(req, stdin, timeout, verdict, limits, audit="audit" in req)
        if self.server.proc is None:  # it ended with this run: the workspace (a tmpfs inside it) went with it
            self.lost("the sandbox's process server ended during " + (f"`{argv[0]}`" if argv else f"a {mode} run"))
        return result

    def lost(self, why: str, during_run: bool = True) -> None:
        if self.confine:  # unconfined, the workspace is a host folder that outlives the server
            super().lost(why, during_run)

    def wipe(self) -> None:
        """The server empties the workspace (and, unconfined, the sandbox's own TMPDIR) itself; confined, a workspace
        no run has touched since it was last emptied is left as it is (one round trip less per graded task)."""
        if self.empty:
            return
        assert self.server is not None  # a closed sandbox is not wiped
        if not self.server.wipe():
            self.server.stop()  # a fresh server brings a fresh, empty workspace
        self.empty = self.confine

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            _release(server)


class UnconfinedSandbox(ProcessSandbox):
    """The same server without isolation (--sandbox unconfined): only for code you trust."""

    kind = "unconfined"
    warning = "model-written code runs with your privileges"

    @classmethod
    def preflight(cls, image: str | None = None, host: str | None = None) -> None:
        pass


class _Server:
    """A warm runner.serve process serving one open sandbox at a time, started on first use and restarted when a
    run kills it or it stops answering. Confined, it runs inside bwrap with a uid and a memory cgroup of its own,
    and its workspace is a tmpfs that exists only inside (it goes with the server). Unconfined (`--sandbox
    unconfined`, code you trust), it is a plain subprocess working in a host temp folder, with its own TMPDIR."""

    def __init__(self, confine: bool, site_packages: bool, disk_bytes: int):
        self.confine = confine
        self.key = (confine, site_packages, disk_bytes)
        # With the environment's packages, its scripts come first: `python` and `pytest` are the ones it has.
        self.path = (
            f"{sys.prefix}/bin:/usr/bin:/bin" if site_packages and sys.prefix != sys.base_prefix else "/usr/bin:/bin"
        )
        self.disk_bytes = disk_bytes
        self.proc: subprocess.Popen | None = None
        self.zygote: int | None = None
        self.ctl: socket.socket | None = None
        self.busy = False
        self.wiping = False  # a wipe was asked and its answer not read yet (wipe(wait=False))
        self.cgroup: MemoryCgroup | None = None
        self.claim: uids.UidClaim | None = None
        if confine:
            self.python, self.binds, self.masks = bwrap.interpreter(site_packages)
            self.workdir = bwrap.workdir(self.binds)
            self.scratch: tuple[str, ...] = ()  # /tmp and /dev/shm inside are emptied after every run
            self.claim = uids.claim()
            self.uid = self.claim.uid
            MemoryCgroup.sweep("agentbench-", lambda uid: uid != self.uid and uids.is_free(uid))
            self.cgroup = MemoryCgroup.create(f"agentbench-{self.uid}")
        else:
            self.python = [sys.executable, "-I"] + ([] if site_packages else ["-S"])
            self.base = Path(tempfile.mkdtemp(prefix="agentbench-unconfined-"))
            (self.base / "work").mkdir()
            (self.base / "tmp").mkdir()
            self.workdir = str(self.base / "work")
            self.scratch = (str(self.base / "tmp"),)  # its TMPDIR: the host's /tmp is never ours to empty
            self.uid = os.getuid()

    def request(self, mode, argv, env, nofork, limits: SandboxLimits, timeout: float) -> dict:
        extra = {"TMPDIR": self.scratch[0], **(env or {})} if self.scratch else env
        limit_set = rlimits(limits, timeout)
        if not self.confine:
            limit_set.pop("RLIMIT_NPROC")  # per uid: it would count the whole host user's processes
        req = {
            "cwd": self.workdir,
            "env": run_env(self.workdir, extra, self.path),
            "rlimits": limit_set,
            "timeout": timeout,
            "agent_bpf": seccomp.agent_bpf().hex(),
        }
        if argv is not None:
            req["argv"] = argv
            req["nofork_bpf"] = seccomp.nofork_bpf().hex() if nofork else ""
        else:
            req["mode"] = mode
        return req

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = tempfile.TemporaryFile()
        program = [*self.python, "-c", RUNNER_SOURCE + "\nserve()\n"]
        popen: dict[str, Any]
        if self.confine:
            missing = bwrap.missing_tools()
            if missing:
                raise HarnessError(f"{', '.join(missing)} not found: {bwrap.INSTALL_HINT}")
            fd = seccomp.memfd(seccomp.base_bpf())
            identity = tuple(seccomp.memfd(data) for data in bwrap.identity_files(self.uid, self.workdir))
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.workdir, "AGENTBENCH_CONFINED": "1"}
            cmd = bwrap.command(
                program,
                workdir=self.workdir,
                disk_bytes=self.disk_bytes,
                env=env,
                binds=self.binds,
                masks=self.masks,
                seccomp_fd=fd,
                uid=self.uid,
                identity_fds=cast("tuple[int, int]", identity),  # identity_files: /etc/passwd and /etc/group
            )
            popen = dict(
                pass_fds=(fd, *identity),
                env={"PATH": "/usr/bin:/bin"},
                preexec_fn=self.cgroup.enter if self.cgroup else None,
            )
        else:
            fd, identity, cmd = None, (), program
            popen = dict(cwd=self.workdir, env=run_env(self.workdir, {"TMPDIR": self.scratch[0]}))
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=theirs.fileno(), stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, **popen
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise HarnessError(f"cannot start the sandbox: {exc}") from exc
        finally:
            for held in (fd, *identity) if fd is not None else ():
                os.close(held)
            theirs.close()
        self.ctl = ours
        self.zygote = None
        ours.settimeout(15)
        try:
            hello = ours.recv(4096)
        except OSError:
            hello = b""
        ours.settimeout(None)
        if b"ready" in hello:
            self.zygote = self._find_zygote()
        else:
            self.stop()
            log.seek(0)
            detail = log.read().decode(errors="replace").strip().splitlines()
            raise HarnessError(f"the sandbox did not start: {detail[-1] if detail else 'no output'}")

    def responsive(self) -> bool:
        """False once the server process itself is stopped (SIGSTOP from a run of its own uid): it will never
        answer, so the run ends now instead of at its deadline."""
        if self.zygote is None:
            return True
        try:
            with open(f"/proc/{self.zygote}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in (b"T", b"t")

    def _find_zygote(self) -> int | None:
        """The host pid of runner.serve under bwrap (bwrap -> its init -> setpriv's exec)."""
        assert self.proc is not None  # start() asks only once the server process is running
        todo = [self.proc.pid]
        for _ in range(64):
            if not todo:
                break
            pid = todo.pop(0)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"serve()" in cmdline and not cmdline.startswith(b"bwrap\0"):
                    return pid
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo.extend(int(c) for c in (task / "children").read_text().split())
            except (OSError, ValueError):
                continue
        return None

    def stop(self) -> None:
        self.zygote = None
        self.wiping = False
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
        if self.claim is not None:
            self.claim.release()
        if not self.confine:
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.base)], check=False)

    def wipe(self, wait: bool = True) -> bool:
        """Empty the workspace (the server does it itself: no run of the test is alive any more). `wait=False` (a
        released server): only ask, and read the answer before the next request (`settle`), so the server empties
        the workspace while the host records the result and sets up the next item."""
        if not self.settle() or self.ctl is None or self.proc is None or self.proc.poll() is not None:
            return self.confine  # a fresh confined server starts with a fresh tmpfs; a host folder must be emptied
        try:
            self.ctl.sendall(json.dumps({"op": "wipe", "cwd": self.workdir, "scratch": list(self.scratch)}).encode())
        except OSError:
            return False
        self.wiping = True
        return self.settle() if wait else True

    def settle(self) -> bool:
        """Read the answer to a wipe asked without waiting; one that failed stops the server (a fresh one brings an
        empty workspace). False when it was stopped."""
        ctl = self.ctl
        if not self.wiping or ctl is None:
            return True
        self.wiping = False
        try:
            ctl.settimeout(60)
            reply = ctl.recv(4096)
        except OSError:
            reply = b""
        finally:
            ctl.settimeout(None)
        if b'"ok": true' not in reply:
            self.stop()
            return False
        return True

    def run(
        self, req: dict, stdin: bytes, timeout: float, verdict: bool, limits: SandboxLimits, audit: bool = False
    ) -> tuple[ExecResult, str]:
        self.settle()  # the answer to the last wipe comes first on the socket
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        assert self.ctl is not None  # a running server has its socket (start() sets both, stop() clears both)
        if self.cgroup is not None:
            self.cgroup.set_limit((limits.memory_mb << 20) + _SERVER_ALLOWANCE)
        pipes = [os.pipe() for _ in range(4 if verdict or audit else 3)]
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
            *outs, truncated, answered = pump(
                write=(in_w, stdin),
                reads=reads,
                done_fd=self.ctl.fileno(),
                deadline=start + timeout + _BACKSTOP_S,
                cap=limits.output_bytes,
                caps={reads[2]: _AUDIT_CAP} if audit else None,
                alive=self.responsive,
            )
        finally:
            for fd in reads:
                os.close(fd)
        out, err = outs[0], outs[1]
        channel = decode(outs[2]) if verdict else ""
        record = None
        if audit:  # the server writes it once the command and all it started are dead; nothing else holds the fd
            try:
                record = runner.unpack_blob(outs[2]) if outs[2] else None
            except ValueError:
                record = None
            if record is None:
                record = {"events": [], "lost": "the audit record did not arrive (the sandbox's server ended)"}
        reply = self.ctl.recv(4096) if answered else b""
        duration = time.perf_counter() - start
        if not reply:  # the run killed (or stopped) its server: the run failed, the next one restarts it
            self.stop()
            note = "sandbox: the program stopped the sandbox's process server\n" if answered else ""
            return ExecResult(
                exit_code=None if not answered else -signal.SIGKILL,
                stdout=decode(out),
                stderr=decode(err) + note,
                duration_s=duration,
                timed_out=not answered,
                truncated=truncated,
                audit=record,
            ), channel
        status = json.loads(reply)
        return ExecResult(
            exit_code=None if status["timed_out"] else status["exit"],
            stdout=decode(out),
            stderr=decode(err),
            duration_s=duration,
            timed_out=status["timed_out"],
            truncated=truncated,
            audit=record,
        ), channel


# -- the pool: one server per open sandbox, kept warm between tests -----------------------------------------
_POOL: list[_Server] = []


def _acquire(confine: bool, site_packages: bool, disk_bytes: int) -> _Server:
    for server in _POOL:
        if not server.busy and server.key == (confine, site_packages, disk_bytes):
            break
    else:
        server = _Server(confine, site_packages, disk_bytes)
        _POOL.append(server)
    server.busy = True
    return server


def _release(server: _Server) -> None:
    """Empty the workspace for the next test; a server that cannot be emptied is stopped (its tmpfs goes). The
    answer is read when the server is next used (`_Server.settle`)."""
    if not server.wipe(wait=False):
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


def pump(
    write: tuple[int, bytes],
    reads: list[int],
    done_fd: int,
    deadline: float,
    cap: int,
    after_end=None,
    caps: dict[int, int] | None = None,
    alive=None,
) -> tuple:
    """Feed `write`'s bytes and read `reads` into capped tail buffers until `done_fd` is readable (the run ended)
    or the deadline. Returns (*outputs, truncated, ended). `after_end` runs once the end is seen, before a bounded
    drain of what is still buffered (a child that escaped must not hold us)."""
    bufs = {fd: bytearray() for fd in reads}
    truncated = ended = False
    in_fd: int | None
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
            events = sel.select(min(remaining, 1.0) if alive is not None else remaining)
            if not events and alive is not None and not alive():
                break  # the server cannot answer any more (stopped): no point waiting for the deadline
            for key, _ in events:
                if key.fd == done_fd:
                    ended = True
                elif key.fd == in_fd:
                    try:
                        view = view[os.write(in_fd, view[: 1 << 16]) :]
                    except (BrokenPipeError, BlockingIOError) as exc:
                        if isinstance(exc, BrokenPipeError):
                            view = view[:0]
                    if not view:
                        sel.unregister(in_fd)
                        os.close(in_fd)
                        in_fd = None
                else:
                    truncated |= _read_into(
                        key.fd, bufs[key.fd], (caps or {}).get(key.fd, cap), sel
                    ) and key.fd not in (caps or {})
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
                truncated |= _read_into(key.fd, bufs[key.fd], (caps or {}).get(key.fd, cap), sel) and key.fd not in (
                    caps or {}
                )
    finally:
        sel.close()
    return (*(bytes(bufs[fd][-(caps or {}).get(fd, cap) :]) for fd in reads), truncated, ended)


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
