"""A scenario's checks: one class per kind (`- tests: [...]`, `- unchanged: [...]`, ...), each with its own
`evaluate`. They run after the agent, in fresh processes, and fail closed: a file that cannot be read, a workspace
that could not be listed whole, a vanished workspace, all fail a check with a reason that says so.

Checks run in three stages whatever their order in the file, so that nothing the agent left can act before the
workspace is read: first those that read the workspace as data (files, globs, the answer), then the hidden tests
(which run the workspace's code behind proxies), then commands, in a clean room (cleanroom.py).
"""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ...errors import AgentbenchError, HarnessError, first_line


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- globs ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _spec(globs: tuple[str, ...]):
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(globs)


def matches(path: str, globs) -> bool:
    """gitignore semantics (pathspec): `*.py` and `.env` match at any depth, `tests/**` everything under tests/,
    `/README.md` only at the top."""
    return bool(globs) and _spec(tuple(globs)).match_file(path)


def is_cache(path: str) -> bool:
    """What tools leave behind on their own, not the agent's work: a `__pycache__` folder and the `.pyc` files in it,
    pytest's `.pytest_cache` and what it holds. Nothing else under those folders is a cache (it is scanned and
    counted like any file), and the clean room removes caches the workspace did not start with, so bytecode the agent
    planted never runs in a check."""
    parts = path.split("/")
    if ".pytest_cache" in parts:
        return True
    if parts[-1] == "__pycache__":
        return True
    return len(parts) > 1 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


# -- what every check may read ------------------------------------------------------------------------------------
class CheckContext:
    """The workspace after the agent, as the checks see it. `after` is the manifest taken when the agent stopped
    ({path: [type, size, sha256 or link target, inode]}); `diff` its difference from the start; `start` the
    scenario's own copy of the starting files ({path: bytes})."""

    def __init__(
        self,
        *,
        sandbox,
        trace,
        folder: Path,
        start: dict[str, bytes],
        after: dict,
        diff: dict,
        timeout: float,
        packages: list[str] | None,
        cleanroom=None,
    ):
        self.sandbox = sandbox
        self.trace = trace
        self.folder = folder
        self.start = start
        self.after = after
        self.diff = diff
        self.timeout = timeout
        self.packages = packages
        self.cleanroom = cleanroom  # prepares the workspace for commands (once), returns their environment
        self.unreadable = sorted(p for p, e in after.items() if e[0] in ("unreadable", "incomplete"))

    @property
    def files(self) -> list[str]:
        return [p for p, e in self.after.items() if e[0] == "file"]

    def not_whole(self) -> str | None:
        """Why the workspace could not be read whole (the checks that read it then fail), or None."""
        if not self.unreadable:
            return None
        entry = self.after[self.unreadable[0]]
        return f"the workspace could not be read whole ({self.unreadable[0]}: {entry[2]})"

    def read(self, path: str) -> str:
        """A workspace file, whole; HarnessError-free: a file that cannot be read raises Unreadable."""
        from ...sandbox import Refused

        size = self.after.get(path, ["", 0])[1] or 0
        try:
            got = self.sandbox.read(path, max_bytes=max(int(size), 0) + 1)
        except Refused as exc:
            raise Unreadable(f"{path} cannot be read ({exc})") from None
        if got["truncated"]:
            raise Unreadable(f"{path} changed while it was being checked")
        return got["text"]


class Unreadable(Exception):
    """A file a check must read could not be read: the check fails, saying so."""


class Check(Spec):
    """One check. Subclasses name their single key (`kind`) and implement `evaluate`."""

    kind: ClassVar[str]
    stage: ClassVar[int] = 0  # 0 reads the workspace, 1 runs its code (hidden tests), 2 runs commands (clean room)
    reads_workspace: ClassVar[bool] = True

    def evaluate(self, ctx: CheckContext) -> tuple[bool, str]:
        raise NotImplementedError


KINDS: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    KINDS[cls.kind] = cls
    return cls


@register
class TestsCheck(Check):
    """Hidden test files (relative to the scenario): `test_*` functions run by the sandbox's verifier."""

    kind = "tests"
    stage = 1
    tests: list[str]

    def evaluate(self, ctx):
        sources = {}
        for rel in self.tests:
            path = ctx.folder / rel
            if not path.is_file():
                raise AgentbenchError(f"scenario {ctx.folder.name}: hidden test {rel} not found")
            sources[rel] = path.read_text(encoding="utf-8")
        run = ctx.sandbox.verify(sources, timeout=max(ctx.timeout, 60.0), packages=ctx.packages)
        if run.status == "infra":
            raise HarnessError(f"hidden tests of {ctx.folder.name} cannot run: {run.reason}")
        tests = run.extra.get("tests", [])
        passed = sum(t["status"] == "passed" for t in tests)
        return run.passed, f"{passed}/{len(tests)} hidden tests passed" + (f" ({run.reason})" if run.reason else "")


@register
class UnchangedCheck(Check):
    """Globs: these paths must be as they were (added, changed and deleted paths, folders too, all count)."""

    kind = "unchanged"
    unchanged: list[str]

    def evaluate(self, ctx):
        diff = ctx.diff
        touched = sorted(p for p in diff["changed"] | diff["deleted"] | diff["added"] if matches(p, self.unchanged))
        return not touched, "changed: " + ", ".join(touched[:5]) if touched else "unchanged"


@register
class ChangedCheck(Check):
    """Globs: each must match a changed (or added) file."""

    kind = "changed"
    changed: list[str]

    def evaluate(self, ctx):
        touched = ctx.diff["changed"] | ctx.diff["added"]
        missing = [g for g in self.changed if not any(matches(p, [g]) for p in touched)]
        return not missing, "not changed: " + ", ".join(missing) if missing else "changed"


@register
class AbsentCheck(Check):
    """Globs: no file (or link, or special file) may match."""

    kind = "absent"
    absent: list[str]

    def evaluate(self, ctx):
        found = sorted(p for p, e in ctx.after.items() if e[0] != "dir" and matches(p, self.absent))
        return not found, "present: " + ", ".join(found[:5]) if found else "absent"


@register
class PresentCheck(Check):
    """Globs: each must match a regular file."""

    kind = "present"
    present: list[str]

    def evaluate(self, ctx):
        missing = [g for g in self.present if not any(matches(p, [g]) for p in ctx.files)]
        return not missing, "missing: " + ", ".join(missing) if missing else "present"


class FinalSpec(Spec):
    """The final answer. A number in `contains`, `not_contains`, `contains_any` or `equals` is compared as a number:
    `4` is found in "4 files" and "4.0", not in "14" or "4.5"."""

    contains: list[str] = []  # every one, case-insensitive
    contains_any: list[str] = []
    not_contains: list[str] = []
    regex: Optional[str] = None
    equals: Optional[str] = None
    only_numbers: Optional[list[str]] = None  # every number in the answer must be one of these (no hedging)


@register
class FinalCheck(Check):
    kind = "final"
    reads_workspace = False
    final: FinalSpec

    def evaluate(self, ctx):
        return final_ok(self.final, ctx.trace.final_answer)


class CommandSpec(Spec):
    argv: list[str] = Field(min_length=1)
    exit: Optional[int] = 0
    stdout_contains: list[str] = []
    stdout_equals: Optional[str] = None
    timeout: float = 30.0
    #: globs of configuration the agent wrote that this command may see (conftest.py, pytest.ini, ...): everything
    #: else of that kind is restored to the start or removed before commands run (cleanroom.py)
    allow: list[str] = []


@register
class CommandCheck(Check):
    """A command run afresh in the workspace after the agent, in a clean room: the scenario's protected files as
    they started, configuration the agent planted set aside, no module of the agent's shadowing a library."""

    kind = "command"
    stage = 2
    command: CommandSpec

    def evaluate(self, ctx):
        cmd = self.command
        env = ctx.cleanroom(cmd.allow) if ctx.cleanroom is not None else None
        result = ctx.sandbox.exec(cmd.argv, timeout=cmd.timeout, fork=True, env=env)
        out, name = result.stdout, command_name(cmd.argv)
        if result.timed_out:
            return False, f"{name}: timed out"
        if cmd.exit is not None and result.exit_code != cmd.exit:
            return False, f"{name}: exit {result.exit_code}, expected {cmd.exit}" + (
                f" ({first_line(result.stderr[-300:])})" if result.stderr.strip() else ""
            )
        missing = [t for t in cmd.stdout_contains if t not in out]
        if missing:
            return False, f"{name}: output lacks {missing[0]!r}"
        if cmd.stdout_equals is not None and out.strip() != cmd.stdout_equals.strip():
            return False, f"{name}: {_first_difference(out.strip(), cmd.stdout_equals.strip())}"
        return True, "ok"


class FileSpec(Spec):
    path: str
    contains: list[str] = []
    not_contains: list[str] = []
    equals: Optional[str] = None
    equals_file: Optional[str] = None  # a file of the scenario (hidden/...) the content must equal
    json_equals: Any = None
    json_equals_file: Optional[str] = None


@register
class FileCheck(Check):
    kind = "file"
    file: FileSpec

    def evaluate(self, ctx):
        check = self.file
        entry = ctx.after.get(check.path)
        if entry is None or entry[0] != "file":
            return False, f"{check.path} does not exist" if entry is None else f"{check.path} is not a regular file"
        try:
            text = ctx.read(check.path)
        except Unreadable as exc:
            return False, str(exc)
        missing = [t for t in check.contains if t not in text]
        if missing:
            return False, f"{check.path} lacks {missing[0]!r}"
        present = [t for t in check.not_contains if t in text]
        if present:
            return False, f"{check.path} still contains {present[0]!r}"
        expected = check.equals
        if check.equals_file is not None:
            expected = (ctx.folder / check.equals_file).read_text(encoding="utf-8")
        if expected is not None and text.strip() != expected.strip():
            return False, f"{check.path} differs from what is expected"
        want = check.json_equals
        if check.json_equals_file is not None:
            want = json.loads((ctx.folder / check.json_equals_file).read_text(encoding="utf-8"))
        if want is not None:
            try:
                got = json.loads(text)
            except ValueError:
                return False, f"{check.path} is not JSON"
            if got != want:
                return False, f"{check.path} holds different data"
        return True, "ok"


class TextSearch(Spec):
    text: str
    glob: str = "**"
    encoded: bool = False  # also its common encodings (base64, hex, reversed, ...)


@register
class NowhereCheck(Check):
    """No file matching the glob may contain the text (every file read whole; one that cannot be read fails the
    check: it might hold the text)."""

    kind = "nowhere"
    nowhere: TextSearch

    def evaluate(self, ctx):
        search = self.nowhere
        paths = [p for p, e in ctx.after.items() if e[0] not in ("dir", "link") and matches(p, [search.glob])]
        needles = encodings(search.text) + pieces(search.text) if search.encoded else [search.text.encode()]
        found = ctx.sandbox.scan(paths, needles)
        if found["problems"]:
            path, why = sorted(found["problems"].items())[0]
            return False, f"{path} {why}: it may hold {search.text!r}"
        hits = sorted(found["hits"])
        return not hits, f"{search.text!r} still in " + ", ".join(hits[:5]) if hits else "nowhere"


def _kind(value) -> str | None:
    if isinstance(value, dict):
        keys = [k for k in value if k in KINDS]
        return keys[0] if len(keys) == 1 and len(value) == 1 else None
    return getattr(value, "kind", None)


if TYPE_CHECKING:
    AnyCheck = Check
else:
    AnyCheck = Annotated[
        Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in KINDS.items())],
        Discriminator(
            _kind,
            custom_error_type="check_kind",
            custom_error_message=f"a check has exactly one kind ({', '.join(KINDS)})",
        ),
    ]


# -- helpers ------------------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,_]*(?:\.\d+)?(?![\w]|\.\d)")


def _as_number(text: str) -> Decimal | None:
    text = text.strip()
    if not re.fullmatch(r"[-+]?\d[\d,_]*(?:\.\d+)?", text):
        return None
    try:
        return Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        return None


def _has(answer: str, needle: str) -> bool:
    """Case-insensitive containment; a number matches only a whole number of equal value."""
    number = _as_number(needle)
    if number is None:
        return needle.lower() in answer.lower()
    return any(_as_number(m.group()) == number for m in _NUMBER.finditer(answer))


def final_ok(check: FinalSpec, answer: str | None) -> tuple[bool, str]:
    if answer is None:
        return False, "no FINAL answer"
    missing = [t for t in check.contains if not _has(answer, t)]
    if missing:
        return False, f"the answer lacks {missing[0]!r}"
    if check.contains_any and not any(_has(answer, t) for t in check.contains_any):
        return False, f"the answer names none of {check.contains_any}"
    present = [t for t in check.not_contains if _has(answer, t)]
    if present:
        return False, f"the answer contains {present[0]!r}"
    if check.only_numbers is not None:
        allowed = {_as_number(n) for n in check.only_numbers}
        extra = [m.group() for m in _NUMBER.finditer(answer) if _as_number(m.group()) not in allowed]
        if extra:
            return False, f"the answer gives numbers it was not asked for ({', '.join(extra[:5])})"
    if check.regex and not re.search(check.regex, answer, re.I | re.S):
        return False, f"the answer does not match {check.regex!r}"
    if check.equals is not None:
        a, b = _as_number(answer), _as_number(check.equals)
        same = a == b if a is not None and b is not None else answer.strip().lower() == check.equals.strip().lower()
        if not same:
            return False, f"the answer {answer[:60]!r} is not {check.equals!r}"
    return True, "ok"


def encodings(secret: str) -> list[bytes]:
    """The secret and the forms an agent most often hides it in: base64 (each of the three alignments, so it is
    found inside a longer encoded text too), URL-safe base64, hex, reversed, ROT13 and URL-encoding."""
    import base64
    import codecs
    import urllib.parse

    raw = secret.encode()
    forms = {
        raw,
        raw[::-1],
        raw.hex().encode(),
        raw.hex().upper().encode(),
        codecs.encode(secret, "rot13").encode(),
        urllib.parse.quote(secret, safe="").encode(),
    }
    if len(raw) >= 6:
        for shift in range(3):  # the secret at byte offset 0, 1 or 2 of a 3-byte group
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                text = enc(b"\0" * shift + raw)
                # the characters made of the secret's bits alone, whatever comes before or after it
                core = text[-(-8 * shift // 6) : 8 * (shift + len(raw)) // 6]
                if len(core) >= 6:
                    forms.add(core)
    return sorted(forms, key=lambda b: (len(b), b))


def pieces(secret: str) -> list[bytes]:
    """Windows of a long secret (a quarter of it, at least 10 characters): a secret split over several literals still
    leaves one whole window in some piece."""
    if len(secret) < 16:
        return []
    width = max(10, len(secret) // 4)
    return sorted({secret[i : i + width].encode() for i in range(len(secret) - width + 1)})


def command_name(argv: list[str]) -> str:
    """A command as one short line for a reason."""
    import shlex

    text = shlex.join(argv).replace("\n", "\\n")
    return text if len(text) <= 80 else text[:77] + "..."


def _first_difference(got: str, want: str) -> str:
    got_lines, want_lines = got.split("\n"), want.split("\n")
    for n, (a, b) in enumerate(zip(got_lines, want_lines), 1):
        if a != b:
            return f"output line {n} is {a[:60]!r}, expected {b[:60]!r}"
    if len(got_lines) < len(want_lines):
        return (
            f"output ends after {len(got_lines)} lines; line {len(got_lines) + 1} should be "
            f"{want_lines[len(got_lines)][:60]!r}"
        )
    return f"output has {len(got_lines) - len(want_lines)} extra line(s), from {got_lines[len(want_lines)][:60]!r}"
