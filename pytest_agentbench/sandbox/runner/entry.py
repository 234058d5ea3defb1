"""The modes and `main()`, for transports that start a process per run (docker exec, unconfined)."""

import json
import os
import sys

from .audit import _audited_exec, _exec_agent
from .files import fs
from .frames import read_frame
from .graded import graded
from .hygiene import _flush_std, load_seccomp
from .python_mode import python
from .verify import verify

MODES = {"graded": graded, "python": python, "fs": fs, "verify": verify}


def main():
    """`python -I [-S] -c <runner> MODE` for transports that start a process per run (docker exec, unconfined).

    The first frame on stdin is the transport's: filters to stack before anything else runs (Docker's default
    profile stays underneath) and, for MODE `exec`, the argv to execve. The mode's own frames follow; for `exec`
    the rest of stdin is the program's."""
    transport = json.loads(read_frame(0))
    load_seccomp(bytes.fromhex(transport.get("base_bpf") or ""))
    mode = sys.argv[1]
    if mode == "exec" and transport.get("audit"):
        os._exit(_audited_exec(transport))
    if mode == "exec":
        _exec_agent(transport["argv"], dict(os.environ), transport)
    load_seccomp(bytes.fromhex(transport.get("agent_bpf") or ""))
    code = MODES[mode](0, 1) if mode in ("graded", "verify") else MODES[mode](0)
    _flush_std()
    os._exit(code or 0)
