"""Function calls: the one place where a model's reply becomes calls, and calls become the next message.

The BFCL suite speaks BFCL's own protocol for models without native function calling ("prompting" mode in
`bfcl-eval`): the function docs go into the system prompt, the model answers `[func(arg=val), ...]`, and each
step's execution results go back as one user message. `PromptingHandler` does all of it with bfcl-eval's own
functions (its prompt builder, decoders and result formatter), so a model is asked and read exactly as the
leaderboard asks and reads it. `NativeHandler` (--prompt-format native, the `-native` items) is BFCL's
function-calling mode instead, shaped as bfcl-eval's OpenAI FC handler: the functions go to the model API as tools
(bfcl-eval's `convert_to_tool`, '.' in names written '_', read back by the checker's `agentbench-fc-underscore`
model), a reply's native calls are the response (`[{name: arguments JSON}]`, its text when it made none), and each
step's results go back as one `tool` message per call.

Two guards stand between a model's reply and BFCL's code, because that code evaluates what the model wrote:
- BFCL's Python decoder runs `eval()` on arithmetic found in arguments (`f(x=2*3)` decodes to 6). `unsafe_reply`
  lets through only arithmetic on number literals (and joins of string literals) of bounded size, so a call hidden
  in an argument (`f(x=__import__("os").system("...") + 1)`) or a huge power never reaches that eval; the reply
  is refused as undecodable instead (which BFCL would count the same way as any reply it cannot decode).
- BFCL executes a multi-turn step by `eval()` of call strings built from the decoded reply; dict keys are pasted
  into that string unquoted, so a reply can smuggle code in. `refused_call` accepts only a call of a plain name
  whose arguments are literals (or such calls); anything else is replaced by a call of an undefined name, which
  BFCL's executor reports as an execution error. Those calls then run in the sandbox anyway (suites/bfcl.py).

`bfcl()` imports the parts of bfcl-eval this project uses without the rest of the package: its model registry
(`constants.model_config`) imports every vendor SDK; the checker needs only whether a model name turns `.` into
`_` in function names, which a small stand-in answers.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from typing import Union, cast

from ...errors import AgentbenchError

BFCL_TESTED = "2026.3.23"
INSTALL_HINT = (
    f"pip install --no-deps bfcl-eval=={BFCL_TESTED} && pip install 'pytest-agentbench[bfcl]' "
    "(bfcl-eval pins numpy 1.26.4 and many vendor SDKs; only its checker, decoders and simulators are used)"
)
#: what a refused multi-turn call is replaced with: no such name exists, so BFCL's executor reports an error
REFUSED_CALL = "refused_by_harness()"


@dataclass(frozen=True)
class _ModelConfig:
    """The one field of bfcl-eval's ModelConfig its checker reads."""

    underscore_to_dot: bool


#: checker model names (bfcl's `model_name`, with '_' read as '/'): prompting models keep dotted function names;
#: APIs that forbid '.' in tool names (OpenAI's) have them written with '_'
MODEL_CONFIGS = {"agentbench-prompting": _ModelConfig(False), "agentbench-fc-underscore": _ModelConfig(True)}


@functools.cache
def bfcl() -> types.SimpleNamespace:
    """bfcl-eval's checker, decoders, prompt builder and score aggregation, imported once per process.

    Its `constants.eval_config` creates `result/`, `score/` and `.file_locks/` under BFCL_PROJECT_ROOT (by default
    beside the installed package): pointed into this project's cache unless the user set it."""
    if importlib.util.find_spec("bfcl_eval") is None:
        raise AgentbenchError(f"the BFCL suite needs bfcl-eval: {INSTALL_HINT}")
    from ...provenance import CACHE_DIR

    os.environ.setdefault("BFCL_PROJECT_ROOT", str(CACHE_DIR / "bfcl-eval"))
    name = "bfcl_eval.constants.model_config"
    stand_in = types.ModuleType(name)
    vars(stand_in)["MODEL_CONFIG_MAPPING"] = MODEL_CONFIGS  # a module's attribute mypy cannot see
    placed = sys.modules.setdefault(name, stand_in) is stand_in
    try:
        from bfcl_eval import utils
        from bfcl_eval.constants import category_mapping, default_prompts
        from bfcl_eval.constants.enums import Language, ModelStyle, ReturnFormat
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
        from bfcl_eval.eval_checker import eval_runner, eval_runner_helper
        from bfcl_eval.eval_checker.ast_eval import ast_checker
        from bfcl_eval.model_handler import utils as handler_utils
    except ImportError as exc:
        raise AgentbenchError(f"bfcl-eval cannot be imported ({exc}): {INSTALL_HINT}") from None
    finally:
        if placed:
            del sys.modules[name]  # a later import of the real registry (by a user's code) still works
    for module in (ast_checker, eval_runner, eval_runner_helper):
        module.MODEL_CONFIG_MAPPING = MODEL_CONFIGS
    needed = [
        (eval_runner, "_evaluate_single_ast_entry"),
        (eval_runner, "_evaluate_single_relevance_entry"),
        (eval_runner_helper, "calculate_unweighted_accuracy"),
        (eval_runner_helper, "calculate_weighted_accuracy"),
        (eval_runner_helper, "calculate_percentage_weighted_accuracy"),
        (handler_utils, "system_prompt_pre_processing_chat_model"),
        (handler_utils, "format_execution_results_prompting"),
        (utils, "_func_doc_language_specific_pre_processing"),
        (handler_utils, "convert_to_tool"),
        (handler_utils, "convert_to_function_call"),
    ]
    missing = [f"{m.__name__}.{attr}" for m, attr in needed if not hasattr(m, attr)]
    if missing:
        raise AgentbenchError(
            f"bfcl-eval {_version()} lacks {', '.join(missing)} (this suite is tested with "
            f"{BFCL_TESTED}): pip install --no-deps bfcl-eval=={BFCL_TESTED}"
        )
    return types.SimpleNamespace(
        version=_version(),
        Language=Language,
        ReturnFormat=ReturnFormat,
        runner=eval_runner,
        helper=eval_runner_helper,
        handler_utils=handler_utils,
        utils=utils,
        prompts=default_prompts,
        categories=category_mapping,
        ModelStyle=ModelStyle,
        openapi_types=GORILLA_TO_OPENAPI,
    )


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bfcl-eval")
    except PackageNotFoundError:
        return "unknown"


# -- the protocol -----------------------------------------------------------------------------------------------
class PromptingHandler:
    """BFCL's prompting protocol (`BaseHandler` in prompting mode, OpenAI-style chat messages): the methods BFCL's
    evaluation helpers call on a handler (`decode_ast`, `decode_execute`) and the ones its inference loop uses."""

    name = "prompting"
    checker_model = "agentbench-prompting"

    def tools(self, functions: list[dict]) -> list[dict]:
        """What goes to the model API as native tools: none (the docs are in the prompt)."""
        return []

    def response(self, reply) -> str:
        """What BFCL decodes from a reply (`model_responses`): its text."""
        return reply.text

    def assistant_message(self, reply, ids: list[str]) -> dict:
        return {"role": "assistant", "content": reply.text}

    def opening(self, first_turn: list[dict], functions: list[dict], entry_id: str) -> list[dict]:
        """The first turn's messages with BFCL's default system prompt (function docs as JSON, calls as
        `[func(arg=val)]`) put in front of, or merged into, the question's own system message."""
        return bfcl().handler_utils.system_prompt_pre_processing_chat_model(
            copy.deepcopy(first_turn), functions, entry_id
        )

    def decode_ast(self, result, language=None, has_tool_call_tag: bool = False) -> list[dict]:
        b = bfcl()
        language = language or b.ReturnFormat.PYTHON
        if language == b.ReturnFormat.PYTHON:
            problem = unsafe_reply(result)
            if problem:
                raise ValueError(f"refused by the harness: {problem}")
        return b.handler_utils.default_decode_ast_prompting(result, language, has_tool_call_tag)

    def decode_execute(self, result, has_tool_call_tag: bool = False) -> list[str]:
        problem = unsafe_reply(result)
        if problem:
            raise ValueError(f"refused by the harness: {problem}")
        return bfcl().handler_utils.default_decode_execute_prompting(result, has_tool_call_tag)

    def results_messages(self, results: list[str], decoded: list[str], ids: list[str]) -> list[dict]:
        """One user message holding the step's execution results (BFCL's OpenAI prompting handler)."""
        text = bfcl().handler_utils.format_execution_results_prompting(
            {}, results, {"model_responses_decoded": decoded}
        )
        return [{"role": "user", "content": text}]

    def more_functions(self, functions: list[dict]) -> tuple[dict, list[dict]]:
        """A miss-function turn: its user message (here with the docs held out until now) and the tools it adds."""
        message = {
            "role": "user",
            "content": bfcl().prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING.format(functions=functions),
        }
        return message, []


class NativeHandler(PromptingHandler):
    """BFCL's function-calling mode through the model API's own interface (bfcl-eval's OpenAI FC handler's shapes):
    no system prompt of its own, the functions as tools, native calls as the response."""

    name = "native"
    checker_model = "agentbench-fc-underscore"

    def opening(self, first_turn: list[dict], functions: list[dict], entry_id: str) -> list[dict]:
        return copy.deepcopy(first_turn)

    def tools(self, functions: list[dict]) -> list[dict]:
        b = bfcl()
        return b.handler_utils.convert_to_tool(functions, b.openapi_types, b.ModelStyle.OPENAI_COMPLETIONS)

    def response(self, reply):
        """`[{name: arguments JSON}, ...]` when the reply made native calls, else its text (as BFCL's FC handler)."""
        if reply.tool_calls:
            return [{c.get("name") or "": c.get("arguments") or "{}"} for c in reply.tool_calls]
        return reply.text

    def assistant_message(self, reply, ids: list[str]) -> dict:
        calls = [
            {"id": i, "type": "function", "function": {"name": c.get("name"), "arguments": c.get("arguments")}}
            for i, c in zip(ids, reply.tool_calls)
        ]
        return {"role": "assistant", "content": reply.text or None, **({"tool_calls": calls} if calls else {})}

    def decode_ast(self, result, language=None, has_tool_call_tag: bool = False) -> list[dict]:
        import json

        if not isinstance(result, list):
            raise ValueError("no native function call in the reply")
        decoded = []
        for call in result:
            (name, arguments), *_ = call.items()
            params = json.loads(arguments)
            if not isinstance(params, dict):
                raise ValueError(f"{name}: arguments are not a JSON object")
            decoded.append({name: params})
        return decoded

    def decode_execute(self, result, has_tool_call_tag: bool = False) -> list[str]:
        return bfcl().handler_utils.convert_to_function_call(self.decode_ast(result))

    def results_messages(self, results: list[str], decoded: list[str], ids: list[str]) -> list[dict]:
        return [{"role": "tool", "content": r, "tool_call_id": i} for r, i in zip(results, ids)]

    def more_functions(self, functions: list[dict]) -> tuple[dict, list[dict]]:
        message = {"role": "user", "content": bfcl().prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC}
        return message, self.tools(functions)


# -- guards -----------------------------------------------------------------------------------------------------
_NUMBER_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
MAX_POWER_BASE, MAX_EXPONENT = 10**6, 64


def unsafe_reply(text) -> str | None:
    """Why BFCL's Python decoder must not see `text`, or None. Mirrors its preparation (strip backticks, wrap in
    [...], strip quotes) and its walk over argument values (bfcl_eval.model_handler.utils.resolve_ast_by_type),
    checking every node that walk would `eval`: arithmetic of numbers (powers of small literals only) or a join of
    string literals passes; anything else in arithmetic, and any lambda, is refused. A reply that does not parse is
    left to the decoder, which fails on it the same way."""
    if not isinstance(text, str):
        return None
    body = text.strip("`\n ")
    body = ("" if body.startswith("[") else "[") + body + ("" if body.endswith("]") else "]")
    try:
        tree = ast.parse(body.strip().strip("'"), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    calls = [tree] if isinstance(tree, ast.Call) else getattr(tree, "elts", [])
    try:
        for call in calls:
            if isinstance(call, ast.Call):
                for node in _evaluated(call):
                    problem = _arithmetic(node)
                    if problem:
                        return problem
    except RecursionError:
        return "arguments nested too deeply"
    return None


def _evaluated(node):
    """The nodes of a call's arguments that BFCL's decoder would pass to eval()."""
    if isinstance(node, ast.Call):
        for kw in node.keywords if node.keywords else ():
            yield from _evaluated(kw.value)
    elif isinstance(node, (ast.BinOp, ast.Lambda)):
        yield node
    elif isinstance(node, (ast.List, ast.Tuple)):
        for elt in node.elts:
            yield from _evaluated(elt)
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if key is not None:
                yield from _evaluated(key)
            yield from _evaluated(value)


def _arithmetic(node) -> str | None:
    if isinstance(node, ast.Lambda):
        return "a lambda in an argument"
    if _joined_strings(node):
        return None
    return _numeric(node)


def _joined_strings(node) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add)
        and _joined_strings(node.left)
        and _joined_strings(node.right)
    )


def _number(node) -> float | int | None:
    """A number literal, possibly signed."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return cast(Union[float, int], node.value)
    return None


def _numeric(node) -> str | None:
    if _number(node) is not None:
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _numeric(node.operand)
    if not isinstance(node, ast.BinOp):
        return f"{type(node).__name__} in arithmetic of an argument"
    if isinstance(node.op, ast.Pow):
        base, exponent = _number(node.left), _number(node.right)
        if base is None or exponent is None or abs(base) > MAX_POWER_BASE or abs(exponent) > MAX_EXPONENT:
            return f"a power other than number ** number (|base| <= {MAX_POWER_BASE}, |exponent| <= {MAX_EXPONENT})"
        return None
    if not isinstance(node.op, _NUMBER_OPS):
        return f"operator {type(node.op).__name__} in an argument"
    return _numeric(node.left) or _numeric(node.right)


_LITERALS = (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.Call, ast.Name)
#: names BFCL's executor could reach besides the simulators' methods: builtins and its module's own globals
_REACHABLE = frozenset(dir(builtins)) | {
    "copy",
    "importlib",
    "inspect",
    "json",
    "re",
    "CLASS_FILE_PATH_MAPPING",
    "STATELESS_CLASSES",
    "execute_multi_turn_func_call",
    "globals",
    "eval",
}


def refused_call(call: str) -> str | None:
    """Why a decoded multi-turn call string must not be executed, or None. What the decoder builds from a reply is
    `name(key=literal, ...)`, nested calls allowed; a call of a builtin or of the executor's modules, a positional
    argument, or any other expression can only come from text smuggled into the string."""
    try:
        tree = ast.parse(call, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "not one call expression"
    if not isinstance(tree, ast.Call):
        return "not a call"
    try:
        return _literal_call(tree)
    except RecursionError:
        return "nested too deeply"


def _literal_call(node: ast.Call) -> str | None:
    if not isinstance(node.func, ast.Name) or node.func.id.startswith("_") or node.func.id in _REACHABLE:
        return f"calls {ast.unparse(node.func)[:60]!r}"
    if node.args:
        return "positional arguments"
    for kw in node.keywords:
        if kw.arg is None:
            return "** arguments"
        problem = _literal(kw.value)
        if problem:
            return problem
    return None


def _literal(node) -> str | None:
    if isinstance(node, ast.Call):
        return _literal_call(node)
    if isinstance(node, ast.Name):  # repr() of inf and nan: an undefined name, an execution error
        return None if node.id in ("inf", "nan") else f"name {node.id!r}"
    if isinstance(node, ast.UnaryOp):
        return (
            None
            if isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant)
            else "an operator"
        )
    if not isinstance(node, _LITERALS):
        return f"{type(node).__name__} in an argument"
    children = (
        node.elts
        if isinstance(node, (ast.List, ast.Tuple, ast.Set))
        else [*node.keys, *node.values]
        if isinstance(node, ast.Dict)
        else []
    )
    for child in children:
        if child is None:
            return "** in a dict"
        problem = _literal(child)
        if problem:
            return problem
    return None
