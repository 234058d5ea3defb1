"""Docker sandbox: one container per test through the docker SDK (DOCKER_HOST works with a remote engine).

Network none, memory/CPU/pids limits, read-only root, tmpfs /work, /tmp and /dev/shm, every capability dropped,
no-new-privileges, an init process; removed when the test ends, and at interpreter exit for any a crash left
behind. The container's init runs as root without capabilities; every run is a `docker exec` as uid 65534 of the
same runner the process sandbox uses (runner.py, passed with `-c`: nothing of ours lies in the container), which
first stacks the process sandbox's seccomp filter on Docker's default profile (no socket family but AF_UNIX).
Requests and files travel on the exec's stdin, which works on tmpfs and on remote engines alike. After a run that
could leave processes behind (a timeout, or a run allowed to fork) every process of uid 65534 is killed, so
nothing a run started outlives it.
"""

from __future__ import annotations

import atexit
import json
import secrets
import selectors
import socket
import struct
import time
from typing import Any

from ..errors import AgentbenchError, HarnessError, first_line
from . import runner, seccomp
from .base import GIT_SAFE, RUNNER_SOURCE, ExecResult, Sandbox, SandboxLimits, decode

DEFAULT_IMAGE = "agentbench-python:bookworm-2"
RUN_USER = "65534:65534"
_LIVE: dict[str, Any] = {}  # docker.models.containers.Container by id
_BACKSTOP_S = 5.0
_AUDIT_GRACE_S = 5.0  # the audited runner's own limit ends the command first; then it reports
_AUDIT_CAP = 64 << 20
_KILL_ALL = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"


def _remove_leftovers() -> None:
    for container in list(_LIVE.values()):
        try:
            container.remove(force=True)
        except Exception:
            pass
    _LIVE.clear()


atexit.register(_remove_leftovers)


def engine(host: str | None = None):
    """A connected client of `host` (an engine URL; default $DOCKER_HOST, else the local engine), or HarnessError
    with one line saying what to do."""
    try:
        import docker

        client = docker.DockerClient(base_url=host, timeout=60) if host else docker.from_env(timeout=60)
        client.ping()
        return client
    except Exception as exc:
        if host:
            raise HarnessError(f"the Docker engine at {host} does not answer ({type(exc).__name__})") from exc
        raise HarnessError(
            f"no Docker engine reachable ({type(exc).__name__}): start dockerd "
            "(scripts/docker-engine.sh) or set DOCKER_HOST"
        ) from exc


class DockerSandbox(Sandbox):
    kind = "docker"
    workdir = "/work"
    scratch = ("/tmp", "/dev/shm")  # tmpfs mounts of the container
    memory_bound = "cgroup"  # the container's memory limit bounds all its processes and tmpfs files

    @classmethod
    def create(
        cls, limits: SandboxLimits, *, site_packages: bool = False, image: str | None = None, host: str | None = None
    ) -> Sandbox:
        return cls(limits, image=image, site_packages=site_packages, host=host)

    @classmethod
    def preflight(cls, image: str | None = None, host: str | None = None) -> None:
        try:
            client = engine(host)
        except HarnessError as exc:
            raise AgentbenchError(str(exc)) from exc
        image = image or DEFAULT_IMAGE
        try:
            client.images.get(image)
        except Exception as exc:
            where = f" on {host}" if host else ""
            raise AgentbenchError(
                f"docker image {image} not found{where}: build it with scripts/docker-image.sh"
                + (" (or load it there: docker save IMAGE | DOCKER_HOST=URL docker load)" if where else "")
            ) from exc

    def __init__(
        self, limits: SandboxLimits, image: str | None = None, site_packages: bool = False, host: str | None = None
    ):
        super().__init__(limits)
        self.python = ["python3", "-I"] + ([] if site_packages else ["-S"])
        self.image = image or DEFAULT_IMAGE
        self.host = host
        self.client = engine(host)
        self.container = self._start()

    def _start(self):
        import docker
        from docker.types import Ulimit

        lim = self.limits
        try:
            container = self.client.containers.run(
                self.image,
                ["sleep", "infinity"],
                detach=True,
                init=True,
                network_mode="none",
                mem_limit=f"{lim.memory_mb}m",
                memswap_limit=f"{lim.memory_mb}m",
                nano_cpus=int(lim.cpus * 1e9),
                pids_limit=64,
                read_only=True,
                tmpfs={
                    self.workdir: f"size={lim.disk_mb}m,uid=65534,gid=65534,mode=0700",
                    "/tmp": "size=64m,mode=1777",
                    "/dev/shm": "size=64m",
                },
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                user="0:0",
                working_dir=self.workdir,
                ulimits=[
                    Ulimit(name="fsize", soft=lim.file_bytes, hard=lim.file_bytes),
                    # RLIMIT_DATA: a huge allocation fails with MemoryError instead of racing the OOM killer
                    Ulimit(name="data", soft=lim.memory_mb << 20, hard=lim.memory_mb << 20),
                    Ulimit(name="core", soft=0, hard=0),
                    Ulimit(name="nofile", soft=256, hard=256),
                ],
                labels={"pytest-agentbench": "sandbox"},
                environment={},
            )
        except docker.errors.ImageNotFound as exc:
            raise HarnessError(f"image {self.image} not found: build it with scripts/docker-image.sh") from exc
        except docker.errors.DockerException as exc:
            raise HarnessError(f"cannot start a sandbox container{self._at()}: {first_line(str(exc))[:200]}") from exc
        _LIVE[container.id] = container
        return container

    # -- the transport ----------------------------------------------------------------------------------
    def _run(
        self, *, mode=None, argv=None, stdin=b"", timeout, env=None, nofork=False, verdict=False, audit=False, cap=None
    ):
        transport = {
            "base_bpf": seccomp.base_bpf().hex(),
            "agent_bpf": seccomp.agent_bpf().hex(),
            "argv": argv,
            "nofork_bpf": seccomp.nofork_bpf().hex() if nofork else "",
        }
        nonce = None
        outer = timeout
        if audit and argv is not None:  # the runner traces the command and keeps its own time limit
            nonce = secrets.token_hex(16)
            transport.update(audit={**self.audit_config(), "nonce": nonce}, timeout=timeout)
            outer = timeout + _AUDIT_GRACE_S
        cmd = [
            "timeout",
            "-s",
            "KILL",
            f"{outer:.3f}",
            *self.python,
            "-c",
            RUNNER_SOURCE + "\nmain()\n",
            "exec" if argv is not None else mode,
        ]
        environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": self.workdir,
            "TMPDIR": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
            **GIT_SAFE,
            **(env or {}),
        }
        result = self._exec(
            cmd,
            runner.frame(json.dumps(transport).encode()) + stdin,
            outer,
            environment,
            cap=(cap or self.limits.output_bytes) + (_AUDIT_CAP if nonce else 0),
        )
        if result.timed_out or (argv is not None and not nofork) or mode == "verify":
            self._kill_leftovers()  # whatever the run left (the workspace's code under the hidden tests may fork)
        if nonce is not None:
            record, result.stdout = runner.unpack_record(result.stdout, nonce)
            if len(result.stdout) > self.limits.output_bytes:
                result.stdout, result.truncated = result.stdout[-self.limits.output_bytes :], True
            if record is None:
                record = {
                    "events": [],
                    "lost": "the audit record did not arrive (its tracer was killed or the container ended)",
                }
            else:
                result.exit_code = record.pop("exit", result.exit_code)
                result.timed_out = bool(record.pop("timed_out", False))
            result.audit = record
        channel = result.stdout
        if verdict:  # the grader's verdict line ends stdout; show the candidate's output without it
            cut = result.stdout.rfind("\n" + runner.VERDICT_MARK + " ")
            if cut >= 0:
                result.stdout = result.stdout[:cut]
        return result, channel

    def _kill_leftovers(self) -> None:
        self._exec([*self.python, "-c", _KILL_ALL], b"", 10.0, {}, raw=True)

    def _exec(
        self, cmd: list[str], stdin: bytes, timeout: float, environment: dict, raw: bool = False, cap: int | None = None
    ) -> ExecResult:
        api = self.client.api
        start = time.perf_counter()
        try:
            exec_id = api.exec_create(
                self.container.id, cmd, workdir=self.workdir, environment=environment, user=RUN_USER, stdin=bool(stdin)
            )["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except Exception as exc:
            raise HarnessError(f"docker exec failed{self._at()}: {first_line(str(exc))[:200]}") from exc
        raw_sock = getattr(sock, "_sock", sock)
        try:
            out, err, truncated, ended = _pump(
                raw_sock, stdin, start + timeout + _BACKSTOP_S, cap or self.limits.output_bytes
            )
        finally:
            try:
                sock.close()
            except OSError:
                pass
        duration = time.perf_counter() - start
        if not ended:  # the engine never closed the stream: take the container down, start a fresh one
            self.close()
            self.lost("the sandbox's container stopped answering and was replaced")
            self.container = self._start()
            return ExecResult(None, decode(out), decode(err), duration, timed_out=True, truncated=truncated)
        try:
            code = api.exec_inspect(exec_id)["ExitCode"]
        except Exception as exc:  # the engine died with the exec's stream: no verdict, the harness's failure
            raise HarnessError(f"the Docker engine{self._at()} stopped answering ({type(exc).__name__})") from exc
        if code in (None, 137) and not self._running():  # killed because the engine stopped, not by its limits
            raise HarnessError(f"the sandbox's container was stopped by its Docker engine{self._at()}")
        timed_out = code == 137 and duration >= timeout
        return ExecResult(
            exit_code=None if timed_out else (-9 if code == 137 else code),
            stdout=decode(out),
            stderr=decode(err),
            duration_s=duration,
            timed_out=timed_out,
            truncated=truncated,
        )

    def _at(self) -> str:
        return f" at {self.host}" if self.host else ""

    def _running(self) -> bool:
        try:
            self.container.reload()
            return self.container.status == "running"
        except Exception:  # gone, or the engine with it
            return False

    def close(self) -> None:
        container = _LIVE.pop(self.container.id, None)
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:
                pass


def _pump(sock: socket.socket, data: bytes, deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Write `data` to the exec's stdin (then half-close it) while reading the multiplexed stdout/stderr frames
    (8-byte header: stream, 0, 0, 0, big-endian length) into capped tail buffers until the stream ends."""
    bufs = {1: bytearray(), 2: bytearray()}
    pending = bytearray()
    truncated = ended = False
    view = memoryview(data)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if view else 0))
    if not view:
        _half_close(sock)
    try:
        while not ended:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            for _, events in sel.select(remaining):
                if events & selectors.EVENT_WRITE and view:
                    try:
                        view = view[sock.send(view[: 1 << 16]) :]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        view = view[:0]
                    if not view:
                        sel.modify(sock, selectors.EVENT_READ)
                        _half_close(sock)
                if events & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(1 << 16)
                    except (BlockingIOError, InterruptedError):
                        continue
                    if not chunk:
                        ended = True
                        break
                    pending.extend(chunk)
                    while len(pending) >= 8:
                        kind, size = pending[0], struct.unpack(">I", pending[4:8])[0]
                        if len(pending) < 8 + size:
                            break
                        buf = bufs.get(kind, bufs[2])
                        buf.extend(pending[8 : 8 + size])
                        del pending[: 8 + size]
                        if len(buf) > cap:
                            truncated = True
                            del buf[: len(buf) - cap]
    finally:
        sel.close()
    return bytes(bufs[1]), bytes(bufs[2]), truncated, ended


def _half_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
