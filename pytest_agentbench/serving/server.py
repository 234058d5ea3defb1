"""One model server process: started in its own process group with PR_SET_PDEATHSIG (a SIGKILLed pytest takes its
server with it), waited for at its health endpoint (bounded, with the server's last log lines in the error), stopped
as a group."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError
from ..models import WeightsSpec
from .engine import HOST, identity, plan

READY_TIMEOUT = 300.0  # seconds a server may take to answer its health endpoint (vllm serve loads for minutes)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Served:
    """A running server as the workers see it (travels through xdist's workerinput as a plain dict)."""

    model: str
    engine: str
    base_url: str
    served_name: str
    pid: int
    argv: list[str]
    log: str
    identity: dict[str, Any]  # what decides its replies, for the generation cache and config_sha (no port, no pid)
    stream: bool = True  # the engine streams with usage in its last chunk (time to first token is measured)
    # `replicas: N` (replicas.py): each replica's pid, URL, command and log; this Served's own fields are the first's
    replicas: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Served:
        return cls(**doc)


def _die_with(parent: int):
    """preexec_fn: SIGKILL this child when the process that started it dies (even by SIGKILL). prctl is looked up
    here, in the parent: the child of a multi-threaded process should do as little as possible before exec."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_pdeathsig


class ModelServer:
    def __init__(
        self,
        spec: WeightsSpec,
        engine: str,
        log_dir: Path,
        *,
        ready_timeout: float | None = None,
        port: int | None = None,
    ):
        self.spec = spec
        self.engine = engine
        self.plan = plan(spec, engine, port=port)
        self.ready_timeout = READY_TIMEOUT if ready_timeout is None else ready_timeout
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in spec.name)
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.log_path = log_dir / f"{safe}-{engine}-{stamp}-{os.getpid()}.log"
        self.proc: subprocess.Popen | None = None
        self.cancelled = threading.Event()  # set by Broker.close: stop waiting for a server nobody needs now

    def start(self) -> Served:
        with open(self.log_path, "x", encoding="utf-8") as log:  # "x": a new file, never someone else's
            log.write("$ " + " ".join([*(f"{k}={v}" for k, v in self.plan.env.items()), *self.plan.argv]) + "\n")
            log.flush()
            env = {**os.environ, **self.plan.env}
            try:
                self.proc = subprocess.Popen(
                    self.plan.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_die_with(os.getpid()),
                )
            except OSError as exc:
                raise AgentbenchError(
                    f"cannot start the {self.engine} server for {self.spec.name!r}: {exc.strerror or exc}"
                ) from exc
        atexit.register(self.stop)
        self.wait_ready()
        return Served(
            model=self.spec.name,
            engine=self.engine,
            base_url=self.plan.base_url,
            served_name=self.plan.served_name,
            pid=self.proc.pid,
            argv=self.plan.argv,
            log=str(self.log_path),
            identity=identity(self.spec, self.engine),
        )

    def wait_ready(self) -> None:
        url = f"http://{HOST}:{self.plan.port}{self.plan.health_path}"
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and not self.cancelled.is_set():
            code = self.proc.poll() if self.proc is not None else -1
            if code is not None:
                raise AgentbenchError(
                    f"the {self.engine} server for {self.spec.name!r} exited with status {code} "
                    f"before it was ready; {self.tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except Exception:  # not up yet: refused, reset, or half an HTTP reply
                pass
            time.sleep(0.2)
        self.stop()
        if self.cancelled.is_set():
            raise AgentbenchError(f"the run ended while the {self.engine} server for {self.spec.name!r} started")
        raise AgentbenchError(
            f"the {self.engine} server for {self.spec.name!r} did not answer {url} within "
            f"{self.ready_timeout:.0f} s; {self.tail()}"
        )

    def tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            text = []
        # llama-server says why it could not load (a LoRA of another base: "tensor ... has incorrect shape") a few
        # lines before its generic last ones: that line first
        cause = next((line.strip() for line in text if " failed to apply " in line or " failed to open " in line), "")
        last = " | ".join(line.strip() for line in text[-lines:] if line.strip())[-400:]
        shown = f"{cause[:300]} | {last}" if cause else last
        return f"last log lines ({self.log_path}): {shown}" if shown else f"log: {self.log_path}"

    def stop(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # its process group: an engine's own workers go too
            except (ProcessLookupError, PermissionError):
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # what the leader left behind in its group (an engine's workers), also when the leader died first
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
