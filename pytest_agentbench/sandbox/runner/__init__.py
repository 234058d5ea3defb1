"""Everything that runs inside a sandbox, stdlib only (it may run as `python -I -S -c <this file> ...`).

The host never executes candidate code; it sends requests here. Modes (the first frame on the input fd names one):

- ``graded``: the unforgeable test run. The process forks the CANDIDATE (prompt + completion, no fork, no tests in its
  memory) and becomes the GRADER, which reads the dataset's tests from the input fd only after that fork, runs them,
  and calls the candidate through a socket: arguments and return values cross as pickles of plain data, and the
  grader unpickles with a class allowlist and walks the result, so no candidate-defined object (an `__eq__` that is
  always true, an int subclass) reaches the tests. Patched builtins, `sys.settrace`, forged output lines and fork
  tricks stay inside the candidate's own process. Both processes are non-dumpable, so the candidate cannot read the
  grader's memory or fds through /proc. The verdict is one line `AGENTBENCH-VERDICT <nonce> <json>` on the verdict fd,
  with a nonce that only the grader ever held.
- ``python``: run a program (plain semantics: its exit status), optionally without fork.
- ``fs``: file operations confined to the workspace (read, write, list, grep, tar in, wipe).
- ``serve``: the warm process server of the process sandbox (the "zygote"): forks per request, see `serve()`.

Frames are an 8-byte big-endian length plus the payload.

The program is kept in parts, one room each, every part stdlib only: frames, hygiene (libc, seccomp, fds), plain
(data across the candidate/grader boundary), graded, python_mode, files, verify, audit, entry (`main()`), server
(`serve()`). Each part imports what it uses from the parts before it, so the host can import and test them as
modules; `SOURCE` joins them in that order, without those relative imports, into the one program a sandbox runs
(`python -I -S -c SOURCE`): nothing of this package needs to exist inside a sandbox.
"""

import ast
from pathlib import Path

from .audit import AUDIT_MARK, unpack_blob, unpack_record
from .frames import VERDICT_MARK, frame, read_frame
from .graded import parse_verdict

PARTS = ("frames", "hygiene", "plain", "graded", "python_mode", "files", "verify", "audit", "entry", "server")

#: The largest single argument Linux passes to a program (MAX_ARG_STRLEN): the joined program travels as `-c`.
MAX_PROGRAM_BYTES = 128 * 1024


def join(folder: Path = Path(__file__).parent) -> str:
    """The parts, in order, as one program: each part's imports of the parts before it are dropped (in one program
    their names are already defined)."""
    pieces = []
    for name in PARTS:
        text = (folder / f"{name}.py").read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        drop: set[int] = set()
        for node in ast.parse(text).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                drop.update(range(node.lineno - 1, node.end_lineno or node.lineno))
        pieces.append(f"# -- {name} --\n" + "".join(line for i, line in enumerate(lines) if i not in drop))
    return "\n\n".join(pieces)


SOURCE = join()

__all__ = [
    "AUDIT_MARK",
    "MAX_PROGRAM_BYTES",
    "PARTS",
    "SOURCE",
    "VERDICT_MARK",
    "frame",
    "join",
    "parse_verdict",
    "read_frame",
    "unpack_blob",
    "unpack_record",
]
