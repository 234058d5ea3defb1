"""BFCL: the Berkeley Function Calling Leaderboard (v4), offline, scored by bfcl-eval's own checkers.

Data: the question and possible-answer files PyPI's `bfcl-eval` ships in `bfcl_eval/data/` (Apache-2.0), or a newer
copy of that folder given with `--bfcl-path DIR`. One item per question, ids as BFCL's (`simple_python_12`,
`live_multiple_3-1-0`, `multi_turn_base_7`), a marker per category and per group (`-m "bfcl and irrelevance"`,
`-m "bfcl and live"`). Categories: the single-turn ones (simple Python / Java / JavaScript, multiple, parallel,
parallel_multiple, irrelevance and their live counterparts, live_relevance) and the four multi-turn ones. The agentic
categories (memory, web_search) need live services (a search API, memory backends with embedding models) and are
left out; the leaderboard's overall score counts them as 0 for a model that did not run them, and so does ours.

How a model is asked and read is bfcl-eval's prompting mode (handler.PromptingHandler); `--prompt-format native`
adds (or, alone, runs only) `-native` items in its function-calling mode through the model API's own interface
(handler.NativeHandler, docs/function-calling.md). Scoring is bfcl-eval's:
single-turn items go through its per-entry evaluation (`_evaluate_single_ast_entry`, `_evaluate_single_relevance_
entry`: decoder, format check, AST checker); multi-turn items run BFCL's API simulators and its state/response
checker (`multi_turn_checker`) in the sandbox (simulators.py drives sandbox_program.py there), because BFCL
executes a step by eval() of strings built from the model's reply. References and the possible answers no reply can
match: answers.py. `summarize` (scores.py) reports accuracy per category and the leaderboard's aggregation
(bfcl-eval's own weighting functions), with error bars, and whether a function was called when it should have been.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path
from typing import Optional

from ...agents.function_calling import CallAgent, as_text
from ...errors import first_line
from ...outcome import Outcome, Status
from ...registry import Opt
from ...task import Task
from ..base import Suite, jsonl_rows
from .handler import NativeHandler, PromptingHandler, bfcl
from .simulators import Simulators

PREFIX = "BFCL_v4"
NON_LIVE = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
)
LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
CATEGORIES = NON_LIVE + LIVE + MULTI_TURN
#: categories without a possible-answer file: the right answer is to call no function (irrelevance) or any (relevance)
NO_ANSWER = ("irrelevance", "live_irrelevance", "live_relevance")
LEFT_OUT = ("memory", "web_search", "format_sensitivity")
NOT_A_CALL = "I have completed the request."  # the reference's turn-ending reply: no calls in it


def groups(category: str) -> tuple[str, ...]:
    """Marker groups of a category besides its own name."""
    out = ["multi_turn"] if category in MULTI_TURN else ["single_turn", "live" if category in LIVE else "non_live"]
    if category.startswith("simple_"):
        out.append("simple")
    return tuple(out)


ALL_MARKERS = (*CATEGORIES, "simple", "live", "non_live", "single_turn", "multi_turn")


def language(category: str) -> str:
    return "java" if category == "simple_java" else "javascript" if category == "simple_javascript" else "python"


class BFCL(Suite):
    name = "bfcl"
    sandbox_site_packages = True  # mpmath for BFCL's MathAPI simulator (read-only)
    options = (
        Opt(
            "--bfcl-path",
            "bfcl_path",
            "BFCL: a folder of BFCL v4 data (BFCL_v4_*.json, possible_answer/, "
            "multi_turn_func_doc/) instead of the one the installed bfcl-eval ships",
            metavar="DIR",
            field=Optional[str],
        ),
    )

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path else None
        self.handler = PromptingHandler()
        self.native_handler = NativeHandler()
        self.protocols = (True, False)  # (prompting, native) items: --prompt-format (prompts.native_requested)
        self._unavailable: str | None = None
        self._sizes: dict[str, int] | None = None
        self._files: list[Path] = []

    @classmethod
    def from_options(cls, option) -> BFCL:
        from ...prompts import native_requested

        suite = cls(option("bfcl_path"))
        suite.protocols = native_requested(option("agentbench_prompt_format"))
        return suite

    def handler_of(self, task: Task) -> PromptingHandler:
        return self.native_handler if task.data.get("native") else self.handler

    def skip_reason(self) -> str | None:
        return self._unavailable

    def settings(self) -> dict:
        if self._sizes is None:
            self.load()
        return {
            "handler": self.handler.name,
            "bfcl_eval": _bfcl_version(),
            "step_limit": _step_limit(),
            "category_sizes": self._sizes,
        }

    # -- data -------------------------------------------------------------------------------------------------
    def data_dir(self) -> Path:
        if self.path is not None:
            return self.path
        spec = find_spec("bfcl_eval")
        assert spec is not None and spec.submodule_search_locations is not None  # installed: load() checks first
        return Path(spec.submodule_search_locations[0]) / "data"

    def load(self) -> list[Task]:
        """Every category's questions. Data that cannot be read at all (a missing folder, files of another BFCL
        version) is one item that errors with the reason; a broken row errors its own item; a file whose rows are all
        broken, one item for the file."""
        if find_spec("bfcl_eval") is None:  # its checker scores every item, whoever's data it is
            from .handler import INSTALL_HINT

            self._unavailable = f"bfcl-eval is not installed: {INSTALL_HINT}"
            self._sizes = {}
            return [Task(id="bfcl-data", prompt="", markers=ALL_MARKERS)]
        self._files, self._sizes = [], {}
        try:
            tasks = self._load(self.data_dir())
        except (OSError, ValueError) as exc:
            self._files, self._sizes = [], {}
            return [Task(id="bfcl-data", prompt="", markers=ALL_MARKERS, problem=first_line(str(exc)))]
        prompting, native = self.protocols
        return [t for t in tasks if prompting] + [
            replace(
                t,
                id=f"{t.id}-native",
                data={**t.data, "native": True},
                markers=(*t.markers, "prompt_native"),
                reference=_native_reference(t),
            )
            for t in tasks
            if native and not t.problem
        ]

    def _load(self, root: Path) -> list[Task]:
        assert self._sizes is not None  # load() empties it first
        if not root.is_dir():
            raise FileNotFoundError(
                f"--bfcl-path {root}: no such folder (give the folder holding "
                f"{PREFIX}_simple_python.json, possible_answer/ and multi_turn_func_doc/)"
            )
        docs = _func_docs(root)
        tasks = []
        for category in CATEGORIES:
            file = _question_file(root, category)
            answers = None if category in NO_ANSWER else _answers(root / "possible_answer" / file.name)
            self._files += [file] + ([root / "possible_answer" / file.name] if answers is not None else [])
            found = [_task(category, n, row, problem, answers, docs, file) for n, row, problem in jsonl_rows(file)]
            if len(found) > 1 and all(t.problem for t in found):
                found = [
                    Task(
                        id=f"bfcl-{category}",
                        prompt="",
                        markers=(category, *groups(category)),
                        problem=f"every row of {file.name} is broken, e.g. {found[0].problem}",
                    )
                ]
            self._sizes[category] = len(found)
            tasks += found
        self._files += sorted((root / "multi_turn_func_doc").glob("*.json"))
        ids = [t.id for t in tasks]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})[:3]
            raise ValueError(f"{root}: question ids appear twice: {', '.join(twice)}")
        return tasks

    @functools.cache  # per instance
    def dataset_sha256(self) -> str | None:
        if not self._files:
            self.load()
        digest = hashlib.sha256()
        for file in self._files:
            digest.update(file.name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest() if self._files else None

    # -- the agent --------------------------------------------------------------------------------------------
    def agent(self, ctx):
        data, entry = ctx.task.data, ctx.task.data["entry"]
        handler = self.handler_of(ctx.task)
        b = bfcl()
        docs = b.utils._func_doc_language_specific_pre_processing(copy.deepcopy(entry["function"]), data["category"])
        messages = handler.opening(entry["question"][0], docs, entry["id"])
        if data["category"] not in MULTI_TURN:
            return CallAgent(handler, tools=handler.tools(docs)), messages, handler.name
        sims = Simulators(ctx.sandbox, entry, data["category"], max(ctx.params.task_timeout, 30.0))
        ctx.state["simulators"] = sims
        agent = CallAgent(
            handler,
            turns=entry["question"][1:],
            holdout=entry.get("missed_function") or {},
            execute=sims.execute,
            step_limit=_step_limit(),
            tools=handler.tools(docs),
        )
        return agent, messages, handler.name

    def grade(self, ctx, trace) -> Outcome:
        data = ctx.task.data
        category = data["category"]
        responses = trace.details.get("responses", [])
        handler = self.handler_of(ctx.task)
        extra = {
            "category": category,
            "handler": handler.name,
            "protocol_errors": trace.protocol_errors,
            "should_call": category not in ("irrelevance", "live_irrelevance"),
        }
        if data.get("answer_defect"):
            extra["answer_defect"] = data["answer_defect"]
        outcome = Outcome.from_trace(
            trace,
            Status.FAILED,
            completion=(trace.final_answer or (as_text(responses[-1][-1]) if responses and responses[-1] else "")),
            extra=extra,
        )
        if category in MULTI_TURN:
            verdict = self._check_multi_turn(ctx, trace, responses, extra, handler)
        else:
            verdict = self._check_single_turn(data, responses[0][0] if responses else "", extra, handler)
        outcome.status, outcome.reason = verdict
        if outcome.status is not Status.PASSED and data.get("answer_defect"):
            outcome.reason += f" [no reply can match this possible answer: {data['answer_defect']}]"
        return outcome

    def _check_single_turn(self, data, reply, extra: dict, handler=None) -> tuple[Status, str]:
        handler = handler or self.handler
        b = bfcl()
        category, entry = data["category"], data["entry"]
        lang = language(category)
        fmt = {"java": b.ReturnFormat.JAVA, "javascript": b.ReturnFormat.JAVASCRIPT}.get(lang, b.ReturnFormat.PYTHON)
        try:
            decoded = handler.decode_ast(reply, fmt)
            called = not b.utils.is_empty_output(decoded)
        except Exception:
            decoded, called = None, False
        extra.update(called=called, calls=len(decoded) if called else 0, decoded=_short(decoded))
        prompt = {"function": entry["function"]}
        if category in NO_ANSWER:
            found = b.runner._evaluate_single_relevance_entry(
                handler, entry["id"], reply, prompt, handler.checker_model, category
            )
        else:
            found = b.runner._evaluate_single_ast_entry(
                handler,
                entry["id"],
                reply,
                data["answer"],
                prompt,
                handler.checker_model,
                category,
                language={"java": b.Language.JAVA, "javascript": b.Language.JAVASCRIPT}.get(lang, b.Language.PYTHON),
                return_format=fmt,
                has_tool_call_tag=False,
            )
        if found["valid"]:
            return Status.PASSED, ""
        kind = found.get("error_type", "")
        extra["error_type"] = kind
        status = (
            Status.UNPARSABLE
            if kind.endswith("decoder_failed") or kind.endswith("wrong_output_format")
            else Status.FAILED
        )
        return status, f"{kind}: {_first_error(found.get('error'))}"

    def _check_multi_turn(self, ctx, trace, responses: list[list], extra: dict, handler=None) -> tuple[Status, str]:
        """bfcl-eval's `_evaluate_single_multi_turn_entry`: a conversation cut short fails; the steps that decode
        to calls go to `multi_turn_checker`, which here runs in the sandbox."""
        data = ctx.task.data
        truth = data["answer"]
        decoded = [[calls for calls in (self._decode_step(r, handler) for r in turn) if calls] for turn in responses]
        extra.update(
            turns=len(responses),
            steps=sum(len(t) for t in responses),
            calls=sum(len(c) for t in decoded for c in t),
            called=any(decoded),
            step_limit_hit=trace.step_limit_hit,
        )
        if len(responses) != len(truth):
            extra["error_type"] = "multi_turn:force_terminated"
            return Status.FAILED, (
                f"multi_turn:force_terminated: {trace.outcome.error or 'stopped'} after "
                f"{len(responses)} of {len(truth)} turns"
            )
        sims: Simulators = ctx.state["simulators"]
        found = sims.check(decoded, truth)
        if found is None:
            return sims.failure()
        if found["valid"]:
            return Status.PASSED, ""
        extra["error_type"] = found["error_type"]
        return Status.FAILED, f"{found['error_type']}: {first_line(found['error_message'])[:300]}"

    def _decode_step(self, reply, handler=None) -> list[str]:
        try:
            calls = (handler or self.handler).decode_execute(reply)
        except Exception:
            return []
        return [] if not calls or calls == [""] else calls

    @classmethod
    def summarize(cls, records: list[dict]) -> dict:
        from .scores import bfcl_metrics

        return bfcl_metrics(records)

    @classmethod
    def terminal_lines(cls, metrics: dict) -> list[str]:
        agg, sel = metrics["aggregate"], metrics["tool_selection"]

        def show(name: str) -> str:
            node = agg[name]
            if not node["run"]:
                return "not run"
            return f"{node['accuracy']:.3f}" + ("" if not node["missing"] else " (partial)")

        called = sel["called_a_function"]
        lines = [
            f"overall {show('overall')} [leaderboard weights; memory and web_search not run count 0], without "
            f"them {show('overall_without_agentic')}",
            f"non-live {show('non_live')}, live {show('live')}, irrelevance {show('irrelevance_detection')}, "
            f"relevance {show('relevance_detection')}, multi-turn {show('multi_turn')}",
            "called a function: precision "
            + " recall ".join("-" if called[k] is None else f"{called[k]:.3f}" for k in ("precision", "recall"))
            + "; irrelevance accuracy "
            + ("-" if sel["irrelevance_accuracy"] is None else f"{sel['irrelevance_accuracy']:.3f}"),
            "per category (accuracy/items): "
            + ", ".join(
                f"{c} {v['accuracy']:.3f}/{v['tasks']}"
                + (f" ({v['answer_defects']} defective answers)" if v["answer_defects"] else "")
                for c, v in metrics["categories"].items()
            ),
        ]
        return lines


def _native_reference(task: Task):
    """The reference reply of a native item: each text reply that decodes to calls as those native calls (with the
    '_' names the tools carry), for the reference backend (backends/reference.py)."""
    from ...backends.reference import NATIVE_CALLS

    b = bfcl()
    lang = language(task.data["category"])
    fmt = {"java": b.ReturnFormat.JAVA, "javascript": b.ReturnFormat.JAVASCRIPT}.get(lang, b.ReturnFormat.PYTHON)

    def one(text: str) -> str:
        try:
            decoded = PromptingHandler().decode_ast(text, fmt)
        except Exception:
            return text
        if b.utils.is_empty_output(decoded):
            return text
        calls = [{"name": name.replace(".", "_"), "arguments": args} for call in decoded for name, args in call.items()]
        return NATIVE_CALLS + json.dumps(calls)

    ref = task.reference
    if ref is None:
        return None
    return one(ref) if isinstance(ref, str) else tuple(one(r) for r in ref)


# -- data helpers -------------------------------------------------------------------------------------------------
def _question_file(root: Path, category: str) -> Path:
    file = root / f"{PREFIX}_{category}.json"
    if file.is_file():
        return file
    others = sorted(p.name for p in root.glob("BFCL_v*_*.json") if not p.name.startswith(PREFIX + "_"))
    if others:
        raise ValueError(
            f"{root} holds {others[0]}, another BFCL version, and no {file.name}: this suite reads "
            f"{PREFIX} files (bfcl-eval {_bfcl_version()})"
        )
    raise FileNotFoundError(f"no {file.name} in {root}")


def _answers(file: Path) -> dict[str, object]:
    if not file.is_file():
        raise FileNotFoundError(f"no possible-answer file {file}")
    out = {}
    for n, row, problem in jsonl_rows(file):
        if row is None or not isinstance(row.get("id"), str) or "ground_truth" not in row:
            raise ValueError(
                f"{file.name}: line {n} " + (problem.split(" ", 2)[-1] if problem else "lacks id or ground_truth")
            )
        out[row["id"]] = row["ground_truth"]
    return out


def _func_docs(root: Path) -> dict[str, list[dict]]:
    """Function docs of BFCL's multi-turn API classes, by class (constants.executable_backend_config's files)."""
    folder = root / "multi_turn_func_doc"
    mapping = _doc_files()
    docs = {}
    for cls, name in mapping.items():
        file = folder / name
        if file.is_file():
            docs[cls] = [row for _, row, _ in jsonl_rows(file) if row is not None]
    return docs


def _doc_files() -> dict[str, str]:
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING  # constants only

    return MULTI_TURN_FUNC_DOC_FILE_MAPPING


SINGLE_FIELDS = ("id", "question", "function")
MULTI_FIELDS = ("id", "question", "initial_config", "involved_classes")


def _task(category, n, row, problem, answers, docs, file: Path) -> Task:
    if row is None:
        return Task(id=f"{file.name}:{n}", prompt="", problem=f"{file.name}: {problem}")
    rid = row.get("id") if isinstance(row.get("id"), str) else f"{file.name}:{n}"
    fields = MULTI_FIELDS if category in MULTI_TURN else SINGLE_FIELDS
    missing = [k for k in fields if k not in row]
    bad = (
        missing
        or not isinstance(row.get("question"), list)
        or not row["question"]
        or not all(isinstance(turn, list) for turn in row["question"])
    )
    if bad:
        what = f"lacks {', '.join(missing)}" if missing else "has no list of turns in 'question'"
        return Task(
            id=rid,
            prompt="",
            markers=(category, *groups(category)),
            problem=f"{file.name}: {rid} {what} (a file of another BFCL version? this suite reads {PREFIX})",
        )
    answer = None
    if answers is not None:
        if rid not in answers:
            return Task(
                id=rid,
                prompt="",
                markers=(category, *groups(category)),
                problem=f"{rid} has no possible answer in possible_answer/{file.name}",
            )
        answer = answers[rid]
    entry = {
        k: row[k]
        for k in ("id", "question", "function", "initial_config", "involved_classes", "missed_function")
        if k in row
    }
    if category in MULTI_TURN:
        unknown = [c for c in row["involved_classes"] if c not in docs]
        if unknown:
            return Task(
                id=rid,
                prompt="",
                markers=(category, *groups(category)),
                problem=f"{rid}: no function docs for {', '.join(unknown)} in multi_turn_func_doc/",
            )
        _populate(entry, docs)
        if not isinstance(answer, list) or len(answer) != len(row["question"]):
            return Task(
                id=rid,
                prompt="",
                markers=(category, *groups(category)),
                problem=f"{rid}: its possible answer does not have one list of calls per turn",
            )
    from .answers import answer_defect
    from .answers import reference as reference_reply

    try:
        prompt = next((m.get("content", "") for m in row["question"][0] if m.get("role") == "user"), "")
        reference = reference_reply(category, entry, answer)
        data = {
            "category": category,
            "entry": entry,
            "answer": answer,
            "answer_defect": answer_defect(category, entry, answer),
        }
    except (KeyError, TypeError, AttributeError, ValueError, SyntaxError, IndexError) as exc:
        return Task(
            id=rid,
            prompt="",
            markers=(category, *groups(category)),
            problem=f"{file.name}: {rid} is malformed ({type(exc).__name__}: {first_line(str(exc))[:120]})",
        )
    return Task(id=rid, prompt=prompt, data=data, reference=reference, markers=(category, *groups(category)))


def _populate(entry: dict, docs: dict[str, list[dict]]) -> None:
    """bfcl_eval.utils.populate_test_cases_with_predefined_functions: the involved classes' docs, minus those of a
    miss-function turn, which move to `missed_function` (the docs are shared between entries: never mutated here)."""
    entry["function"] = [doc for cls in entry["involved_classes"] for doc in docs[cls]]
    missed: dict[str, list[dict]] = {}
    for turn, names in (entry.get("missed_function") or {}).items():
        missed[turn] = []
        for name in names:
            for i, doc in enumerate(entry["function"]):
                if doc["name"] == name:
                    missed[turn].append(doc)
                    entry["function"] = entry["function"][:i] + entry["function"][i + 1 :]
                    break
    if "missed_function" in entry:
        entry["missed_function"] = missed


def _bfcl_version() -> str:
    from .handler import _version

    return _version()


@functools.cache
def _step_limit() -> int:
    try:
        return bfcl().categories.MAXIMUM_STEP_LIMIT
    except Exception:  # bfcl-eval missing: the suite's items are skipped anyway
        return 20


def _short(value, limit: int = 300):
    if value is None:
        return None
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_error(error) -> str:
    while isinstance(error, list) and error:
        error = error[0]
    if isinstance(error, dict):
        error = next(iter(error.values()), "")
    return first_line(str(error))[:300]
