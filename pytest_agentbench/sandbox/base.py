"""The sandbox interface: exec / run / files in a private workspace (as Inspect AI's sandboxes are).

Process and Docker sandboxes are interchangeable behind it; nothing here knows about models. A subclass supplies
one transport, `_run`: run a runner mode (see runner.py) or an argv inside the sandbox, with bytes on stdin, and
return what came out. Everything else (graded test runs, plain programs, files) is built here, once, on top of it,
so both sandboxes give the same verdicts. The host never touches the workspace's files directly: a path the
candidate controls is resolved inside the sandbox, by the sandbox's own rules.
"""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from ..errors import HarnessError
from . import runner, seccomp
from .seccomp import nofork_bpf

RUNNER_SOURCE = runner.SOURCE
#: In every run's environment: the workspace is the sandbox's, whoever owns its mount point (git would refuse a
#: repository it calls "of dubious ownership"); git reads this as command-line configuration.
GIT_SAFE = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    # pytest inside is a plain one: no plugin of the host's environment (ours among them) is loaded, and no
    # cache is written into the workspace
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    "PYTEST_ADDOPTS": "-p no:cacheprovider",
}
#: What a file operation may return (a manifest of 200,000 entries, a large file read whole): more than a program's
#: output, so a workspace the agent filled cannot make its own listing fail.
FS_OUTPUT_BYTES = 256 << 20
#: Exit codes of runner.python (kept in one place so every sandbox classifies alike).
EXIT_ASSERTION, EXIT_EXCEPTION = 1, 2


@dataclass(frozen=True)
class SandboxLimits:
    timeout: float = 10.0  # seconds of wall time per run
    memory_mb: int = 1024  # a run's total: its processes plus what it keeps in RAM-backed /work, /tmp
    cpus: float = 1.0
    output_bytes: int = 1 << 20  # per stream; the rest is dropped, the tail kept
    file_bytes: int = 64 << 20  # largest file the code may write
    disk_mb: int = 256  # the workspace's total size


@dataclass
class ExecResult:
    exit_code: int | None  # None when killed for the timeout
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False  # output went past the cap
    audit: dict | None = None  # an audited run: {"events": [...], "lost": why it is incomplete, or None}

    @property
    def verdict(self) -> tuple[str, str]:
        """(status, reason) of a plain program, in the Outcome taxonomy's values: its exit status decides."""
        if self.timed_out:
            return "timeout", "killed after the time limit"
        if self.exit_code == 0:
            return "passed", ""
        last = last_line(self.stderr)
        if self.exit_code == EXIT_ASSERTION:
            return "failed", last or "AssertionError"
        if self.exit_code is not None and self.exit_code < 0:
            return "error", f"killed by signal {-self.exit_code}" + (f" ({last})" if last else "")
        return "error", last or f"exit status {self.exit_code}"


@dataclass(frozen=True)
class Candidate:
    """Model-written code to grade: its source (prompt + completion) and the function the tests call."""

    source: str
    entry_point: str


@dataclass(frozen=True)
class HiddenTests:
    """The dataset's tests. `setup` (the prompt) defines helpers the tests may use; `test` defines and may call the
    checks; `call` runs them (e.g. "check(f)"). They run in the grader only, never where the candidate runs."""

    test: str
    setup: str = ""
    call: str | None = None


@dataclass
class GradedRun:
    """How a graded run ended. `result` holds the candidate's output (plus the failing test's traceback)."""

    status: str  # passed / failed / error / timeout / infra
    reason: str
    result: ExecResult
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class Sandbox(ABC):
    """A fresh workspace per test; `close()` ends everything running in it and empties it. Register a subclass with
    `@registry.sandboxes.register("name")`; `--sandbox name` then picks it."""

    kind: str = "base"  # names the sandbox in reports and caches
    #: said at start and in the report header when this sandbox is chosen (unconfined: no isolation)
    warning: ClassVar[Optional[str]] = None

    @classmethod
    def create(
        cls,
        limits: SandboxLimits,
        *,
        site_packages: bool = False,
        image: Optional[str] = None,
        host: Optional[str] = None,
    ) -> Sandbox:
        """A fresh sandbox. `site_packages`: the suite's code needs the installed packages (read-only), e.g. sympy;
        `image`: what a container sandbox starts from (--sandbox-image); `host`: the engine it runs on
        (--docker-host), None: the local one."""
        return cls(limits)

    @classmethod
    def preflight(cls, image: Optional[str] = None, host: Optional[str] = None) -> None:
        """Fail closed before any item: raise AgentbenchError (one line) when this sandbox cannot run here."""

    workdir: str = "/work"  # the workspace as the code inside sees it
    scratch: tuple[str, ...] = ()  # the sandbox's own temporary folders, emptied with the workspace

    def __init__(self, limits: SandboxLimits):
        self.limits = limits
        #: the workspace was lost (the sandbox's server or container ended), in order: {"why", "during_run": it ended
        #: while a run was in it, rather than between runs}; each later run started from an empty workspace
        self.losses: list[dict] = []

    def lost(self, why: str, during_run: bool = True) -> None:
        """Note that the workspace is gone (whatever the sandbox runs next starts from an empty one)."""
        self.losses.append({"why": why, "during_run": during_run})

    # -- the one transport a sandbox implements -------------------------------------------------------
    @abstractmethod
    def _run(
        self,
        *,
        mode: str | None = None,
        argv: list[str] | None = None,
        stdin: bytes = b"",
        timeout: float,
        env: dict[str, str] | None = None,
        nofork: bool = False,
        verdict: bool = False,
        audit: bool = False,
        cap: int | None = None,
    ) -> tuple[ExecResult, str]:
        """Run a runner mode (reading `stdin`) or an argv in the workspace. Returns the result and, for graded runs,
        the text of the verdict channel; an audited argv run carries its audit record in `result.audit`
        (runner.trace_run). Raises HarnessError only for the sandbox's own failures."""

    def close(self) -> None:
        """Release the workspace and everything still running in it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _timeout(self, timeout: float | None) -> float:
        return self.limits.timeout if timeout is None else timeout

    # -- running --------------------------------------------------------------------------------------
    def exec(
        self,
        argv: list[str],
        *,
        timeout: float | None = None,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        fork: bool = True,
        audit: bool = False,
    ) -> ExecResult:
        """Run argv in the workspace; never raises for the program's own failure, only for infrastructure.
        `audit`: record what the run's processes did (programs executed, files opened, paths created, renamed or
        removed) in `result.audit`, whatever the command line said (runner.trace_run)."""
        result, _ = self._run(
            argv=list(argv), stdin=stdin or b"", timeout=self._timeout(timeout), env=env, nofork=not fork, audit=audit
        )
        if audit and result.audit is None:
            result.audit = {"events": [], "lost": "the sandbox returned no audit record"}
        return result

    def audit_config(self) -> dict:
        """What the runner's tracer needs: the audit filter, its syscall numbers, the roots whose files it keeps."""
        return {
            "bpf": seccomp.audit_bpf().hex(),
            "syscalls": {str(k): v for k, v in seccomp.audit_syscalls().items()},
            "roots": [self.workdir, *(self.scratch or ("/tmp", "/dev/shm"))],
        }

    def run_python(self, source: str, *, timeout: float | None = None, fork: bool = False) -> ExecResult:
        """Run a Python program (plain semantics: its exit status). Nothing is written to the workspace."""
        header = {"nofork_bpf": "" if fork else nofork_bpf().hex()}
        data = runner.frame(json.dumps(header).encode()) + runner.frame(source.encode("utf-8", "surrogatepass"))
        result, _ = self._run(mode="python", stdin=data, timeout=self._timeout(timeout), nofork=not fork)
        return result

    def run_tests(self, candidate: Candidate, tests: HiddenTests, *, timeout: float | None = None) -> GradedRun:
        """The graded run: the tests run in a grader process that the candidate cannot reach (runner.graded)."""
        nonce = secrets.token_hex(16)
        header = {"entry_point": candidate.entry_point, "nofork_bpf": nofork_bpf().hex()}
        body = {"setup": tests.setup, "test": tests.test, "call": tests.call, "nonce": nonce}
        data = (
            runner.frame(json.dumps(header).encode())
            + runner.frame(candidate.source.encode("utf-8", "replace"))
            + runner.frame(json.dumps(body).encode())
        )
        result, channel = self._run(
            mode="graded", stdin=data, timeout=self._timeout(timeout), nofork=True, verdict=True
        )
        found = runner.parse_verdict(channel, nonce)
        if result.timed_out:
            return GradedRun("timeout", "killed after the time limit", result)
        if found is None:
            last = last_line(result.stderr)
            return GradedRun(
                "error", "the run ended before the tests finished" + (f" ({last})" if last else ""), result
            )
        return GradedRun(found["status"], found.get("reason", ""), result)

    def verify(
        self, sources: dict[str, str], *, timeout: float | None = None, packages: list[str] | None = None
    ) -> GradedRun:
        """Hidden tests of the workspace (runner.verify): `test_*` functions run in a grader process that reaches the
        workspace's modules only through proxies of another process; `extra["tests"]` holds each test's result.
        `packages`: the only top-level names the tests' imports take from the workspace (default: every module the
        workspace holds); every other import comes from the grader's own environment."""
        nonce = secrets.token_hex(16)
        header: dict[str, Any] = {"root": self.workdir, "nofork_bpf": nofork_bpf().hex()}
        if packages is not None:
            header["packages"] = list(packages)
        data = runner.frame(json.dumps(header).encode()) + runner.frame(
            json.dumps({"sources": sources, "nonce": nonce}).encode()
        )
        result, channel = self._run(mode="verify", stdin=data, timeout=self._timeout(timeout), verdict=True)
        found = runner.parse_verdict(channel, nonce)
        if result.timed_out:
            return GradedRun("timeout", "the hidden tests did not finish in time", result)
        if found is None:
            return GradedRun(
                "error",
                "the verifier ended before the tests finished"
                + (f" ({last_line(result.stderr)})" if result.stderr.strip() else ""),
                result,
            )
        return GradedRun(found["status"], found.get("reason", ""), result, extra={"tests": found.get("tests", [])})

    # -- files (resolved inside the sandbox: `..`, absolute paths and links that leave it are refused) ------
    def manifest(self, git: bool = False) -> dict[str, list]:
        """{path: [type, size, sha256 or link target, inode]} of the workspace, .git left out unless `git`
        (runner._fs_manifest)."""
        status, out = self._fs("manifest", {"git": git})
        if not status["ok"]:
            raise HarnessError(f"cannot list the workspace: {status['error']}")
        entries = json.loads(out) if out else {}
        for problem in status.get("incomplete", []):
            entries[f"<incomplete: {problem}>"] = ["incomplete", 0, problem]
        return entries

    def _fs(self, op: str, args: dict, data: bytes | None = None, timeout: float = 60.0) -> tuple[dict, str]:
        header = {"op": op, "args": args, "has_data": data is not None}
        stdin = runner.frame(json.dumps(header).encode()) + (runner.frame(data) if data is not None else b"")
        result, _ = self._run(mode="fs", stdin=stdin, timeout=timeout, nofork=True, cap=FS_OUTPUT_BYTES)
        lines = [ln for ln in result.stderr.split("\n") if ln.strip()]
        line = lines[-1] if lines else ""  # whole: a status line can be long
        try:
            status = json.loads(line)
        except ValueError:
            status = None
        if not isinstance(status, dict):
            why = "timed out" if result.timed_out else line[:300] or f"exit {result.exit_code}"
            raise HarnessError(f"sandbox file operation {op} failed: {why}")
        return status, result.stdout

    # -- the workspace file API for tools: a refusal (a path that leads out, a missing file) raises Refused, whose
    # message is for the agent; what was touched comes back, resolved inside the sandbox, for the audit
    def read(self, path: str, max_bytes: int = 1 << 20) -> dict:
        """{"text", "size", "truncated", "path": the file really read, relative to the workspace}."""
        status, out = self._fs("read", {"path": path, "max_bytes": max_bytes})
        if not status["ok"]:
            raise Refused(status["error"])
        return {"text": out, "size": status["size"], "truncated": status["truncated"], "path": status["path"]}

    def write(self, path: str, content: str | bytes) -> dict:
        """{"written", "path": the file written, "made": folders created for it}."""
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
        status, _ = self._fs("write", {"path": path}, data)
        if not status["ok"]:
            raise Refused(status["error"])
        return {"written": status["written"], "path": status["path"], "made": status.get("made", [])}

    def grep(self, pattern: str, path: str = ".", max_matches: int = 200) -> dict:
        """{"text": path:line:text lines, "truncated", "shown": files with a line shown}."""
        status, out = self._fs("grep", {"pattern": pattern, "path": path, "max_matches": max_matches})
        if not status["ok"]:
            raise Refused(status["error"])
        return {"text": out, "truncated": status.get("truncated", False), "shown": status.get("shown", [])}

    def listdir(self, path: str = ".") -> list[dict]:
        status, out = self._fs("list", {"path": path})
        if not status["ok"]:
            raise Refused(status["error"])
        return json.loads(out)

    def scan(self, paths: list[str], needles: list[bytes], inflate: bool = False) -> dict:
        """Which needles each workspace file holds, every file read whole (`inflate`: git's loose objects
        decompressed first): {"hits": {path: [needle index]}, "problems": {path: why it could not be read}}
        (a check fails closed on a problem)."""
        if not paths or not needles:
            return {"hits": {}, "problems": {}}
        status, out = self._fs(
            "scan", {"paths": list(paths), "needles": [n.hex() for n in needles], "inflate": inflate}, timeout=300.0
        )
        if not status["ok"]:
            raise HarnessError(f"cannot scan the workspace: {status['error']}")
        return json.loads(out)

    def stat(self, paths: list[str]) -> dict[str, int]:
        """{path: inode} of the workspace paths that exist."""
        status, out = self._fs("stat", {"paths": list(paths)})
        if not status["ok"]:
            raise HarnessError(f"cannot stat files in the workspace: {status['error']}")
        return json.loads(out)

    def remove(self, paths: list[str]) -> None:
        """Remove workspace paths (files, links, trees)."""
        status, _ = self._fs("remove", {"paths": list(paths)})
        if not status["ok"]:
            raise HarnessError(f"cannot remove files in the workspace: {status['error']}")

    def write_file(self, path: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        status, _ = self._fs("write", {"path": path}, data)
        if not status["ok"]:
            raise PermissionError(status["error"])

    def read_file(self, path: str, max_bytes: int = 16 << 20) -> str:
        status, out = self._fs("read", {"path": path, "max_bytes": max_bytes})
        if not status["ok"]:
            raise FileNotFoundError(status["error"])
        return out

    def list_dir(self, path: str = ".") -> list[dict]:
        status, out = self._fs("list", {"path": path})
        if not status["ok"]:
            raise FileNotFoundError(status["error"])
        return json.loads(out)

    def put_files(self, files: dict[str, bytes | str] | Path) -> None:
        """Copy files into the workspace: a {relative path: content} mapping, or a host folder's tree."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            if isinstance(files, (str, Path)):
                tar.add(str(files), arcname=".", filter=_owned_by_sandbox)
            else:
                for name, content in sorted(files.items()):
                    data = content.encode() if isinstance(content, str) else content
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(data), 0o644, PUT_MTIME
                    tar.addfile(info, io.BytesIO(data))
        status, _ = self._fs("put_tar", {}, buf.getvalue())
        if not status["ok"]:
            raise HarnessError(f"cannot copy files into the sandbox: {status['error']}")

    def wipe(self) -> None:
        """Empty the workspace and /tmp, /dev/shm (a 3,000-level tree too: runner.remove_contents does not
        recurse), so the next run finds nothing an earlier one left."""
        status, _ = self._fs("wipe", {"scratch": list(self.scratch)})
        if not status["ok"]:
            raise HarnessError(f"cannot empty the workspace: {status['error']}")


class Refused(Exception):
    """A workspace path or request the sandbox refuses (it leads out, it is missing): the message is for the agent."""


#: Files copied into a workspace get this modification time (2024-01-01): `ls -l` then shows the same workspace in
#: every run, and git never takes them for "racily clean" (modified in the second its index was written), which
#: would make the agent's first `git status` re-read every file, protected ones included.
PUT_MTIME = 1704067200


def _owned_by_sandbox(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = PUT_MTIME
    return info


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().split("\n") if ln.strip()]  # newlines only, not U+2028 and kin
    return lines[-1].strip()[:300] if lines else ""


def decode(data: bytes) -> str:
    """Program output as text: exact for UTF-8, other bytes as \\xNN escapes (the JSONL keeps them, escaped)."""
    return data.decode("utf-8", "backslashreplace")
