"""The controller's side of serving: `Broker` starts a model's server the first time any process asks for it, once
per run, and answers every process with the same URL; `ask` is a process's question (directly at -n 0; under xdist
over an authenticated Unix socket whose address travels in xdist's `workerinput`)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AgentbenchError, one_line
from ..models import WeightsSpec
from ..steps import step
from .engine import missing
from .server import READY_TIMEOUT, ModelServer

if TYPE_CHECKING:
    from .replicas import Replicas


class Broker:
    """Starts a model's server the first time any process asks for it, once per run; answers every ask with the same
    server, the reason it runs in-process instead (an engine models.yaml names but this machine lacks), or the
    one-line error of a server that could not start. Asks are answered in one long-lived thread, which is therefore
    the servers' parent thread (PR_SET_PDEATHSIG follows the thread that started a child)."""

    def __init__(self, run, log_dir: Path):
        self.run = run
        self.log_dir = log_dir
        self.notes: dict[str, dict] = {}  # model -> engine, pid, URL, log, or the fallback (the report's)
        self._answers: dict[str, dict] = {}
        self._servers: list[ModelServer | Replicas] = []
        self._lock = threading.Lock()
        self._listener: Any = None
        self._closed = False
        self._starting: ModelServer | Replicas | None = None

    def address(self) -> dict[str, str]:
        """Where xdist workers ask (a Unix socket in a private folder, and its key)."""
        if self._listener is None:
            from multiprocessing.connection import Listener

            self._authkey = secrets.token_bytes(32)
            self._folder = tempfile.mkdtemp(prefix="agentbench-serve-")
            self._listener = Listener(os.path.join(self._folder, "broker"), family="AF_UNIX", authkey=self._authkey)
            threading.Thread(target=self._answer_forever, name="agentbench-serve", daemon=True).start()
        return {"address": self._listener.address, "authkey": self._authkey.hex()}

    def _answer_forever(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except Exception:  # closed at the end, or a peer without the key
                continue
            with conn:
                try:
                    name = str(conn.recv())
                    try:
                        answer = self.ask(name)
                    except Exception as exc:  # never let one question end the answering thread
                        answer = {"error": f"serving {name!r} failed: {one_line(exc)}"}
                    conn.send(answer)
                except (EOFError, OSError):
                    pass

    def ask(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self._answers:
                self._answers[name] = self._start(name)
            return self._answers[name]

    def _start(self, name: str) -> dict[str, Any]:
        if self._closed:
            return {"error": "the run is over"}
        spec = next((m for m in self.run.models if m.name == name), None)
        engine = self.run.serve_engine(spec)[0] if isinstance(spec, WeightsSpec) else None
        if engine is None or not isinstance(spec, WeightsSpec):
            return {"error": f"model {name!r} is not served in this run"}
        why = missing(engine)
        if why:
            self.notes[name] = {"engine": engine, "fallback": f"in-process {spec.backend}", "reason": why}
            return {"fallback": why, "engine": engine}
        server = None
        try:
            with step(f"starting the {engine} server for {name}", always=True, server_of=name) as shown:
                from .replicas import make_server

                server = self._starting = make_server(spec, engine, self.log_dir)
                served = server.start()
                shown.result = f"pid {served.pid}, {served.base_url}, log {served.log}"
        except Exception as exc:  # AgentbenchError, or anything an engine's set-up raised: one line, cached
            if server is not None:
                server.stop()
            message = (
                str(exc)
                if isinstance(exc, AgentbenchError)
                else f"cannot serve {name!r} with {engine}: {one_line(exc)}"
            )
            self.notes[name] = {
                "engine": engine,
                "error": message,
                "log": str(server.log_path) if server is not None else None,
            }
            return {"error": message}
        finally:
            self._starting = None
        self._servers.append(server)
        self.notes[name] = {
            "engine": engine,
            "pid": served.pid,
            "base_url": served.base_url,
            "log": served.log,
            "argv": served.argv,
            **({"replicas": served.replicas} if served.replicas else {}),
        }
        return {"served": served.to_dict()}

    def close(self) -> None:
        self._closed = True
        starting = self._starting
        if starting is not None:  # Ctrl-C while a server starts: stop waiting for it
            starting.cancelled.set()
        with self._lock:
            while self._servers:
                self._servers.pop().stop()
        if self._listener is not None:
            self._listener.close()
            shutil.rmtree(self._folder, ignore_errors=True)


def ask(run, name: str) -> dict[str, Any]:
    """A process's question to the controller: the server of model `name` (see Broker.ask)."""
    if run.broker is not None:  # the controller itself (-n 0)
        return run.broker.ask(name)
    where = run.broker_address
    if not where:
        return {"error": f"model {name!r} should be served, but this worker was given no controller to ask"}
    from multiprocessing.connection import Client

    try:
        with Client(where["address"], family="AF_UNIX", authkey=bytes.fromhex(where["authkey"])) as conn:
            conn.send(name)
            if not conn.poll(READY_TIMEOUT + 120):
                return {"error": f"the controller did not answer for the server of {name!r}"}
            return conn.recv()
    except (OSError, EOFError) as exc:
        return {"error": f"cannot ask the controller for the server of {name!r}: {one_line(exc)}"}
