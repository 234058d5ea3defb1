"""What an agent's tool calls did to its sandbox, as a list of effects per tool call (kept in the trace, on the call's
`tool_result` step), from two sources:

- a command's processes, as the sandbox's audit recorded them (runner.trace_run), whatever the command line said:
  `{"op": "exec", "argv", "exe", "stdin", "stdout"}` for each program run; `{"op": "read" | "write" | "readwrite",
  "path", "ino", "exe"[, "sha256"]}` for each file opened (an interpreter's reads carry the file's sha256);
  `{"op": "mkdir" | "unlink" | "rmdir" | "chmod" | "truncate" | "symlink" | "bind", "path", "confirmed"}` and
  `{"op": "rename" | "link", "src", "path", "confirmed"}` for paths created, moved or removed; `confirmed` is false
  when the file system did not show what the syscall claimed (the checks then fail closed);
  `{"op": "fork", "pid", "child"}` for each process started (what a process knew, its children know);
  `{"op": "exec_failed", "path", "argv"}` for each program a process tried to run and could not (not installed);
  `{"op": "lost", "why"}` when the record is incomplete (its tracer was killed, a process hid from it);
- the file tools, from what the sandbox reports they touched: `{"op": "read" | "shown" | "write" | "mkdir", "path",
  "by": tool}` (`shown`: a file some line of which the grep tool showed).

Paths inside the workspace are relative to it (`tests/test_x.py`); others stay absolute (`/tmp/x`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

WRITES = ("write", "readwrite", "mkdir", "unlink", "rmdir", "chmod", "truncate", "symlink", "bind", "rename", "link")
DELETES = ("unlink", "rmdir")


def relative(path: str | None, workdir: str) -> str | None:
    if path is None:
        return None
    if path == workdir:
        return "."
    if path.startswith(workdir.rstrip("/") + "/"):
        return path[len(workdir.rstrip("/")) + 1 :]
    return path


def from_audit(audit: dict | None, workdir: str) -> list[dict[str, Any]]:
    if audit is None:
        return [{"op": "lost", "why": "the command was not audited"}]
    out: list[dict[str, Any]] = []
    pipes: dict[str, str] = {}

    def stream(link):  # pipes by order of appearance ("pipe:1"), so the same run reads the same every time
        if isinstance(link, str) and link.startswith("pipe:["):
            return pipes.setdefault(link, f"pipe:{len(pipes) + 1}")
        return relative(link, workdir)

    for event in audit.get("events", []):
        op = event.get("op")
        if op == "exec":
            out.append(
                {
                    "op": "exec",
                    "pid": event.get("pid"),
                    "argv": event.get("argv"),
                    "exe": event.get("exe"),
                    "cwd": relative(event.get("cwd"), workdir),
                    "stdin": stream(event.get("stdin")),
                    "stdout": stream(event.get("stdout")),
                }
            )
        elif op == "open":
            kind = (
                "readwrite" if event.get("write") and event.get("read") else "write" if event.get("write") else "read"
            )
            item = {
                "op": kind,
                "path": stream(event.get("path")),
                "ino": event.get("ino"),
                "exe": event.get("exe"),
                "pid": event.get("pid"),
            }
            if event.get("sha256"):
                item["sha256"] = event["sha256"]
            if event.get("confirmed") is False:  # a process killed inside the open: it may have written
                item["confirmed"] = False
            out.append(item)
        elif op == "fork":
            out.append({"op": "fork", "pid": event.get("pid"), "child": event.get("child")})
        elif op == "exec_failed":
            out.append(
                {"op": "exec_failed", "pid": event.get("pid"), "path": event.get("path"), "argv": event.get("argv")}
            )
        elif op in ("rename", "link"):
            out.append(
                {
                    "op": op,
                    "src": relative(event.get("src"), workdir),
                    "path": relative(event.get("path"), workdir),
                    "confirmed": bool(event.get("confirmed")),
                }
            )
        elif op:
            out.append(
                {"op": op, "path": relative(event.get("path"), workdir), "confirmed": bool(event.get("confirmed"))}
            )
    if audit.get("lost"):
        out.append({"op": "lost", "why": str(audit["lost"])})
    return out


def inside(path: str | None) -> bool:
    """A workspace path (relative), not /tmp or a pipe."""
    if not path:
        return False
    return not path.startswith("/") and not path.startswith(("pipe:", "socket:", "anon_inode:"))


def written_paths(effect: dict) -> Iterator[str]:
    """Every workspace path an effect wrote, created, moved (both ends), removed or re-permissioned."""
    if effect.get("op") in WRITES:
        for key in ("src", "path"):
            if inside(effect.get(key)):
                yield effect[key]


def deleted_paths(effect: dict) -> Iterator[str]:
    """Workspace paths an effect removed or moved away."""
    op = effect.get("op")
    if op in DELETES and inside(effect.get("path")):
        yield effect["path"]
    if op == "rename" and inside(effect.get("src")):
        yield effect["src"]
