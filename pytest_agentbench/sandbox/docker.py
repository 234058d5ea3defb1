"""Docker sandbox: one container per test through the docker SDK (DOCKER_HOST works with a remote engine).

Network none, memory/CPU/pids limits, read-only root, tmpfs /work and /tmp, every capability dropped,
no-new-privileges, uid 65534, an init process; removed when the test ends, and at interpreter exit for
any a crash left behind. Files move through `exec` (base64 in argv, `cat` out), which works on tmpfs and on
remote engines alike.
"""
from __future__ import annotations

import atexit
import base64
import shlex
import threading
import time

from ..errors import HarnessError
from .base import ExecResult, Sandbox, SandboxLimits

DEFAULT_IMAGE = "agentbench-python:bookworm"
USER = "65534:65534"
_LIVE: dict[str, object] = {}
_ARG_CHUNK = 64 << 10  # stays under the kernel's 128 KiB limit for one argv string


def _remove_leftovers() -> None:
    for container in list(_LIVE.values()):
        try:
            container.remove(force=True)
        except Exception:
            pass
    _LIVE.clear()


atexit.register(_remove_leftovers)


def engine():
    """A connected client, or HarnessError with one line saying what to do."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
        return client
    except Exception as exc:
        raise HarnessError(f"no Docker engine reachable ({type(exc).__name__}): start dockerd "
                           "(scripts/docker-engine.sh) or set DOCKER_HOST") from exc


class DockerSandbox(Sandbox):
    kind = "docker"

    def __init__(self, limits: SandboxLimits, image: str | None = None, site_packages: bool = False):
        super().__init__(limits)
        import docker
        from docker.types import Ulimit

        self.python = ["python3", "-I"] + ([] if site_packages else ["-S"])
        self.image = image or DEFAULT_IMAGE
        self.client = engine()
        try:
            self.container = self.client.containers.run(
                self.image, ["sleep", "infinity"], detach=True, init=True, network_mode="none",
                mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m",
                nano_cpus=int(limits.cpus * 1e9), pids_limit=64, read_only=True,
                tmpfs={"/work": "size=256m,uid=65534,gid=65534,mode=0700", "/tmp": "size=64m,mode=1777",
                       "/dev/shm": "size=64m"},
                cap_drop=["ALL"], security_opt=["no-new-privileges"], user=USER, working_dir="/work",
                ulimits=[Ulimit(name="fsize", soft=limits.file_bytes, hard=limits.file_bytes),
                         # RLIMIT_DATA: a huge allocation fails with MemoryError instead of racing the OOM killer
                         Ulimit(name="data", soft=limits.memory_mb << 20, hard=limits.memory_mb << 20),
                         Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=256, hard=256)],
                labels={"pytest-agentbench": "sandbox"}, environment={},
            )
        except docker.errors.ImageNotFound as exc:
            raise HarnessError(f"image {self.image} not found: build it with scripts/docker-image.sh") from exc
        except docker.errors.DockerException as exc:
            raise HarnessError(f"cannot start a sandbox container: {exc}") from exc
        _LIVE[self.container.id] = self.container

    def exec(self, argv, *, timeout=None, stdin=None, env=None) -> ExecResult:
        if stdin is not None:
            raise HarnessError("the docker sandbox does not take stdin")
        timeout = self.limits.timeout if timeout is None else timeout
        api = self.client.api
        start = time.perf_counter()
        try:
            exec_id = api.exec_create(self.container.id, ["timeout", "-s", "KILL", f"{timeout:.3f}", *argv],
                                      workdir="/work", environment=env or {}, user=USER)["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=True)
        except Exception as exc:
            raise HarnessError(f"docker exec failed: {exc}") from exc
        cap = self.limits.output_bytes
        bufs = [bytearray(), bytearray()]
        truncated = [False]

        def pump() -> None:
            for chunk in stream:
                for buf, data in zip(bufs, chunk):
                    if data:
                        buf.extend(data)
                        if len(buf) > cap:
                            truncated[0] = True
                            del buf[: len(buf) - cap]

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        reader.join(timeout + 5.0)  # `timeout` inside kills first; this is the backstop
        stuck = reader.is_alive()
        if stuck:
            self.container.kill()
        duration = time.perf_counter() - start
        code = None if stuck else api.exec_inspect(exec_id)["ExitCode"]
        timed_out = stuck or (code == 137 and duration >= timeout)
        return ExecResult(exit_code=None if timed_out else code, stdout=bufs[0].decode(errors="replace"),
                          stderr=bufs[1].decode(errors="replace"), duration_s=duration, timed_out=timed_out,
                          truncated=truncated[0])

    def write_file(self, path: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        target = shlex.quote(path)
        parts = [data[i:i + _ARG_CHUNK] for i in range(0, len(data), _ARG_CHUNK)] or [b""]
        for n, part in enumerate(parts):
            op = ">" if n == 0 else ">>"
            script = f'mkdir -p "$(dirname {target})" && printf %s "$1" | base64 -d {op} {target}'
            result = self.exec(["sh", "-c", script, "sh", base64.b64encode(part).decode()], timeout=30)
            if result.exit_code != 0:
                raise HarnessError(f"docker sandbox could not write {path}: {result.stderr.strip()[:200]}")

    def read_file(self, path: str) -> str:
        result = self.exec(["cat", "--", path], timeout=30)
        if result.exit_code != 0:
            raise FileNotFoundError(path)
        return result.stdout

    def close(self) -> None:
        container = _LIVE.pop(self.container.id, None)
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:
                pass
