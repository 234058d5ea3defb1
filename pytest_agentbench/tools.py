"""Tools and the strict tool-call protocol shared by the tool-use suite and agent scenarios.

A reply holds optional `THOUGHT:` lines and then exactly one directive, the first one found:
    TOOL_CALL: {"tool": "<name>", "args": {...}}    a single JSON object with exactly these two keys
    FINAL: <answer>
Anything else (no directive, broken JSON, an unknown tool, wrong args) is "unparsable".
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

_DIRECTIVE = re.compile(r"^[ \t>*`]*(TOOL_CALL|FINAL)\s*:\s*", re.M)


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


@dataclass
class ToolResult:
    ok: bool
    output: str
    seconds: float = 0.0


@dataclass
class Tool:
    """A named action with a JSON argument schema (argument -> type), run against the sandbox."""

    name: str
    description: str
    args: dict[str, type]
    optional: dict[str, type] = field(default_factory=dict)

    def check(self, args: dict) -> str | None:
        for key, kind in self.args.items():
            if not isinstance(args.get(key), kind):
                return f"{self.name} needs '{key}' ({kind.__name__})"
        extra = set(args) - set(self.args) - set(self.optional)
        if extra:
            return f"{self.name} takes no argument {sorted(extra)[0]!r}"
        return None

    def run(self, args: dict, sandbox, timeout: float) -> ToolResult:
        raise NotImplementedError


def parse_reply(text: str, tools: dict[str, Tool]) -> ToolCall | Final | Unparsable:
    match = _DIRECTIVE.search(text or "")
    if match is None:
        return Unparsable("no TOOL_CALL: or FINAL: line")
    rest = text[match.end():]
    if match.group(1) == "FINAL":
        answer = rest.strip().split("\n", 1)[0].strip().strip("`").strip()
        return Final(answer) if answer else Unparsable("empty FINAL:")
    try:
        obj, _ = json.JSONDecoder().raw_decode(rest.strip())
    except json.JSONDecodeError as exc:
        return Unparsable(f"TOOL_CALL is not one JSON object ({exc.msg})")
    if not isinstance(obj, dict) or set(obj) != {"tool", "args"} or not isinstance(obj["args"], dict):
        return Unparsable('TOOL_CALL must be {"tool": name, "args": {...}}')
    tool = tools.get(obj["tool"]) if isinstance(obj["tool"], str) else None
    if tool is None:
        return Unparsable(f"unknown tool {obj['tool']!r} (tools: {', '.join(sorted(tools))})")
    problem = tool.check(obj["args"])
    return Unparsable(problem) if problem else ToolCall(tool.name, obj["args"])


def describe(tools: dict[str, Tool]) -> str:
    lines = []
    for tool in tools.values():
        schema = ", ".join(f'"{k}": <{t.__name__}>' for k, t in {**tool.args, **tool.optional}.items())
        lines.append(f"- {tool.name}: {tool.description} Args: {{{schema}}}")
    return "\n".join(lines)


# -- the tool-use suite's tools ---------------------------------------------------------------------
def _python_output(sandbox, program: str, timeout: float) -> ToolResult:
    started = time.perf_counter()
    run = sandbox.run_python(program, timeout=timeout)  # no fork: tool code needs no processes
    status, reason = run.verdict
    out = run.stdout.strip()
    if status != "passed":
        out = (out + "\n" if out else "") + f"{status}: {reason}"
    return ToolResult(ok=status == "passed", output=out[-2000:] or "(no output)", seconds=time.perf_counter() - started)


class CodeExecutor(Tool):
    def __init__(self):
        super().__init__("code_executor", "runs Python 3 code in a sandbox and returns what it prints.",
                         {"code": str})

    def run(self, args, sandbox, timeout):
        return _python_output(sandbox, args["code"], timeout)


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


class SymbolicMath(Tool):
    def __init__(self):
        super().__init__("symbolic_math", "sympy in a sandbox: operation is simplify, diff, integrate, solve "
                         "(expression = 0) or evaluate; expression in sympy syntax (x**2, sin(x)).",
                         {"operation": str, "expression": str}, {"variable": str})

    def run(self, args, sandbox, timeout):
        # The arguments go in as a string literal (data); sympify then parses the model's expression, in the
        # sandbox, as a tool the model asked for.
        return _python_output(sandbox, SYMPY_PROGRAM.format(args=json.dumps(args)), timeout)


def tool_use_tools() -> dict[str, Tool]:
    return {t.name: t for t in (CodeExecutor(), SymbolicMath())}
