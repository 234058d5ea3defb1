"""Prompt formats of the tool-use suite: the system prompt a model is given, one template per format, in one place.

`--prompt-format direct,cot,tools` runs every tool-use task once per format (ids grow `-direct`, `-cot`, ...; a
marker per format: `-m prompt_cot`). Without the option the suite runs the `default` format only, with unchanged ids.

A template is a `str.format` string with these fields:

    {tools}        one line per tool: its name, what it does, its arguments
    {tool_guide}   per tool: when it helps and when it does not (Tool.use_when / Tool.avoid_when), and when to
                   answer directly
    {protocol}     the reply format: optional THOUGHT lines, then exactly one TOOL_CALL or FINAL

Add a format from a conftest.py or a plugin, before collection:

    from pytest_agentbench.prompts import PromptFormat, register_format
    register_format(PromptFormat("terse", "Tools:\\n{tools}\\n{protocol}\\nBe brief.", "fewest words"))

A format with `native=True` gives the model no text protocol: the tools go through the model API's own function
calling (docs/function-calling.md); its template may use {tool_guide} only. `native` is the one shipped; it runs
in the BFCL and agent-scenario suites too (as their `-native` items).

Every registered template's sha256 is part of the suite's settings (so a changed or added template never resumes
or pairs with runs made before it), and each record names its format (`extra.prompt_format`).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass

PROTOCOL = """Reply in this format, nothing else:
THOUGHT: <your reasoning, optional>
then exactly one of
TOOL_CALL: {{"tool": "<tool name>", "args": {{...}}}}
FINAL: <the answer only>
After a TOOL_CALL you get an OBSERVATION with the tool's output."""
FIELDS = frozenset({"tools", "tool_guide", "protocol"})
NATIVE_FIELDS = frozenset({"tool_guide"})  # a native format's tools and protocol are the API's


@dataclass(frozen=True)
class PromptFormat:
    name: str
    system: str  # the system prompt template (fields above)
    summary: str = ""  # one line for --help and the README
    native: bool = False  # tools through the model API's function calling, not the text protocol

    def render(self, tools: str, tool_guide: str) -> str:
        return self.system.format(tools=tools, tool_guide=tool_guide, protocol=PROTOCOL.format())

    def sha256(self) -> str:
        return hashlib.sha256(self.system.encode() + (b"\0native" if self.native else b"")).hexdigest()


FORMATS: dict[str, PromptFormat] = {}


def register_format(fmt: PromptFormat) -> PromptFormat:
    """Make a format selectable by name (`--prompt-format NAME`). A template with an unknown field is refused here,
    not in the middle of a run."""
    if not fmt.name or not fmt.name.replace("_", "").isalnum():
        raise ValueError(
            f"prompt format name {fmt.name!r}: letters, digits and _ only (it becomes an id suffix and a marker)"
        )
    used = {f for _, f, _, _ in string.Formatter().parse(fmt.system) if f is not None}
    unknown = sorted(used - (NATIVE_FIELDS if fmt.native else FIELDS))
    if unknown:
        known = NATIVE_FIELDS if fmt.native else FIELDS
        raise ValueError(
            f"prompt format {fmt.name!r}: unknown template field {{{unknown[0]}}} (known: {', '.join(sorted(known))})"
        )
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> PromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r} (known: {', '.join(FORMATS)})") from None


def templates_sha256(selected: tuple[str, ...] | None = None) -> dict[str, str]:
    """The template hashes (short), by name, that are part of the tool-use suite's settings: every registered text
    format's, and a native format's only when it is `selected` (a native item renders no text template, so adding
    native function calling leaves the text items' configuration, and old reports' comparability, as it was)."""
    chosen = set(selected or ())
    return {name: fmt.sha256()[:16] for name, fmt in sorted(FORMATS.items()) if not fmt.native or name in chosen}


def parse_formats(value: str | None) -> tuple[str, ...] | None:
    """`--prompt-format a,b` -> ("a", "b"), each checked; None when the option was not given."""
    if value is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise ValueError("--prompt-format needs at least one format name")
    for name in names:
        get_format(name)
    return names


# The suite's prompt before formats existed: the tools listed, the protocol, answer directly when no tool is needed.
register_format(
    PromptFormat(
        "default",
        """You solve problems, either directly or with one tool call at a time. Tools:
{tools}
{protocol} Answer directly when no tool is needed.""",
        "the tools listed, the protocol (the suite's original prompt)",
    )
)

register_format(
    PromptFormat(
        "direct",
        """Answer the question. You may call one of these tools, one call at a time:
{tools}
Reply with exactly one line and nothing else: either
TOOL_CALL: {{"tool": "<tool name>", "args": {{...}}}}
or
FINAL: <the answer only>
After a TOOL_CALL you get an OBSERVATION with the tool's output.""",
        "the protocol only: one line, no reasoning",
    )
)

register_format(
    PromptFormat(
        "cot",
        """You solve problems, either directly or with one tool call at a time. Tools:
{tools}
Before you act, think step by step in THOUGHT: lines: what the question asks, whether careful reasoning alone
gives a certain answer, and whether a tool would give an exact result that reasoning could get wrong. Then act.
{protocol}""",
        "reason step by step in THOUGHT lines before choosing",
    )
)

register_format(
    PromptFormat(
        "tools",
        """You solve problems, either directly or with one tool call at a time. Tools:
{tools}
When each one helps, and when it does not:
{tool_guide}
{protocol}""",
        "each tool described: when it helps and when it does not",
    )
)

register_format(
    PromptFormat(
        "native",
        """You solve problems, either directly or with one tool call at a time. The tools are given to you as
functions: call one when it helps, one call at a time; you then get its result. When no tool is needed, or once you
know the answer, reply with the answer only.""",
        "the tools as functions, through the model API's own function calling (no text protocol)",
        native=True,
    )
)


def native_requested(value: str | None) -> tuple[bool, bool]:
    """(text, native) for the suites with one protocol of their own (BFCL, agent scenarios): whether
    `--prompt-format` asks for their text protocol (no option, or any text format) and for native items."""
    names = parse_formats(value)
    if names is None:
        return True, False
    native = any(get_format(n).native for n in names)
    return any(not get_format(n).native for n in names), native
