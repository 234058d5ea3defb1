"""Tool use: when should a code model call a tool? Answer correctness and tool-selection accuracy.

Data: pytest_agentbench/benchmarks/data/tool_use.jsonl (made by its make_tool_use.py). The agent is the
THOUGHT / TOOL_CALL / FINAL loop with two tools, `code_executor` and `symbolic_math`, both run in the
sandbox; answering directly is the third choice ("no_call"). An item passes when the final answer is
right (multi-step tasks also need the tool at least `min_tool_calls` times). The system prompt is one of the
prompt formats (prompts.py): `--prompt-format direct,cot,tools` runs each task once per format.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

from pydantic import AfterValidator

from ..agents.toolloop import ToolLoopAgent
from ..agents.tools import describe, guide, tool_use_tools
from ..metrics import confusion, per_class
from ..outcome import Outcome, Status
from ..prompts import get_format, parse_formats, templates_sha256
from ..provenance import sha256_file
from ..registry import Opt
from ..task import Task
from .base import Suite, jsonl_rows

REQUIRED = (
    "id",
    "prompt",
    "category",
    "difficulty",
    "optimal_tool",
    "alternative_tools",
    "reasoning",
    "ground_truth_output",
    "answer_type",
)
CATEGORIES = ("pure_reasoning", "execution", "symbolic", "ambiguous", "multi_step")
DIFFICULTIES = ("easy", "intermediate", "complex")
CHOICES = ("code_executor", "symbolic_math", "no_call")
SYMPY_EQUAL = """\
import sympy as sp
got, want = {got!r}, {want!r}
try:
    same = sp.simplify(sp.sympify(got) - sp.sympify(want)) == 0
except Exception:
    same = False
print("EQUIVALENT" if same is True else "DIFFERENT")
"""
#: What a sympy answer may contain: numbers, operators, parentheses and these names. sympify is eval underneath,
#: so anything else (attributes, dunders, calls of other names, strings) is refused before it reaches sympy.
SYMPY_NAMES = frozenset(
    [
        "x",
        "y",
        "z",
        "t",
        "n",
        "k",
        "a",
        "b",
        "c",
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
        "exp",
        "log",
        "ln",
        "sqrt",
        "pi",
        "E",
        "I",
        "oo",
        "Abs",
        "sign",
        "factorial",
        "floor",
        "ceiling",
        "Rational",
    ]
)
_SYMPY_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_]\w*)|(\*\*|[-+*/^(),]))")


def label(tool: str) -> str:
    return "no_call" if tool in ("none", "", None) else tool


def _known_formats(value: Optional[str]) -> Optional[str]:
    parse_formats(value)  # ValueError: one line naming the unknown format
    return value


class ToolUse(Suite):
    name = "tool_use"
    sandbox_site_packages = True  # sympy, read-only
    options = (
        Opt(
            "--prompt-format",
            "agentbench_prompt_format",
            "tool use: run each task once per prompt format (ids grow "
            "-FORMAT, markers prompt_FORMAT); formats: default, direct, cot, tools, or one a conftest registers "
            "(pytest_agentbench.prompts) (default: the default format, ids unchanged)",
            metavar="NAME[,NAME...]",
            # Formats registered by plugins and initial conftests (rootdir, the paths given) are known by now.
            field=Annotated[Optional[str], AfterValidator(lambda value: _known_formats(value))],
        ),
    )

    def __init__(self, path: str | Path, max_steps: int = 5, formats: tuple[str, ...] | None = None):
        self.path = Path(path)
        self.max_steps = max_steps
        self.tools = tool_use_tools()
        self.formats = formats  # None: the default format, ids unchanged; else one item per task and format

    def configure(self, option) -> None:
        asked = option("agentbench_prompt_format")
        if asked is not None:  # the command line wins over formats given to the constructor
            self.formats = parse_formats(asked)
        elif self.formats is not None:
            try:
                self.formats = parse_formats(",".join(self.formats))
            except ValueError as exc:
                raise ValueError(f"formats={self.formats!r}: {exc}") from None

    def settings(self) -> dict:
        # Every registered template's hash, whichever formats this run selected: an item's configuration (resume,
        # pairing with a baseline) changes when a template changes, not when other formats run beside it.
        return {"max_steps": self.max_steps, "prompt_templates": templates_sha256(self.formats)}

    def load(self) -> list[Task]:
        tasks = []
        for n, row, problem in jsonl_rows(self.path):
            if row is None:
                tasks.append(Task(id=f"{self.path.name}:{n}", prompt="", problem=problem))
                continue
            missing = [k for k in REQUIRED if k not in row]
            rid = row.get("id")
            if not isinstance(rid, str):
                rid = f"{self.path.name}:{n}"
            if missing or row.get("category") not in CATEGORIES or row.get("difficulty") not in DIFFICULTIES:
                why = f"missing {', '.join(missing)}" if missing else "an unknown category or difficulty"
                tasks.append(Task(id=rid, prompt="", problem=f"dataset row {rid} has {why}"))
                continue
            tasks.append(
                Task(
                    id=rid,
                    prompt=row["prompt"],
                    reference=tuple(row.get("reference") or ()) or None,
                    markers=(row["category"], row["difficulty"]),
                    data={k: row[k] for k in REQUIRED if k not in ("id", "prompt")}
                    | {"min_tool_calls": row.get("min_tool_calls", 0)},
                )
            )
        if self.formats is None:
            return [
                replace(t, data={**t.data, "prompt_format": "default"}, markers=(*t.markers, "prompt_default"))
                for t in tasks
            ]
        return [
            replace(
                t,
                id=f"{t.id}-{name}",
                data={**t.data, "prompt_format": name, "base_task": t.id},
                markers=(*t.markers, f"prompt_{name}"),
            )
            for t in tasks
            for name in self.formats
        ]

    def shown_tests(self, task: Task) -> str | None:
        d = task.data
        if "ground_truth_output" not in d:
            return None
        tools = sorted({label(d["optimal_tool"]), *map(label, d["alternative_tools"])})
        return (
            f"# expected answer ({d['answer_type']})\n{d['ground_truth_output']}\n"
            f"# acceptable first choice: {', '.join(tools)}\n# successful tool calls needed: {d['min_tool_calls']}\n"
        )

    @functools.cache  # per instance: several suites of a class may be live
    def dataset_sha256(self) -> str:
        return sha256_file(self.path)

    def agent(self, ctx):
        ctx.tools = self.tools
        ctx.limits = replace(ctx.limits, max_steps=self.max_steps, tool_timeout=ctx.params.task_timeout)
        fmt = get_format(ctx.task.data["prompt_format"])
        system = fmt.render(tools=describe(self.tools), tool_guide=guide(self.tools))
        messages = [{"role": "system", "content": system}, {"role": "user", "content": ctx.task.prompt}]
        return ToolLoopAgent(on_protocol_error="stop", bad_args="tool_error", native=fmt.native), messages, fmt.name

    def grade(self, ctx, trace) -> Outcome:
        data = ctx.task.data
        calls = trace.tool_calls
        answer = trace.final_answer  # a value is asked for: the answer is FINAL's first line (the trace keeps it all)
        if answer is not None:
            answer = answer.split("\n", 1)[0].strip().strip("`").strip()
        acceptable = {label(data["optimal_tool"]), *map(label, data["alternative_tools"])}
        failed = [s.error or "error" for s in trace.steps if s.type == "tool_result" and not s.ok]
        extra = {
            "category": data["category"],
            "difficulty": data["difficulty"],
            "prompt_format": data["prompt_format"],
            "base_task": data.get("base_task", ctx.task.id),
            "optimal_tool": label(data["optimal_tool"]),
            "acceptable_tools": sorted(acceptable),
            "first_choice": trace.first_choice,
            "selection_ok": trace.first_choice in acceptable,
            "tool_calls": len(calls),
            "tools_used": [c.tool for c in calls],
            "failed_tool_calls": failed,
            "tool_calls_ok": sum(1 for s in trace.steps if s.type == "tool_result" and s.ok),
            "tool_s": round(trace.latency_s["tools"], 6),
            "protocol_errors": trace.protocol_errors,
            "answer": answer,
            "steps": [s.model_dump(exclude_none=True, exclude={"embedding"}) for s in trace.steps],
        }
        outcome = Outcome.from_trace(trace, Status.UNPARSABLE, extra=extra)
        if answer is None:
            outcome.reason = trace.outcome.error or "no answer"
            extra["correct"] = False
            return outcome
        correct = self._correct(answer, data, ctx.sandbox, ctx.params.task_timeout)
        extra["correct"] = correct
        if not correct:
            outcome.status = Status.FAILED
            outcome.reason = f"answer {answer[:80]!r}, expected {data['ground_truth_output'][:80]!r}"
        elif extra["tool_calls_ok"] < data["min_tool_calls"]:  # a call that failed computed nothing to build on
            outcome.status = Status.FAILED
            outcome.reason = (
                f"right answer, but {extra['tool_calls_ok']} tool call(s) succeeded; the task needs "
                f"{data['min_tool_calls']}"
            )
        else:
            outcome.status = Status.PASSED
        return outcome

    def _correct(self, answer: str, data, sandbox, timeout: float) -> bool:
        want, kind = data["ground_truth_output"], data["answer_type"]
        if kind == "sympy":
            # Only a plain math expression reaches sympy, and only inside the sandbox. The program is ours, the
            # answer a string literal in it, and `-I` keeps the workspace (where the model's code_executor calls
            # may have written a sympy.py) off sys.path: what it prints decides.
            if not math_expression(answer):
                return False
            run = sandbox.run_python(SYMPY_EQUAL.format(got=answer, want=want), timeout=max(timeout, 20.0))
            return run.verdict[0] == "passed" and run.stdout.strip().endswith("EQUIVALENT")
        return grade(answer, want, kind)

    @classmethod
    def summarize(cls, records: list[dict]) -> dict:
        return tool_metrics(records)

    @classmethod
    def terminal_lines(cls, metrics: dict) -> list[str]:
        overall = metrics.get("overall")
        if not overall or "tool_selection_accuracy" not in overall:
            return []
        return [
            f"correctness {overall['correctness']:.3f}, tool selection {overall['tool_selection_accuracy']:.3f}, "
            f"tool calls/task {overall['tool_calls_per_task']:.2f}, unnecessary calls {overall['unnecessary_tool_calls']}"
        ]


def math_expression(text: str, limit: int = 500) -> bool:
    """True when `text` is only numbers, + - * / ^ ** ( ) , and the names in SYMPY_NAMES."""
    if not text or len(text) > limit:
        return False
    pos = 0
    while pos < len(text):
        match = _SYMPY_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            return text[pos:].strip() == ""
        if match.group(2) is not None and match.group(2) not in SYMPY_NAMES:
            return False
        pos = match.end()
    return True


def grade(answer: str, want: str, kind: str) -> bool:
    """Host-side grading of plain answers: exact value, normalized string, or a multiple-choice letter."""
    if kind == "choice":
        found = re.match(r"\W*([A-D])\b", answer.strip(), re.I)
        return found is not None and found.group(1).upper() == want.upper()
    norm = normalize(answer)
    if kind == "exact":
        try:
            return float(norm.replace(",", "").replace(" ", "")) == float(want)
        except ValueError:
            return norm == normalize(want)
    return norm == normalize(want)


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip("`").strip().rstrip(".").strip()).lower()


def ratio(numerator: int, denominator: int) -> dict:
    """A rate with what it counts: undefined (null) when nothing was there to count."""
    return {
        "rate": round(numerator / denominator, 6) if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def base_task(record: dict) -> str:
    """The dataset task a sample belongs to, whatever its prompt format: the unit standard errors cluster by."""
    return record["extra"].get("base_task") or record["task"]


def block(group: list[dict]) -> dict:
    """The tool-use scores of a group of samples (a model, a category, a prompt format, ...)."""
    from ..stats import rate_estimate

    n = len(group)
    ex = [r["extra"] for r in group]
    no_tool = [e for e in ex if e["acceptable_tools"] == ["no_call"]]
    # a run with a failed tool call (it raised, timed out, or was called with bad arguments) that still ended with
    # the right answer recovered from it
    failing = [e for e in ex if e.get("failed_tool_calls")]
    multi = [r for r in group if r["extra"]["category"] == "multi_step"]
    return {
        "tasks": n,
        "correctness": round(sum(r["status"] == "passed" for r in group) / n, 6) if n else 0.0,
        "correctness_error": rate_estimate(group, lambda r: r["status"] == "passed", cluster=base_task),
        "tool_selection_accuracy": round(sum(e["selection_ok"] for e in ex) / n, 6) if n else 0.0,
        "tool_selection_accuracy_error": rate_estimate(group, lambda r: r["extra"]["selection_ok"], cluster=base_task),
        "unnecessary_tool_calls": sum(e["tool_calls"] for e in no_tool),
        "tool_calls_on_no_tool_tasks": {
            "mean": round(sum(e["tool_calls"] for e in no_tool) / len(no_tool), 4) if no_tool else None,
            "calls": sum(e["tool_calls"] for e in no_tool),
            "tasks": len(no_tool),
        },
        "tool_calls_per_task": round(sum(e["tool_calls"] for e in ex) / n, 4) if n else 0.0,
        "failed_tool_calls": dict(sorted(Counter(k for e in ex for k in e.get("failed_tool_calls", ())).items())),
        "error_recovery": ratio(sum(bool(e.get("correct")) for e in failing), len(failing)),
        "multi_step_success": ratio(sum(r["status"] == "passed" for r in multi), len(multi)),
        # samples that ended on a reply no protocol reads (a text reply without TOOL_CALL/FINAL, a malformed native call)
        "protocol_errors": ratio(sum(r["status"] == "unparsable" for r in group), n),
        "latency_s": {
            "model": round(sum(r["model_s"] for r in group) / n, 6) if n else 0.0,
            "tool": round(sum(e["tool_s"] for e in ex) / n, 6) if n else 0.0,
        },
        "tokens_per_task": {
            k: round(sum(r[f"{k}_tokens"] for r in group) / n, 2) if n else 0.0 for k in ("prompt", "completion")
        },
    }


def selection_pairs(group: list[dict]) -> list[tuple[str, str]]:
    """(right class, first choice) per sample; for ambiguous tasks an acceptable alternative is the right class."""
    return [
        (e["first_choice"] if e["selection_ok"] else e["optimal_tool"], e["first_choice"])
        for e in (r["extra"] for r in group)
    ]


def tool_metrics(records: list[dict]) -> dict:
    """Correctness, tool-selection accuracy, recovery and multi-step success, per-tool precision/recall/F1 and the
    confusion matrix: overall, and by category, difficulty and prompt format."""
    rows = [r for r in records if r.get("extra", {}).get("category")]
    by: dict[str, dict[str, list]] = {
        "category": defaultdict(list),
        "difficulty": defaultdict(list),
        "prompt_format": defaultdict(list),
    }
    for r in rows:
        for key in by:
            by[key][r["extra"].get(key, "default")].append(r)
    pairs = selection_pairs(rows)
    return {
        "overall": block(rows),
        "by_category": {c: block(by["category"][c]) for c in CATEGORIES if by["category"][c]},
        "by_difficulty": {d: block(by["difficulty"][d]) for d in DIFFICULTIES if by["difficulty"][d]},
        "by_prompt_format": {
            f: {**block(g), "per_tool": per_class(selection_pairs(g), CHOICES)}
            for f, g in sorted(by["prompt_format"].items())
        },
        "per_tool": per_class(pairs, CHOICES),
        "confusion_matrix": confusion(pairs, CHOICES, (*CHOICES, "unparsable")),
    }
