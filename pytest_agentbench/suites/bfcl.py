"""BFCL: the Berkeley Function Calling Leaderboard (v4), offline, scored by bfcl-eval's own checkers.

Data: the question and possible-answer files PyPI's `bfcl-eval` ships in `bfcl_eval/data/` (Apache-2.0), or a newer
copy of that folder given with `--bfcl-path DIR`. One item per question, ids as BFCL's (`simple_python_12`,
`live_multiple_3-1-0`, `multi_turn_base_7`), a marker per category and per group (`-m "bfcl and irrelevance"`,
`-m "bfcl and live"`). Categories: the single-turn ones (simple Python / Java / JavaScript, multiple, parallel,
parallel_multiple, irrelevance and their live counterparts, live_relevance) and the four multi-turn ones. The agentic
categories (memory, web_search) need live services (a search API, memory backends with embedding models) and are
left out; the leaderboard's overall score counts them as 0 for a model that did not run them, and so does ours.

How a model is asked and read is bfcl-eval's prompting mode (calls.PromptingHandler). Scoring is bfcl-eval's:
single-turn items go through its per-entry evaluation (`_evaluate_single_ast_entry`, `_evaluate_single_relevance_
entry`: decoder, format check, AST checker); multi-turn items run BFCL's API simulators and its state/response
checker (`multi_turn_checker`) in the sandbox (suites/bfcl_sandbox.py), because BFCL executes a step by eval() of
strings built from the model's reply. `summarize` reports accuracy per category and the leaderboard's aggregation
(bfcl-eval's own weighting functions), with error bars, and whether a function was called when it should have been.
"""
from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
import re
import secrets
from collections import defaultdict
from importlib.util import find_spec
from pathlib import Path

from ..agents.calls import CallAgent
from ..calls import REFUSED_CALL, PromptingHandler, bfcl, refused_call
from ..errors import HarnessError, first_line
from ..metrics import per_class
from ..outcome import Outcome, Status
from ..tasks import Suite, Task, jsonl_rows, register_suite

PREFIX = "BFCL_v4"
NON_LIVE = ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
            "irrelevance")
LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
CATEGORIES = NON_LIVE + LIVE + MULTI_TURN
#: categories without a possible-answer file: the right answer is to call no function (irrelevance) or any (relevance)
NO_ANSWER = ("irrelevance", "live_irrelevance", "live_relevance")
LEFT_OUT = ("memory", "web_search", "format_sensitivity")
#: BFCL's multi-turn API classes: module file of each (bfcl_eval.constants.executable_backend_config)
SIMULATOR_ROOT = "bfcl_eval.eval_checker.multi_turn_eval"
NOT_A_CALL = "I have completed the request."    # the reference's turn-ending reply: no calls in it


def groups(category: str) -> tuple[str, ...]:
    """Marker groups of a category besides its own name."""
    out = ["multi_turn"] if category in MULTI_TURN else ["single_turn", "live" if category in LIVE else "non_live"]
    if category.startswith("simple_"):
        out.append("simple")
    return tuple(out)


ALL_MARKERS = (*CATEGORIES, "simple", "live", "non_live", "single_turn", "multi_turn")


def language(category: str) -> str:
    return "java" if category == "simple_java" else "javascript" if category == "simple_javascript" else "python"


@register_suite
class BFCL(Suite):
    name = "bfcl"
    sandbox_site_packages = True   # mpmath for BFCL's MathAPI simulator (read-only)

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path else None
        self.handler = PromptingHandler()
        self._unavailable: str | None = None
        self._sizes: dict[str, int] | None = None
        self._files: list[Path] = []

    @classmethod
    def from_options(cls, option) -> "BFCL":
        return cls(option("bfcl_path"))

    def skip_reason(self) -> str | None:
        return self._unavailable

    def settings(self) -> dict:
        if self._sizes is None:
            self.load()
        return {"handler": self.handler.name, "bfcl_eval": _bfcl_version(), "step_limit": _step_limit(),
                "category_sizes": self._sizes}

    # -- data -------------------------------------------------------------------------------------------------
    def data_dir(self) -> Path:
        if self.path is not None:
            return self.path
        spec = find_spec("bfcl_eval")
        return Path(spec.submodule_search_locations[0]) / "data"

    def load(self) -> list[Task]:
        """Every category's questions. Data that cannot be read at all (a missing folder, files of another BFCL
        version) is one item that errors with the reason; a broken row errors its own item; a file whose rows are all
        broken, one item for the file."""
        if find_spec("bfcl_eval") is None:   # its checker scores every item, whoever's data it is
            from ..calls import INSTALL_HINT

            self._unavailable = f"bfcl-eval is not installed: {INSTALL_HINT}"
            self._sizes = {}
            return [Task(id="bfcl-data", prompt="", markers=ALL_MARKERS)]
        self._files, self._sizes = [], {}
        try:
            return self._load(self.data_dir())
        except (OSError, ValueError) as exc:
            self._files, self._sizes = [], {}
            return [Task(id="bfcl-data", prompt="", markers=ALL_MARKERS, problem=first_line(str(exc)))]

    def _load(self, root: Path) -> list[Task]:
        if not root.is_dir():
            raise FileNotFoundError(f"--bfcl-path {root}: no such folder (give the folder holding "
                                    f"{PREFIX}_simple_python.json, possible_answer/ and multi_turn_func_doc/)")
        docs = _func_docs(root)
        tasks = []
        for category in CATEGORIES:
            file = _question_file(root, category)
            answers = None if category in NO_ANSWER else _answers(root / "possible_answer" / file.name)
            self._files += [file] + ([root / "possible_answer" / file.name] if answers is not None else [])
            found = [_task(category, n, row, problem, answers, docs, file) for n, row, problem in jsonl_rows(file)]
            if len(found) > 1 and all(t.problem for t in found):
                found = [Task(id=f"bfcl-{category}", prompt="", markers=(category, *groups(category)),
                              problem=f"every row of {file.name} is broken, e.g. {found[0].problem}")]
            self._sizes[category] = len(found)
            tasks += found
        self._files += sorted((root / "multi_turn_func_doc").glob("*.json"))
        ids = [t.id for t in tasks]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})[:3]
            raise ValueError(f"{root}: question ids appear twice: {', '.join(twice)}")
        return tasks

    @functools.lru_cache(maxsize=None)  # per instance
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
        b = bfcl()
        docs = b.utils._func_doc_language_specific_pre_processing(copy.deepcopy(entry["function"]), data["category"])
        messages = self.handler.opening(entry["question"][0], docs, entry["id"])
        if data["category"] not in MULTI_TURN:
            return CallAgent(self.handler), messages, self.handler.name
        sims = Simulators(ctx.sandbox, entry, data["category"], max(ctx.params.task_timeout, 30.0))
        ctx.state["simulators"] = sims
        agent = CallAgent(self.handler, turns=entry["question"][1:], holdout=entry.get("missed_function") or {},
                          execute=sims.execute, step_limit=_step_limit())
        return agent, messages, self.handler.name

    def grade(self, ctx, trace) -> Outcome:
        data = ctx.task.data
        category = data["category"]
        responses = trace.details.get("responses", [])
        extra = {"category": category, "handler": self.handler.name, "should_call": category not in
                 ("irrelevance", "live_irrelevance")}
        if data.get("answer_defect"):
            extra["answer_defect"] = data["answer_defect"]
        outcome = Outcome(Status.FAILED, completion=(trace.final_answer or (responses[-1][-1] if responses and
                          responses[-1] else "")), model_s=trace.latency_s["model"], sandbox_s=trace.latency_s["tools"],
                          prompt_tokens=trace.tokens["prompt"], completion_tokens=trace.tokens["completion"],
                          extra=extra)
        if category in MULTI_TURN:
            verdict = self._check_multi_turn(ctx, trace, responses, extra)
        else:
            verdict = self._check_single_turn(data, responses[0][0] if responses else "", extra)
        outcome.status, outcome.reason = verdict
        if outcome.status is not Status.PASSED and data.get("answer_defect"):
            outcome.reason += f" [no reply can match this possible answer: {data['answer_defect']}]"
        return outcome

    def _check_single_turn(self, data, reply: str, extra: dict) -> tuple[Status, str]:
        b = bfcl()
        category, entry = data["category"], data["entry"]
        lang = language(category)
        fmt = {"java": b.ReturnFormat.JAVA, "javascript": b.ReturnFormat.JAVASCRIPT}.get(lang, b.ReturnFormat.PYTHON)
        try:
            decoded = self.handler.decode_ast(reply, fmt)
            called = not b.utils.is_empty_output(decoded)
        except Exception:
            decoded, called = None, False
        extra.update(called=called, calls=len(decoded) if called else 0, decoded=_short(decoded))
        prompt = {"function": entry["function"]}
        if category in NO_ANSWER:
            found = b.runner._evaluate_single_relevance_entry(self.handler, entry["id"], reply, prompt,
                                                              self.handler.checker_model, category)
        else:
            found = b.runner._evaluate_single_ast_entry(
                self.handler, entry["id"], reply, data["answer"], prompt, self.handler.checker_model, category,
                language={"java": b.Language.JAVA, "javascript": b.Language.JAVASCRIPT}.get(lang, b.Language.PYTHON),
                return_format=fmt, has_tool_call_tag=False)
        if found["valid"]:
            return Status.PASSED, ""
        kind = found.get("error_type", "")
        extra["error_type"] = kind
        status = Status.UNPARSABLE if kind.endswith("decoder_failed") or kind.endswith("wrong_output_format") \
            else Status.FAILED
        return status, f"{kind}: {_first_error(found.get('error'))}"

    def _check_multi_turn(self, ctx, trace, responses: list[list[str]], extra: dict) -> tuple[Status, str]:
        """bfcl-eval's `_evaluate_single_multi_turn_entry`: a conversation cut short fails; the steps that decode
        to calls go to `multi_turn_checker`, which here runs in the sandbox."""
        data = ctx.task.data
        truth = data["answer"]
        decoded = [[calls for calls in map(self._decode_step, turn) if calls] for turn in responses]
        extra.update(turns=len(responses), steps=sum(len(t) for t in responses),
                     calls=sum(len(c) for t in decoded for c in t), called=any(decoded),
                     step_limit_hit=trace.step_limit_hit)
        if len(responses) != len(truth):
            extra["error_type"] = "multi_turn:force_terminated"
            return Status.FAILED, (f"multi_turn:force_terminated: {trace.outcome.error or 'stopped'} after "
                                   f"{len(responses)} of {len(truth)} turns")
        sims: Simulators = ctx.state["simulators"]
        found = sims.check(decoded, truth)
        if found is None:
            return sims.failure()
        if found["valid"]:
            return Status.PASSED, ""
        extra["error_type"] = found["error_type"]
        return Status.FAILED, f"{found['error_type']}: {first_line(found['error_message'])[:300]}"

    def _decode_step(self, reply: str) -> list[str]:
        try:
            calls = self.handler.decode_execute(reply)
        except Exception:
            return []
        return [] if not calls or calls == [""] else calls

    @classmethod
    def summarize(cls, records: list[dict]) -> dict:
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
        lines = [f"overall {show('overall')} [leaderboard weights; memory and web_search not run count 0], without "
                 f"them {show('overall_without_agentic')}",
                 f"non-live {show('non_live')}, live {show('live')}, irrelevance {show('irrelevance_detection')}, "
                 f"relevance {show('relevance_detection')}, multi-turn {show('multi_turn')}",
                 "called a function: precision " + " recall ".join("-" if called[k] is None else f"{called[k]:.3f}"
                                                                   for k in ("precision", "recall"))
                 + "; irrelevance accuracy " + ("-" if sel["irrelevance_accuracy"] is None else
                                                 f"{sel['irrelevance_accuracy']:.3f}"),
                 "per category (accuracy/items): " + ", ".join(
                     f"{c} {v['accuracy']:.3f}/{v['tasks']}" + (f" ({v['answer_defects']} defective answers)"
                                                                if v["answer_defects"] else "")
                     for c, v in metrics["categories"].items())]
        return lines


# -- data helpers -------------------------------------------------------------------------------------------------
def _question_file(root: Path, category: str) -> Path:
    file = root / f"{PREFIX}_{category}.json"
    if file.is_file():
        return file
    others = sorted(p.name for p in root.glob("BFCL_v*_*.json") if not p.name.startswith(PREFIX + "_"))
    if others:
        raise ValueError(f"{root} holds {others[0]}, another BFCL version, and no {file.name}: this suite reads "
                         f"{PREFIX} files (bfcl-eval {_bfcl_version()})")
    raise FileNotFoundError(f"no {file.name} in {root}")


def _answers(file: Path) -> dict[str, object]:
    if not file.is_file():
        raise FileNotFoundError(f"no possible-answer file {file}")
    out = {}
    for n, row, problem in jsonl_rows(file):
        if row is None or not isinstance(row.get("id"), str) or "ground_truth" not in row:
            raise ValueError(f"{file.name}: line {n} " + (problem.split(" ", 2)[-1] if problem else
                                                          "lacks id or ground_truth"))
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
    bad = missing or not isinstance(row.get("question"), list) or not row["question"] \
        or not all(isinstance(turn, list) for turn in row["question"])
    if bad:
        what = f"lacks {', '.join(missing)}" if missing else "has no list of turns in 'question'"
        return Task(id=rid, prompt="", markers=(category, *groups(category)),
                    problem=f"{file.name}: {rid} {what} (a file of another BFCL version? this suite reads {PREFIX})")
    answer = None
    if answers is not None:
        if rid not in answers:
            return Task(id=rid, prompt="", markers=(category, *groups(category)),
                        problem=f"{rid} has no possible answer in possible_answer/{file.name}")
        answer = answers[rid]
    entry = {k: row[k] for k in ("id", "question", "function", "initial_config", "involved_classes",
                                 "missed_function") if k in row}
    if category in MULTI_TURN:
        unknown = [c for c in row["involved_classes"] if c not in docs]
        if unknown:
            return Task(id=rid, prompt="", markers=(category, *groups(category)),
                        problem=f"{rid}: no function docs for {', '.join(unknown)} in multi_turn_func_doc/")
        _populate(entry, docs)
        if not isinstance(answer, list) or len(answer) != len(row["question"]):
            return Task(id=rid, prompt="", markers=(category, *groups(category)),
                        problem=f"{rid}: its possible answer does not have one list of calls per turn")
    try:
        prompt = next((m.get("content", "") for m in row["question"][0] if m.get("role") == "user"), "")
        reference = _reference(category, entry, answer)
        data = {"category": category, "entry": entry, "answer": answer,
                "answer_defect": answer_defect(category, entry, answer)}
    except (KeyError, TypeError, AttributeError, ValueError, SyntaxError, IndexError) as exc:
        return Task(id=rid, prompt="", markers=(category, *groups(category)),
                    problem=f"{file.name}: {rid} is malformed ({type(exc).__name__}: {first_line(str(exc))[:120]})")
    return Task(id=rid, prompt=prompt, data=data, reference=reference, markers=(category, *groups(category)))


def _populate(entry: dict, docs: dict[str, list[dict]]) -> None:
    """bfcl_eval.utils.populate_test_cases_with_predefined_functions: the involved classes' docs, minus those of a
    miss-function turn, which move to `missed_function` (the docs are shared between entries: never mutated here)."""
    entry["function"] = [doc for cls in entry["involved_classes"] for doc in docs[cls]]
    missed = {}
    for turn, names in (entry.get("missed_function") or {}).items():
        missed[turn] = []
        for name in names:
            for i, doc in enumerate(entry["function"]):
                if doc["name"] == name:
                    missed[turn].append(doc)
                    entry["function"] = entry["function"][:i] + entry["function"][i + 1:]
                    break
    if "missed_function" in entry:
        entry["missed_function"] = missed


def _bfcl_version() -> str:
    from ..calls import _version

    return _version()


@functools.lru_cache(maxsize=None)
def _step_limit() -> int:
    try:
        return bfcl().categories.MAXIMUM_STEP_LIMIT
    except Exception:   # bfcl-eval missing: the suite's items are skipped anyway
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


# -- references: what a perfect model replies (the harness self-check) ------------------------------------------
OMIT = object()
DICT_TYPES = {"dict", "HashMap", "object"}
LIST_TYPES = {"array", "tuple", "Array", "ArrayList", "list"}


def _reference(category: str, entry: dict, answer) -> str | tuple[str, ...]:
    if category in MULTI_TURN:
        replies: list[str] = []
        for turn in answer:
            if turn:
                replies.append("[" + ", ".join(_keyword_call(call, entry) for call in turn) + "]")
            replies.append(NOT_A_CALL)
        return tuple(replies)
    if category in ("irrelevance", "live_irrelevance"):
        return NOT_A_CALL
    if category == "live_relevance":   # no possible answer: any call decodes; the first function, required args
        doc = entry["function"][0]
        args = [f"{p}={_placeholder(doc['parameters']['properties'].get(p, {}))}"
                for p in doc["parameters"].get("required", [])]
        return f"[{doc['name']}({', '.join(args)})]"
    lang = language(category)
    calls = []
    for call in answer:
        (name, params), = call.items()
        doc = next((f for f in entry["function"] if f["name"] == name), {"parameters": {"properties": {}}})
        props, required = doc["parameters"].get("properties", {}), doc["parameters"].get("required", [])
        args = []
        for param, choices in params.items():
            schema = props.get(param, {})
            value = _choose(choices, schema, param in required)
            if value is not OMIT:
                args.append(f"{param}={_render(value, schema, lang)}")
        calls.append(f"{name}({', '.join(args)})")
    return "[" + ", ".join(calls) + "]"


def answer_defect(category: str, entry: dict, answer) -> str | None:
    """Why this single-turn item's possible answer, as written, cannot pass bfcl-eval's checker, or None: it
    contradicts the function doc the checker holds it to, or asks for what BFCL's Java type converter cannot produce.
    No faithful reply passes such an item, on the leaderboard either; the report counts them per category."""
    if category in NO_ANSWER or category in MULTI_TURN:
        return None
    for call in answer:
        (name, params), = call.items()
        doc = next((f for f in entry["function"] if f["name"] == name), None)
        if doc is None:
            return f"its possible answer calls {name}, which is not among its functions"
        props, required = doc["parameters"].get("properties", {}), doc["parameters"].get("required", [])
        for param in required:
            if param not in params:
                return f"{name} requires {param!r}, which its possible answer leaves out"
        for param, choices in params.items():
            schema = props.get(param)
            if not [c for c in choices if not (param in required and c == "")]:
                return f"its possible answer leaves no acceptable value for {name}'s {param!r}"
            if schema is None and "" not in choices:
                return f"its possible answer gives {name} a parameter {param!r} the function does not have"
            if schema is None:
                continue
            if schema.get("type") in DICT_TYPES and any(isinstance(c, dict) and not all(isinstance(v, list) for v in
                                                                                           c.values()) for c in choices):
                return (f"the possible answer of the dict {param!r} is not a list of choices per key (the checker "
                        "takes a string's characters for the choices)")
            if category == "simple_java" and schema.get("type") in ("Array", "ArrayList") \
                    and (schema.get("items") or {}).get("type") == "any" and all(
                    isinstance(c, list) and not all(isinstance(v, str) for v in c) for c in choices if c != ""):
                return f"{param!r} holds `any` elements, which BFCL's Java converter reads as strings only"
    return None


def _choose(choices: list, schema: dict, required: bool = False):
    """The first acceptable value ("" means the parameter may be left out, unless the function requires it, or
    does not have it); a dict's possible answer lists the acceptable values of each key, the same way."""
    if not schema and "" in choices:
        return OMIT
    if required:
        choices = [c for c in choices if not (isinstance(c, str) and c == "")]
    value = choices[0] if choices else OMIT
    if isinstance(value, str) and value == "":
        return OMIT
    kind, items = schema.get("type"), (schema.get("items") or {}).get("type")
    if kind in DICT_TYPES and isinstance(value, dict):
        return _choose_dict(value)
    if kind in LIST_TYPES and items in DICT_TYPES and isinstance(value, list):
        return [_choose_dict(v) if isinstance(v, dict) else v for v in value]
    return value


def _choose_dict(possible: dict) -> dict:
    out = {}
    for key, choices in possible.items():
        value = _choose(choices if isinstance(choices, list) else [choices], {"type": None})
        if value is not OMIT:
            out[key] = value
    return out


def _render(value, schema: dict, lang: str) -> str:
    if lang == "python":
        return repr(value)
    kind, items = schema.get("type"), (schema.get("items") or {}).get("type")
    return _render_java(value, kind, items) if lang == "java" else _render_js(value, kind, items)


def _java_source(value, kind: str | None, items: str | None = None) -> str:
    """The Java source of a value as bfcl-eval's java_type_converter reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and kind == "long":
        return f"{value}L"
    if isinstance(value, (int, float)) and kind == "float":
        return f"{value}f"
    if kind == "Array" and isinstance(value, list):   # elements as the converter splits them: bare
        return f"new {JAVA_ELEMENT.get(items, 'Object')}[]{{{', '.join(_java_source(v, items) for v in value)}}}"
    if kind == "ArrayList" and isinstance(value, list):   # String and char elements keep their quotes
        quoted = [f'"{v}"' if items == "String" else f"'{v}'" if items == "char" else _java_source(v, items)
                  for v in value]
        return f"new ArrayList<>(Arrays.asList({', '.join(quoted)}))"
    if kind == "HashMap" and isinstance(value, dict):
        puts = " ".join(f'put("{k}", {json.dumps(v) if isinstance(v, str) else _java_source(v, None)});'
                        for k, v in value.items())
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    return str(value) if not isinstance(value, float) else repr(value)


JAVA_ELEMENT = {"String": "String", "integer": "int", "long": "long", "float": "float", "double": "double",
                "boolean": "boolean", "char": "char", "any": "Object", None: "Object"}


def _render_java(value, kind, items) -> str:
    """Every Java parameter is passed "in string representation" (the prompt's language hint): a string literal
    holding the value's Java source, which BFCL's parser unquotes and its type converter reads."""
    text = _java_source(value, kind, items)
    return f'"{text}"' if '"' not in text else f"'{text}'" if "'" not in text else text


def _render_js(value, kind, items) -> str:
    if isinstance(value, str) and kind not in ("String", "any"):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_render_js(v, items, None) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_render_js(v, None, None)}" for k, v in value.items()) + "}"
    return f'"{value}"'


def _placeholder(schema: dict) -> str:
    return {"integer": "1", "float": "1.0", "number": "1.0", "boolean": "True", "array": "[]", "dict": "{}",
            "tuple": "()"}.get(schema.get("type"), "'x'")


def _keyword_call(call: str, entry: dict) -> str:
    """A ground-truth call with its positional arguments named (BFCL's decoder reads keyword arguments only)."""
    node = ast.parse(call, mode="eval").body
    name = ast.unparse(node.func)
    doc = next((f for f in entry["function"] + [d for ds in (entry.get("missed_function") or {}).values() for d in ds]
                if f["name"] == name), None)
    params = list((doc or {}).get("parameters", {}).get("properties", {}))
    args = [f"{params[i]}={ast.unparse(a)}" for i, a in enumerate(node.args)]
    args += [f"{kw.arg}={ast.unparse(kw.value)}" for kw in node.keywords]
    return f"{name}({', '.join(args)})"


# -- the simulators, in the sandbox ------------------------------------------------------------------------------
class Simulators:
    """BFCL's multi-turn API classes for one conversation, run in the sandbox one request at a time: a step replays
    the earlier steps from the initial configuration (the simulators are seeded, so state is the same), then runs
    its own calls. Calls the decoder could not have produced from a reply are replaced first (calls.refused_call)."""

    def __init__(self, sandbox, entry: dict, category: str, timeout: float):
        self.sandbox, self.entry, self.category, self.timeout = sandbox, entry, category, timeout
        self.last_failure: tuple[Status, str] | None = None

    def _request(self, op: str, **fields) -> dict | None:
        modules, packages = _sources(tuple(self.entry["involved_classes"]))
        nonce = secrets.token_hex(16)
        request = {"op": op, "nonce": nonce, "modules": modules, "packages": packages,
                   "entry": {k: self.entry[k] for k in ("id", "initial_config", "involved_classes")},
                   "long_context": "long_context" in self.category, "model_name": "agentbench", **fields}
        program = _sandbox_program() + f"\nmain({json.dumps(request)!r})\n"
        run = self.sandbox.run_python(program, timeout=self.timeout)
        for line in reversed(run.stdout.splitlines()):
            if line.startswith(nonce):
                self.last_failure = None
                return json.loads(line[len(nonce):])
        if run.timed_out:
            self.last_failure = (Status.TIMEOUT, f"BFCL's simulators did not finish within {self.timeout:g} s")
        else:
            self.last_failure = (Status.ERROR, "BFCL's simulators ended without an answer: "
                                 + (first_line(run.stderr.strip().splitlines()[-1]) if run.stderr.strip()
                                    else f"exit status {run.exit_code}")[:200])
        return None

    def execute(self, history: list[list[str]], calls: list[str]) -> list[str]:
        found = self._request("execute", history=[_safe(step) for step in history], step=_safe(calls))
        if found is None:
            self._blame()
            return [f"Error during execution: {self.last_failure[1]}"] * len(calls)
        return found["results"]

    def check(self, decoded: list[list[list[str]]], truth: list[list[str]]) -> dict | None:
        return self._request("check", decoded=[[_safe(step) for step in turn] for turn in decoded],
                             ground_truth=truth, category=self.category)

    def failure(self) -> tuple[Status, str]:
        self._blame()
        return self.last_failure

    def _blame(self) -> None:
        """A run that failed: the model's calls did it, unless the simulators cannot even start here (infra)."""
        failure = self.last_failure
        if self._request("execute", history=[], step=[]) is None:
            raise HarnessError(f"BFCL's simulators cannot run in this sandbox: {self.last_failure[1]}")
        self.last_failure = failure


def _safe(calls: list[str]) -> list[str]:
    return [REFUSED_CALL if refused_call(c) else c for c in calls]


@functools.lru_cache(maxsize=None)
def _sandbox_program() -> str:
    return (Path(__file__).with_name("bfcl_sandbox.py")).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _sources(classes: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """The installed bfcl-eval's source of the multi-turn executor, checker and the given classes' simulators."""
    root = Path(find_spec("bfcl_eval").submodule_search_locations[0])
    packages = ["bfcl_eval", "bfcl_eval.constants", "bfcl_eval.eval_checker", SIMULATOR_ROOT,
                f"{SIMULATOR_ROOT}.func_source_code"]
    names = ["bfcl_eval.constants.executable_backend_config", f"{SIMULATOR_ROOT}.multi_turn_utils",
             f"{SIMULATOR_ROOT}.multi_turn_checker"]
    mapping = _class_modules()
    names += sorted({mapping[c] for c in classes})

    def source(name: str, package: bool) -> str:
        rel = Path(*name.split(".")[1:])
        return (root / rel / "__init__.py" if package else root / rel.with_suffix(".py")).read_text(encoding="utf-8")

    modules = {name: source(name, True) for name in packages}
    todo = list(names)
    while todo:   # and what they import from bfcl_eval (long_context)
        name = todo.pop()
        if name in modules:
            continue
        modules[name] = source(name, False)
        todo += [m for m in re.findall(r"^from (bfcl_eval[\w.]*) import", modules[name], re.M) if m not in modules]
    return modules, packages


def _class_modules() -> dict[str, str]:
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING  # constants only

    return CLASS_FILE_PATH_MAPPING


# -- metrics --------------------------------------------------------------------------------------------------------
def bfcl_metrics(records: list[dict]) -> dict:
    """Accuracy per category and BFCL v4's aggregation (bfcl_eval.eval_checker.eval_runner_helper.
    generate_leaderboard_csv: its weighting functions on the same tree), each with a task-clustered error bar, and
    tool selection: precision / recall / F1 of "called a function" on single-turn items, irrelevance accuracy."""
    from ..stats import combined_estimate, rate_estimate

    rows = [r for r in records if r.get("extra", {}).get("category") in CATEGORIES and r["status"] != "infra"]
    by_cat: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_cat[r["extra"]["category"]].append(r)
    sizes = next((r.get("suite_settings", {}).get("category_sizes") for r in rows
                  if r.get("suite_settings", {}).get("category_sizes")), {}) or {}
    categories = {}
    for cat in CATEGORIES:
        if by_cat[cat]:
            est = rate_estimate(by_cat[cat], lambda r: r["status"] == "passed")
            categories[cat] = {"accuracy": est["value"], "tasks": est["tasks"], "error": est,
                               "passed": sum(r["status"] == "passed" for r in by_cat[cat]),
                               "samples": len(by_cat[cat]), "dataset_size": sizes.get(cat),
                               "answer_defects": sum(bool(r["extra"].get("answer_defect")) for r in by_cat[cat])}
    aggregate = leaderboard(categories, sizes)
    for node in aggregate.values():
        node["error"] = combined_estimate([(w, categories[c]["error"]) for c, w in node.pop("weights").items()
                                           if c in categories], value=node["accuracy"])
    single = [r for r in rows if r["extra"]["category"] not in MULTI_TURN]
    pairs = [("call" if r["extra"]["should_call"] else "no_call", "call" if r["extra"].get("called") else "no_call")
             for r in single]
    irrelevant = [r for r in single if not r["extra"]["should_call"]]
    selection = {"per_class": per_class(pairs, ("call", "no_call")),
                 "irrelevance_accuracy": round(sum(not r["extra"].get("called") for r in irrelevant) / len(irrelevant),
                                               6) if irrelevant else None,
                 "irrelevance_tasks": len(irrelevant)}
    selection["called_a_function"] = selection["per_class"]["call"]
    errors = defaultdict(int)
    for r in rows:
        if r["status"] != "passed":
            errors[r["extra"].get("error_type") or r["status"]] += 1
    return {"categories": categories, "aggregate": aggregate, "left_out": list(LEFT_OUT), "tool_selection": selection,
            "error_types": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0])))}


#: the leaderboard's tree (generate_leaderboard_csv): how each score combines its parts
TREE = {
    "simple": ("unweighted", ("simple_python", "simple_java", "simple_javascript")),
    "non_live": ("unweighted", ("simple", "multiple", "parallel", "parallel_multiple")),
    "live": ("weighted", ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")),
    "irrelevance_detection": ("unweighted", ("irrelevance", "live_irrelevance")),
    "relevance_detection": ("unweighted", ("live_relevance",)),
    "multi_turn": ("unweighted", MULTI_TURN),
    "agentic": ("unweighted", ("web_search", "memory")),
    "web_search": ("unweighted", ("web_search_base", "web_search_no_snippet")),
    "memory": ("unweighted", ("memory_kv", "memory_vector", "memory_rec_sum")),
    "overall": ("percentage", ("non_live", "live", "irrelevance_detection", "multi_turn", "agentic")),
}
OVERALL_WEIGHTS = (10, 10, 10, 30, 40)
#: official sizes of the agentic categories (not run here): the leaderboard counts a category it has no score for
#: as 0 over its full size
AGENTIC_SIZES = {"web_search_base": 100, "web_search_no_snippet": 100, "memory_kv": 155, "memory_vector": 155,
                 "memory_rec_sum": 155}


def leaderboard(categories: dict[str, dict], sizes: dict[str, int]) -> dict[str, dict]:
    """Every aggregate of the tree, computed with bfcl-eval's calculate_*_accuracy functions. A category this run
    has no score for counts as 0 (BFCL shows it as N/A and still adds the 0 into the overall score); `missing` names
    them, `weights` says how much each category weighs in the aggregate (for its error bar)."""
    b = bfcl()
    fns = {"unweighted": b.helper.calculate_unweighted_accuracy, "weighted": b.helper.calculate_weighted_accuracy}
    done: dict[str, dict] = {}

    def node(name: str) -> dict:
        if name in done:
            return done[name]
        if name not in TREE:   # a category
            have = categories.get(name)
            score = {"accuracy": have["accuracy"] if have else 0.0, "total_count": have["tasks"] if have else
                     sizes.get(name, AGENTIC_SIZES.get(name, 0)), "display_accuracy": have["accuracy"] if have else
                     "N/A", "weights": {name: 1.0}, "missing": [] if have else [name]}
            done[name] = score
            return score
        how, parts = TREE[name]
        subs = [node(p) for p in parts]
        if how == "percentage":
            got = b.helper.calculate_percentage_weighted_accuracy(subs, list(OVERALL_WEIGHTS),
                                                                  display_na_if_category_missing=False)
            share = [w / sum(OVERALL_WEIGHTS) for w in OVERALL_WEIGHTS]
        else:
            got = fns[how](subs)
            total = sum(s["total_count"] for s in subs)
            share = [s["total_count"] / total if total else 0.0 for s in subs] if how == "weighted" else \
                [1 / len(subs)] * len(subs)
        weights: dict[str, float] = defaultdict(float)
        for s, part in zip(subs, share):
            for cat, w in s["weights"].items():
                weights[cat] += part * w
        score = {"accuracy": got["accuracy"], "total_count": got["total_count"], "display_accuracy":
                 got["display_accuracy"], "weights": dict(weights), "missing": [m for s in subs for m in s["missing"]]}
        done[name] = score
        return score

    out = {}
    for name in TREE:
        score = node(name)
        out[name] = {"accuracy": round(score["accuracy"], 6), "display": "N/A" if score["missing"] else
                     round(score["accuracy"], 6), "missing": score["missing"],
                     "run": [c for c in score["weights"] if c in categories], "weights": score["weights"]}
    # not a leaderboard column: the overall score without the agentic part this suite cannot run
    part = {k: done[k] for k in ("non_live", "live", "irrelevance_detection", "multi_turn")}
    weights = dict(zip(part, OVERALL_WEIGHTS[:4]))
    value = sum(weights[k] * part[k]["accuracy"] for k in part) / sum(weights.values())
    mix: dict[str, float] = defaultdict(float)
    for k, s in part.items():
        for cat, w in s["weights"].items():
            mix[cat] += weights[k] / sum(weights.values()) * w
    missing = [m for s in part.values() for m in s["missing"]]
    out["overall_without_agentic"] = {"accuracy": round(value, 6), "display": "N/A" if missing else round(value, 6),
                                      "missing": missing, "run": [c for c in mix if c in categories],
                                      "weights": dict(mix)}
    return out
