"""BFCL's possible answers: the reply a perfect model gives (the reference self-check), and the possible answers that
bfcl-eval's checker rejects as written, found from the data (suites/bfcl.py).

A single-turn reference is the first acceptable value of each parameter, written as a model would write it: Python
literals, Java values in their string representation (the prompt's language hint asks for it), JavaScript literals. A
multi-turn reference replays the ground truth's calls with their arguments named (BFCL's decoder reads keyword
arguments only), turn by turn, each turn closed by a reply without calls.
"""

from __future__ import annotations

import ast
import json
from typing import Any, cast

from . import MULTI_TURN, NO_ANSWER, NOT_A_CALL, language

OMIT = object()
DICT_TYPES = {"dict", "HashMap", "object"}
LIST_TYPES = {"array", "tuple", "Array", "ArrayList", "list"}


def reference(category: str, entry: dict, answer) -> str | tuple[str, ...]:
    if category in MULTI_TURN:
        replies: list[str] = []
        for turn in answer:
            if turn:
                replies.append("[" + ", ".join(_keyword_call(call, entry) for call in turn) + "]")
            replies.append(NOT_A_CALL)
        return tuple(replies)
    if category in ("irrelevance", "live_irrelevance"):
        return NOT_A_CALL
    if category == "live_relevance":  # no possible answer: any call decodes; the first function, required args
        doc: dict = entry["function"][0]
        args = [
            f"{p}={_placeholder(doc['parameters']['properties'].get(p, {}))}"
            for p in doc["parameters"].get("required", [])
        ]
        return f"[{doc['name']}({', '.join(args)})]"
    lang = language(category)
    calls = []
    for call in answer:
        ((name, params),) = call.items()
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
        ((name, params),) = call.items()
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
            if schema.get("type") in DICT_TYPES and any(
                isinstance(c, dict) and not all(isinstance(v, list) for v in c.values()) for c in choices
            ):
                return (
                    f"the possible answer of the dict {param!r} is not a list of choices per key (the checker "
                    "iterates over the value itself: a string's characters become the choices)"
                )
            if (
                category == "simple_java"
                and schema.get("type") in ("Array", "ArrayList")
                and (schema.get("items") or {}).get("type") == "any"
                and all(isinstance(c, list) and not all(isinstance(v, str) for v in c) for c in choices if c != "")
            ):
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
    if kind == "Array" and isinstance(value, list):  # elements as the converter splits them: bare
        return f"new {JAVA_ELEMENT.get(items, 'Object')}[]{{{', '.join(_java_source(v, items) for v in value)}}}"
    if kind == "ArrayList" and isinstance(value, list):  # String and char elements keep their quotes
        quoted = [
            f'"{v}"' if items == "String" else f"'{v}'" if items == "char" else _java_source(v, items) for v in value
        ]
        return f"new ArrayList<>(Arrays.asList({', '.join(quoted)}))"
    if kind == "HashMap" and isinstance(value, dict):
        puts = " ".join(
            f'put("{k}", {json.dumps(v) if isinstance(v, str) else _java_source(v, None)});' for k, v in value.items()
        )
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    return str(value) if not isinstance(value, float) else repr(value)


JAVA_ELEMENT = {
    "String": "String",
    "integer": "int",
    "long": "long",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "char": "char",
    "any": "Object",
    None: "Object",
}


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
    kind: Any = schema.get("type")  # a JSON schema's value
    return {
        "integer": "1",
        "float": "1.0",
        "number": "1.0",
        "boolean": "True",
        "array": "[]",
        "dict": "{}",
        "tuple": "()",
    }.get(kind, "'x'")


def _keyword_call(call: str, entry: dict) -> str:
    """A ground-truth call with its positional arguments named (BFCL's decoder reads keyword arguments only)."""
    node = cast(ast.Call, ast.parse(call, mode="eval").body)  # a ground-truth call
    name = ast.unparse(node.func)
    doc = next(
        (
            f
            for f in entry["function"] + [d for ds in (entry.get("missed_function") or {}).values() for d in ds]
            if f["name"] == name
        ),
        None,
    )
    params = list((doc or {}).get("parameters", {}).get("properties", {}))
    args = [f"{params[i]}={ast.unparse(a)}" for i, a in enumerate(node.args)]
    args += [f"{kw.arg}={ast.unparse(kw.value)}" for kw in node.keywords]
    return f"{name}({', '.join(args)})"
