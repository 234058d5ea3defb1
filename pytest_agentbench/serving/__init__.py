"""One model server for the whole run (`serve:` on a model in models.yaml, or `--serve ENGINE`).

The controller owns it (`Broker`): the first process that needs the model asks the controller (directly at -n 0;
under xdist over an authenticated Unix socket whose address travels in xdist's `workerinput`), the controller
starts the server once, waits for its health endpoint (bounded, with the server's last log lines in the error) and
answers every process with the same URL; a session without benchmark items starts nothing. The controller stops it
at the end of the session, on Ctrl-C, and when pytest itself is killed: the server runs in its own process group
(stopped as a group) and is started with PR_SET_PDEATHSIG, so a SIGKILLed pytest takes its server with it. With
`-n 4` the host holds one copy of the weights, and the server's own scheduling decides throughput instead of four
processes fighting for the same cores.

Rooms: engine.py (the Engine interface, an engine by name through registry.engines), one module per engine
(llama_cpp.py, transformers.py, vllm.py), server.py (one server process's lifecycle), broker.py (the controller's
Broker and a worker's `ask`).

Workers reach the server through the openai backend (backends/openai_api.py); the record of what ran is the
`served` block of the backend info in the report (engine, pid, URL, command, log file).
"""

from .broker import Broker, ask
from .engine import HOST, Engine, Plan, check, engine, free_port, identity, missing, plan
from .llama_cpp import gguf_path, llama_server, llama_server_version
from .server import READY_TIMEOUT, ModelServer, Served
from .transformers import serve_folder

__all__ = [
    "HOST",
    "READY_TIMEOUT",
    "Broker",
    "Engine",
    "ModelServer",
    "Plan",
    "Served",
    "ask",
    "check",
    "engine",
    "free_port",
    "gguf_path",
    "identity",
    "llama_server",
    "llama_server_version",
    "missing",
    "plan",
    "serve_folder",
]
