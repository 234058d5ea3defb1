"""One model server for the whole run (`serve:` on a model in models.yaml, or `--serve ENGINE`).

The controller owns it (`Broker`): the first process that needs the model asks the controller (directly at -n 0;
under xdist over an authenticated Unix socket whose address travels in xdist's `workerinput`), the controller
starts the server once, waits for its health endpoint (bounded, with the server's last log lines in the error) and
answers every process with the same URL; a session without benchmark items starts nothing. The controller stops it
at the end of the session, on Ctrl-C, and when pytest itself is killed: the server runs in its own process group
(stopped as a group) and is started with PR_SET_PDEATHSIG, so a SIGKILLed pytest takes its server with it. With
`-n 4` the host holds one copy of the weights, and the server's own scheduling decides throughput instead of four
processes fighting for the same cores.

Engines:
- `llamacpp`: llama.cpp's own `llama-server` on a GGUF file (the embedded default's native form; measured the
  fastest CPU path here: benchmarks/perf/bench_backends.py). It queues requests itself, so xdist workers need no
  turns. One slot by default, with prompt caching off: each reply is computed alone from a fresh prefill, so the
  replies do not depend on how requests interleave, and `-n 2` gives the same replies as `-n 0`. `options.parallel:
  N` batches N requests at once (more tokens per second with several workers), at the price of replies that depend
  on what was batched together (floating-point sums in another order). `scripts/llama-server.sh` builds the binary
  from the llama.cpp sources PyPI's llama-cpp-python ships; any `llama-server` on PATH (or AGENTBENCH_LLAMA_SERVER)
  does too.
- `transformers`: `transformers serve` on a folder (a GGUF is served as the dequantized folder the transformers
  backend caches: its GGUF form fails on configs without `architectures`, FACTS.md).
- `vllm`: `vllm serve` (GPU). Not executable on these CPU machines; its command line is tested, not its run.

Workers reach the server through the openai backend (backends/openai_api.py); the record of what ran is the
`served` block of the backend info in the report (engine, pid, URL, command, log file).
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError, one_line
from ..steps import step

ENGINES = ("llamacpp", "transformers", "vllm")
HOST = "127.0.0.1"
READY_TIMEOUT = 300.0  # seconds a server may take to answer its health endpoint (vllm serve loads for minutes)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Plan:
    """How to start one engine for one model: the command line, and where it will answer."""

    engine: str
    argv: list[str]
    port: int
    served_name: str
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


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


# -- which engine ----------------------------------------------------------------------------------------------
def missing(engine: str) -> str | None:
    """Why `engine` cannot run here (a one-line install hint), or None."""
    if engine == "llamacpp":
        if llama_server() is None:
            return (
                "llama.cpp's llama-server is not installed: bash scripts/llama-server.sh builds it into .venv/bin "
                "(or put one on PATH, or set AGENTBENCH_LLAMA_SERVER)"
            )
        return None
    if engine == "transformers":
        absent = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
        if absent:
            return "transformers serve needs its serving extra: pip install 'transformers[serving]'"
        return None
    if engine == "vllm":
        from ..backends.vllm import unavailable

        return unavailable()
    raise AgentbenchError(f"unknown serving engine {engine!r} (known: {', '.join(ENGINES)})")


def llama_server() -> str | None:
    """The llama-server binary: $AGENTBENCH_LLAMA_SERVER, else beside this Python (the project's .venv/bin), else on
    PATH."""
    named = os.environ.get("AGENTBENCH_LLAMA_SERVER")
    if named:
        return named if os.access(named, os.X_OK) else None
    beside = Path(sys.executable).with_name("llama-server")
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("llama-server")


def llama_server_version() -> str:
    """`llama-server --version` (its build and commit): part of a served model's identity."""
    if not hasattr(llama_server_version, "cached"):
        try:
            out = subprocess.run(
                [llama_server() or "llama-server", "--version"], capture_output=True, text=True, timeout=30
            )
            lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.startswith("version")]
            llama_server_version.cached = lines[0] if lines else "unknown"
        except (OSError, subprocess.TimeoutExpired):
            llama_server_version.cached = "unknown"
    return llama_server_version.cached


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def plan(spec, engine: str, port: int | None = None, threads: int | None = None) -> Plan:
    """The command line that serves `spec` with `engine` on loopback."""
    port = port or free_port()
    threads = threads or os.cpu_count() or 1
    if engine == "llamacpp":
        gguf = gguf_path(spec)
        slots = spec.options.parallel or 1
        argv = [
            llama_server() or "llama-server",
            "--model",
            str(gguf),
            "--alias",
            spec.name,
            "--host",
            HOST,
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--threads-batch",
            str(threads),
            "--ctx-size",
            str((spec.options.n_ctx or 8192) * slots),
            "--parallel",
            str(slots),
        ]
        if slots == 1:  # a fresh prefill per request: the reply never depends on what the slot held before
            argv.append("--no-cache-prompt")
        # No host-RAM copies of old prompts in either mode: benchmark prompts are never asked twice, and that cache
        # grew the one-slot server to 1.5 GB and the four-slot one to 3 GB over the main job.
        argv += ["--cache-ram", "0"]
        if spec.adapter:  # a GGUF LoRA (a PEFT folder is converted once and cached: adapters.gguf_lora)
            from ..adapters import gguf_lora

            argv += ["--lora", str(gguf_lora(spec))]
        # Jinja chat templates: OpenAI `tools` are rendered and calls parsed (native function calling). A model whose
        # own template ignores tools names a tool template (models.yaml), used on every request: it renders exactly
        # like the model's own without tools, so a run's formats never change another format's prompts.
        argv.append("--jinja")
        template = _tool_template(spec)
        if template is not None:
            argv += ["--chat-template-file", str(template)]
        return Plan("llamacpp", argv, port, spec.name, health_path="/health", env=omp_env())
    if engine == "transformers":
        folder = serve_folder(spec)
        exe = Path(sys.executable).with_name("transformers")
        argv = [
            str(exe) if exe.exists() else shutil.which("transformers") or "transformers",
            "serve",
            str(folder),
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        return Plan("transformers", argv, port, str(folder), health_path="/health", env=omp_env())
    if engine == "vllm":
        source = spec.path or spec.hf_id
        if not source:
            raise AgentbenchError(f"model {spec.name!r}: vllm serves a hub id or a local folder (hf_id or path)")
        exe = Path(sys.executable).with_name("vllm")
        argv = [
            str(exe) if exe.exists() else shutil.which("vllm") or "vllm",
            "serve",
            source,
            "--host",
            HOST,
            "--port",
            str(port),
            "--served-model-name",
            spec.name,
            "--dtype",
            spec.dtype,
            "--seed",
            "0",
        ]
        if spec.revision:
            argv += ["--revision", spec.revision]
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        engine_args = spec.options.model_dump(exclude_none=True)
        for key in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "quantization"):
            if key in engine_args:
                argv += ["--" + key.replace("_", "-"), str(engine_args[key])]
        if engine_args.get("enforce_eager"):
            argv.append("--enforce-eager")
        if spec.adapter:  # docs.vllm.ai "LoRA Adapters": requests name the adapter as their model; the base is apart
            from ..adapters import identity, vllm_max_lora_rank

            name = argv.index("--served-model-name") + 1
            argv[name] = f"{spec.name}:base"
            rank = vllm_max_lora_rank(identity(spec.adapter))
            argv += ["--enable-lora", "--lora-modules", f"{spec.name}={spec.adapter}", "--max-lora-rank", str(rank)]
        if engine_args.get("tool_call_parser"):  # native function calling: vllm serve parses the calls itself
            argv += ["--enable-auto-tool-choice", "--tool-call-parser", engine_args["tool_call_parser"]]
        template = _tool_template(spec)
        if template is not None:
            argv += ["--chat-template", str(template)]
        return Plan("vllm", argv, port, spec.name, health_path="/health")
    raise AgentbenchError(f"unknown serving engine {engine!r} (known: {', '.join(ENGINES)})")


def _tool_template(spec) -> Path | None:
    from ..backends.native import tool_template_path

    return tool_template_path(spec)


def omp_env() -> dict[str, str]:
    """The engines' OpenMP threads sleep while they wait (backends.base.omp_wait_policy)."""
    from ..backends.base import omp_wait_policy

    return {"OMP_WAIT_POLICY": omp_wait_policy()}


def check(spec, engine: str) -> None:
    """What `plan` would refuse, found cheaply before any item runs (nothing is loaded or started)."""
    _tool_template(spec)
    if engine == "llamacpp":
        gguf_path(spec)
    elif engine == "transformers" and not spec.gguf_file:
        from ..backends.transformers import locate

        if not locate(spec)[1]:
            raise AgentbenchError(
                f"model {spec.name!r}: transformers serve is given local folders here (hub ids need network)"
            )
    elif engine == "vllm" and not (spec.path or spec.hf_id):
        raise AgentbenchError(f"model {spec.name!r}: vllm serves a hub id or a local folder (hf_id or path)")


def gguf_path(spec) -> Path:
    from ..backends.transformers import locate

    if not spec.gguf_file:
        raise AgentbenchError(f"model {spec.name!r}: the llamacpp engine serves a GGUF file (set gguf_file)")
    source, local = locate(spec)
    path = Path(source) / spec.gguf_file
    if not path.is_file():
        raise AgentbenchError(f"model {spec.name!r}: GGUF file not found: {path}")
    return path


def serve_folder(spec) -> Path:
    """A folder `transformers serve` can load: the model's own, or for a GGUF the dequantized copy the
    transformers backend caches (made here once if it is missing)."""
    from ..backends.transformers import _gguf_cache_dir, locate

    source, local = locate(spec)
    if not spec.gguf_file:
        if not local:
            raise AgentbenchError(
                f"model {spec.name!r}: transformers serve is given local folders here (hub ids need network)"
            )
        return Path(source)
    cached = _gguf_cache_dir(source, spec.gguf_file)
    if not (cached / "config.json").is_file():
        from ..backends.transformers import TransformersBackend

        TransformersBackend(spec).close()  # loads the GGUF once and saves the dequantized folder
    if not (cached / "config.json").is_file():
        raise AgentbenchError(f"model {spec.name!r}: could not prepare a dequantized folder at {cached}")
    return cached


def identity(spec, engine: str) -> dict[str, Any]:
    """What decides the replies of `spec` served by `engine`: engine and its version, the weights' immutable name.
    The port, pid and timeouts are not in it (the generation cache and config_sha stay stable across runs)."""
    from ..provenance import sha256_file

    ident: dict[str, Any] = {"kind": "served", "engine": engine, "model": spec.name}
    if engine == "llamacpp":
        ident["llama_server"] = llama_server_version()
        ident["weights"] = "sha256:" + sha256_file(gguf_path(spec))
        if (spec.options.parallel or 1) > 1:  # batched replies depend on their batch-mates
            ident["parallel"] = spec.options.parallel
    elif engine == "transformers":
        import transformers

        ident["transformers"] = transformers.__version__
        ident["weights"] = spec.hf_id or spec.package or spec.path
        if spec.gguf_file:
            ident["weights"] = "sha256:" + sha256_file(gguf_path(spec))
    else:
        ident["weights"] = spec.hf_id or spec.path
        ident["revision"] = spec.revision
        ident["dtype"] = spec.dtype
        if spec.options.tool_call_parser:
            ident["tool_call_parser"] = spec.options.tool_call_parser
    from ..backends.native import tool_template_sha256

    template = tool_template_sha256(spec)
    if template is not None:  # it renders every prompt: part of what decides the replies
        ident["tool_template"] = "sha256:" + template
    if getattr(spec, "adapter", None):  # a converted GGUF LoRA is named by its PEFT source (adapters.py)
        from ..adapters import identity as adapter_identity

        ident["adapter"] = adapter_identity(spec.adapter)
    return ident


# -- the process -----------------------------------------------------------------------------------------------
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
        self, spec, engine: str, log_dir: Path, *, ready_timeout: float | None = None, port: int | None = None
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
            code = self.proc.poll()
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


# -- the controller's side -------------------------------------------------------------------------------------
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
        self._servers: list[ModelServer] = []
        self._lock = threading.Lock()
        self._listener = None
        self._closed = False
        self._starting: ModelServer | None = None

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
        engine = self.run.serve_engine(spec)[0] if spec is not None else None
        if engine is None:
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
