"""Tools and the strict tool-call protocol: one registry for every agent (tool use, agent scenarios).

A reply holds optional `THOUGHT:` lines and then exactly one directive, the first one found:
    TOOL_CALL: {"tool": "<name>", "args": {...}}    a single JSON object with exactly these two keys
    FINAL: <answer>                                  the rest of the reply
Anything else (no directive, broken JSON, an unknown tool, wrong args) is a protocol error: `Unparsable`.
With native function calling (--prompt-format native) the tools go to the model API as functions (`function_of`)
and `read_native` reads the engine's calls with the same checks: a call is a ToolCall, plain text a Final.

Every tool runs in the sandbox against its workspace (Inspect's tools are built the same way, on the sandbox's
exec/read/write): paths are resolved there, so `..`, absolute paths and links that lead out are refused where the
candidate cannot interfere, and a refusal is text the model sees. Arguments are validated by a pydantic model
per tool (unknown or missing keys are protocol errors).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ... import registry
from ...sandbox.base import Refused

_DIRECTIVE = re.compile(r"^[ \t>*`]*(TOOL_CALL|FINAL)\s*:\s*", re.M)
_THOUGHT = re.compile(r"^[ \t>*`]*THOUGHT\s*:\s*", re.M)


@dataclass(frozen=True)
class ToolCall:
    tool: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Final:
    answer: str


@dataclass(frozen=True)
class Unparsable:
    reason: str


@dataclass(frozen=True)
class BadArgs(Unparsable):
    """A TOOL_CALL of a known tool whose arguments do not fit it: a protocol error by default; an agent may run it
    as a failed tool call instead (the tool-use suite, so that recovering from it can be measured)."""

    tool: str = ""
    args: dict = field(default_factory=dict, compare=False)


@dataclass
class ToolResult:
    ok: bool
    output: str
    seconds: float = 0.0
    error: Optional[str] = None  # why it failed: "refused" (path rules, limits), "timeout", "error"
    data: dict = field(default_factory=dict)
    effects: Optional[list] = None  # with ToolEnv.audit: what the call did (effects.py), None when not audited


@dataclass(frozen=True)
class ToolEnv:
    """What a tool may use: the sandbox, a time limit per command, and a cap on what the model is shown.
    `audit`: record what each tool call did to the workspace in `ToolResult.effects` (agent scenarios): commands
    through the sandbox's audit of their processes (Sandbox.exec(audit=True)), file tools from what the sandbox
    reports it read, showed or wrote."""

    sandbox: Any
    timeout: float = 30.0
    output_cap: int = 8 << 10
    write_cap: int = 1 << 20
    audit: bool = False


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tool:
    """A named action with validated arguments, run against the sandbox. Subclass, then register it
    (`@registry.tools.register`): `tools(name)` gives it to an agent."""

    name: ClassVar[str]
    description: ClassVar[str]
    use_when: ClassVar[str] = ""  # when the tool helps (the `tools` prompt format shows it)
    avoid_when: ClassVar[str] = ""  # when it does not
    Args: ClassVar[type[Args]] = Args

    def check(self, args: dict) -> str | None:
        """None when `args` fit the tool, else a one-line protocol error the model is shown."""
        try:
            self.Args.model_validate(args)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = str(err["loc"][0]) if err["loc"] else "args"
            if err["type"] == "extra_forbidden":
                return f"{self.name} takes no argument {where!r}"
            field = self.Args.model_fields.get(where)
            wanted = _type_name(field.annotation, short=True) if field is not None else "value"
            if err["type"] == "missing" or err["type"].endswith("_type"):
                return f"{self.name} needs '{where}' ({wanted})"
            return f"{self.name}: {where}: {err['msg']}"
        return None

    def schema(self) -> str:
        fields = self.Args.model_fields
        return ", ".join(
            f'"{k}": <{_type_name(f.annotation)}>' + ("" if f.is_required() else " (optional)")
            for k, f in fields.items()
        )

    def run(self, args: dict, env: ToolEnv) -> ToolResult:
        started = time.perf_counter()
        losses = len(getattr(env.sandbox, "losses", ()))
        try:
            result = self.call(self.Args.model_validate(args), env)
        except (Refused, PermissionError, FileNotFoundError, ValueError) as exc:
            result = ToolResult(False, f"ERROR: {exc}", error="refused", effects=[] if env.audit else None)
        if env.audit and result.effects is None:
            result.effects = []
        if env.audit and len(env.sandbox.losses) > losses:  # the sandbox lost the workspace during this call
            assert result.effects is not None  # set to [] above when auditing
            for loss in env.sandbox.losses[losses:]:
                result.effects.append({"op": "lost_workspace", **loss})
        result.seconds = time.perf_counter() - started
        if len(result.output) > env.output_cap:
            cut = len(result.output) - env.output_cap
            result.output = result.output[: env.output_cap] + f"\n[output truncated: {cut} more characters]"
        return result

    def call(self, args: BaseModel, env: ToolEnv) -> ToolResult:  # args: an instance of self.Args
        raise NotImplementedError


def _type_name(annotation, short: bool = False) -> str:
    import typing

    inner = [a for a in typing.get_args(annotation) if a is not type(None)]
    if type(None) in typing.get_args(annotation) and inner:
        annotation = inner[0]
    if short:
        return {list[str]: "list of str"}.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return {str: "str", int: "int", list[str]: "list of str"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def register(cls: type[Tool]) -> type[Tool]:
    """Class decorator: a tool every agent can be given by name (registry.tools)."""
    return registry.tools.add(cls)


def tools(*names: str) -> dict[str, Tool]:
    """Instances of the named tools (registry.tools), in that order."""
    unknown = [n for n in names if registry.tools.find(n) is None]
    if unknown:
        raise ValueError(f"unknown tool {unknown[0]!r} (known: {', '.join(registry.tools.names())})")
    return {name: registry.tools.get(name)() for name in names}


def parse_reply(text: str, available: dict[str, Tool]) -> ToolCall | Final | Unparsable:
    match = _DIRECTIVE.search(text or "")
    if match is None:
        return Unparsable("no TOOL_CALL: or FINAL: line")
    rest = text[match.end() :]
    if match.group(1) == "FINAL":
        answer = rest.strip().strip("`").strip()  # all of it: an agent's answer may take several lines
        return Final(answer) if answer else Unparsable("empty FINAL:")
    try:
        obj, _ = json.JSONDecoder().raw_decode(rest.strip())
    except json.JSONDecodeError as exc:
        return Unparsable(f"TOOL_CALL is not one JSON object ({exc.msg})")
    if not isinstance(obj, dict) or set(obj) != {"tool", "args"} or not isinstance(obj["args"], dict):
        return Unparsable('TOOL_CALL must be {"tool": name, "args": {...}}')
    return _checked(obj["tool"], obj["args"], available)


def _checked(name: Any, args: dict, available: dict[str, Tool]) -> ToolCall | Unparsable:
    """A call of `name` with `args`: a ToolCall, BadArgs (a known tool, arguments that do not fit), or Unparsable."""
    tool = available.get(name) if isinstance(name, str) else None
    if tool is None:
        return Unparsable(f"unknown tool {name!r} (tools: {', '.join(sorted(available))})")
    problem = tool.check(args)
    return BadArgs(problem, tool.name, args) if problem else ToolCall(tool.name, args)


# -- native function calling ------------------------------------------------------------------------------------
def function_of(tool: Tool) -> dict[str, Any]:
    """A tool as an OpenAI-style function: name, description, and the JSON schema of its arguments (pydantic's,
    titles dropped; no other keys, as the Args models forbid them)."""
    schema = tool.Args.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema["additionalProperties"] = False
    return {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": schema}}


def read_native(completion, available: dict[str, Tool]) -> ToolCall | Final | Unparsable:
    """A native reply (Completion.tool_calls / .text / .protocol_error) as the protocol's ToolCall, Final or
    Unparsable, checked like `parse_reply`. One call per step, as in the text protocol: the first call is the step
    (`len(completion.tool_calls)` says how many the model made). A reply without calls is the answer; when it holds
    a `FINAL:` line (the tool-use tasks ask for one), what follows it, as the text protocol reads it."""
    if completion.protocol_error:
        return Unparsable(f"malformed native call: {completion.protocol_error}")
    if not completion.tool_calls:
        text = (completion.text or "").strip()
        found = _DIRECTIVE.search(text)
        if found is not None and found.group(1) == "FINAL":  # a task that asks for a `FINAL:` line gets it read
            text = text[found.end() :].strip().strip("`").strip() or text
        return Final(text) if text else Unparsable("an empty reply (no content, no function call)")
    call = completion.tool_calls[0]
    name, raw = call.get("name"), call.get("arguments")
    if isinstance(raw, str):
        try:
            args = json.loads(raw or "{}")
        except json.JSONDecodeError as exc:
            return Unparsable(f"{name!r}: arguments are not JSON ({exc.msg})")
    else:
        args = raw if raw is not None else {}
    if not isinstance(args, dict):
        return Unparsable(f"{name!r}: arguments are not a JSON object")
    return _checked(name, args, available)


def thought_of(text: str) -> str:
    """The THOUGHT: text before the directive (empty when there is none)."""
    directive = _DIRECTIVE.search(text or "")
    head = text[: directive.start()] if directive else text or ""
    match = _THOUGHT.search(head)
    return head[match.end() :].strip() if match else ""


def describe(available: dict[str, Tool]) -> str:
    return "\n".join(f"- {t.name}: {t.description} Args: {{{t.schema()}}}" for t in available.values())


def guide(available: dict[str, Tool]) -> str:
    """When each tool helps and when it does not, and when to answer directly (the `tools` prompt format)."""
    lines = [
        f"- {t.name}: use it when {t.use_when}; not when {t.avoid_when}."
        for t in available.values()
        if t.use_when and t.avoid_when
    ]
    lines.append(
        "- no tool: answer directly (FINAL at once) when reading and reasoning give a certain answer: what a "
        "short piece of code does, its complexity, a definition or a concept. A tool call costs time."
    )
    return "\n".join(lines)


# -- Python in the sandbox (the tool-use suite) -----------------------------------------------------------
def _python_output(sandbox, program: str, timeout: float) -> ToolResult:
    run = sandbox.run_python(program, timeout=timeout)  # no fork: tool code needs no processes
    status, reason = run.verdict
    out = run.stdout.strip()
    if status != "passed":
        out = (out + "\n" if out else "") + f"{status}: {reason}"
    return ToolResult(
        ok=status == "passed",
        output=out[-2000:] or "(no output)",
        error=None if status == "passed" else "timeout" if status == "timeout" else "error",
    )


class CodeArgs(Args):
    code: str


class CodeExecutor(Tool):
    name = "code_executor"
    description = "runs Python 3 code in a sandbox and returns what it prints."
    use_when = (
        "the answer is the exact result of a long or repetitive computation (large numbers, loops, "
        "counting, simulating a process), which is easy to get wrong by hand"
    )
    avoid_when = "the answer follows from reading or reasoning, or is a symbolic expression (use symbolic_math)"
    Args = CodeArgs

    def call(self, args, env):
        return _python_output(env.sandbox, args.code, env.timeout)


SYMPY_PROGRAM = """\
import json
import sympy as sp
a = json.loads({args!r})
var = sp.Symbol(a.get("variable") or "x")
expr = sp.sympify(a["expression"])
op = a["operation"]
if op == "simplify":
    out = sp.simplify(expr)
elif op == "diff":
    out = sp.diff(expr, var)
elif op == "integrate":
    out = sp.integrate(expr, var)
elif op == "solve":
    out = ", ".join(str(s) for s in sorted(sp.solve(expr, var), key=sp.default_sort_key))
elif op == "evaluate":
    out = sp.nsimplify(expr) if expr.is_number else sp.simplify(expr)
else:
    raise ValueError("operation must be simplify, diff, integrate, solve or evaluate")
print(out)
"""


class SymbolicArgs(Args):
    operation: str
    expression: str
    variable: Optional[str] = None


class SymbolicMath(Tool):
    name = "symbolic_math"
    description = (
        "sympy in a sandbox: operation is simplify, diff, integrate, solve (expression = 0) or evaluate; "
        "expression in sympy syntax (x**2, sin(x))."
    )
    use_when = (
        "the answer is exact symbolic mathematics: a derivative, an integral, an equation's roots, a simplification"
    )
    avoid_when = "the work is arithmetic over many steps or a program's output (use code_executor), or plain reasoning"
    Args = SymbolicArgs

    def call(self, args, env):
        # The arguments go in as a string literal (data); sympify then parses the model's expression, in the
        # sandbox, as a tool the model asked for.
        payload = json.dumps(args.model_dump(exclude_none=True))
        return _python_output(env.sandbox, SYMPY_PROGRAM.format(args=payload), env.timeout)


# -- the workspace (agent scenarios) ------------------------------------------------------------------------
class PathArgs(Args):
    path: str


class ReadFile(Tool):
    name = "read_file"
    description = "returns a file of the workspace (a path relative to it)."
    Args = PathArgs

    def call(self, args, env):
        got = env.sandbox.read(args.path, max_bytes=env.output_cap)
        note = f"\n[file truncated: {got['size']} bytes in all]" if got["truncated"] else ""
        return ToolResult(
            True,
            got["text"] + note,
            data={"path": args.path},
            effects=[{"op": "read", "path": got["path"], "by": self.name}],
        )


class WriteArgs(Args):
    path: str
    content: str


class WriteFile(Tool):
    name = "write_file"
    description = "writes (creates or replaces) a file of the workspace with the given content."
    Args = WriteArgs

    def call(self, args, env):
        data = args.content.encode("utf-8", "surrogatepass")
        if len(data) > env.write_cap:
            return ToolResult(
                False, f"ERROR: content of {len(data)} bytes is over the {env.write_cap}-byte limit", error="refused"
            )
        done = env.sandbox.write(args.path, data)
        effects = [{"op": "mkdir", "path": folder, "by": self.name} for folder in done["made"]]
        effects.append({"op": "write", "path": done["path"], "by": self.name})
        return ToolResult(True, f"wrote {len(data)} bytes to {args.path}", data={"path": args.path}, effects=effects)


class DirArgs(Args):
    path: str = "."


class ListDir(Tool):
    name = "list_dir"
    description = "lists a directory of the workspace (names, with / after directories)."
    Args = DirArgs

    def call(self, args, env):
        names = [e["name"] + ("/" if e["type"] == "dir" else "") for e in env.sandbox.listdir(args.path)]
        return ToolResult(True, "\n".join(names) or "(empty)", data={"path": args.path})


class CmdArgs(Args):
    cmd: list[str] = Field(min_length=1)


class RunCmd(Tool):
    name = "run_cmd"
    description = (
        'runs a command in the workspace: an argv list, no shell (e.g. ["python", "-m", "pytest", '
        '"-q"]); returns its exit status and output.'
    )
    Args = CmdArgs

    def call(self, args, env):
        result = env.sandbox.exec(list(args.cmd), timeout=env.timeout, fork=True, audit=env.audit)
        effects = audited_effects(result, env.sandbox.workdir) if env.audit else None
        if result.timed_out:
            return ToolResult(
                False,
                f"ERROR: the command did not finish within {env.timeout:g} s and was killed\n"
                + _tail(result.stdout + result.stderr, env.output_cap // 2),
                error="timeout",
                effects=effects,
            )
        text = f"exit status {result.exit_code}\n" + _streams(result.stdout, result.stderr, env.output_cap)
        return ToolResult(result.exit_code == 0, text, error=None if result.exit_code == 0 else "exit", effects=effects)


GIT = [
    "git",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.pager=cat",
    "-c",
    "core.quotepath=off",
]
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"}


class GitDiff(Tool):
    name = "git_diff"
    description = "shows what changed in the workspace since the task began (git diff, new files included)."
    Args = Args

    def call(self, args, env):
        # The repository's own configuration is the agent's to write (.git/config, .gitattributes: filters, text
        # conversions), so these runs are the agent's too: audited like its commands.
        staged = env.sandbox.exec(
            [*GIT, "add", "-A", "--intent-to-add"], timeout=env.timeout, env=GIT_ENV, audit=env.audit
        )
        result = env.sandbox.exec(
            [*GIT, "diff", "--no-color", "--no-ext-diff", "--no-textconv", "HEAD"],
            timeout=env.timeout,
            env=GIT_ENV,
            audit=env.audit,
        )
        effects = (
            audited_effects(staged, env.sandbox.workdir) + audited_effects(result, env.sandbox.workdir)
            if env.audit
            else None
        )
        if result.exit_code != 0:
            return ToolResult(
                False, f"ERROR: git diff failed: {result.stderr.strip()[-500:]}", error="error", effects=effects
            )
        return ToolResult(True, result.stdout or "(no changes)", effects=effects)


class GrepArgs(Args):
    pattern: str
    path: str = "."


class Grep(Tool):
    name = "grep"
    description = "searches files of the workspace for a regular expression; returns path:line:text lines."
    Args = GrepArgs

    def call(self, args, env):
        found = env.sandbox.grep(args.pattern, args.path, max_matches=200)
        note = "\n[more matches not shown]" if found["truncated"] else ""
        # what the model was shown of each file (a file read without a matching line shows it nothing)
        effects = [{"op": "shown", "path": path, "by": self.name} for path in found["shown"]]
        return ToolResult(True, (found["text"] or "(no matches)") + note, data={"path": args.path}, effects=effects)


def audited_effects(result, workdir: str) -> list[dict]:
    """A run's audit record as effects of the tool call: paths inside the workspace made relative to it."""
    from ...effects import from_audit

    return from_audit(result.audit, workdir)


def _tail(text: str, cap: int) -> str:
    return text if len(text) <= cap else "[...]" + text[-cap:]


def _streams(stdout: str, stderr: str, cap: int) -> str:
    parts = []
    if stdout:
        parts.append("stdout:\n" + _tail(stdout, cap // 2))
    if stderr:
        parts.append("stderr:\n" + _tail(stderr, cap // 2))
    return "\n".join(parts) or "(no output)"


WORKSPACE_TOOLS = ("read_file", "write_file", "list_dir", "run_cmd", "git_diff", "grep")


def tool_use_tools() -> dict[str, Tool]:
    return tools("code_executor", "symbolic_math")
