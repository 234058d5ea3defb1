"""Pull the code out of a chat reply, the way small models actually write them.

Handles fenced blocks (closed or cut off), a bare function, prose before and after code, and a reply
that repeats the prompt. Returns None when there is no code at all (the "unparsable" outcome).
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \w[\w.]* import |@\w)")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError):
        return False


def _defines(code: str, name: str | None) -> bool:
    if not name:
        return False
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def _longest_parsing_prefix(lines: list[str]) -> str | None:
    """Code followed by prose (or cut off mid-line): keep the longest prefix of lines that parses."""
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end]).rstrip()
        if chunk and _parses(chunk):
            return chunk + "\n"
    return None


_PYTHON = ("", "python", "py", "python3")
#: `Request.end_after` rule: a chat reply may end once the code `extract_code` reads is there (`code_block_rule`)
CODE_BLOCK = "code_block"


def code_block_rule(entry_point: str | None) -> str:
    """The `end_after` value for a reply whose code must define `entry_point`."""
    return f"{CODE_BLOCK}:{entry_point}" if entry_point else CODE_BLOCK


def code_block_end(reply: str, entry_point: str | None = None) -> int | None:
    """Where a chat reply may stop: just past the closing fence of its first fenced block that `extract_code` ranks
    first (Python or no language, code that parses and, given `entry_point`, defines it), or None while there is none.
    Stable under appending: once it returns an index, more text never moves it, so a backend can stop generating
    there. extract_code then reads the same code from the cut reply as from the whole one, unless a later block also
    defines the function, parses and is longer (none of the 328 replies of the main job and HumanEvalFix did)."""
    for match in _FENCE.finditer(reply):
        lang, body = match.group(1).lower(), match.group(2)
        if (
            lang in _PYTHON
            and body.strip()
            and match.group(0).endswith("```")
            and _parses(body)
            and (entry_point is None or _defines(body, entry_point))
        ):
            return match.end()
    return None


def extract_code(reply: str, entry_point: str | None = None) -> str | None:
    text = reply.replace("\r\n", "\n")
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    blocks = [(lang, body) for lang, body in blocks if lang in _PYTHON and body.strip()]
    if blocks:
        ranked = sorted(blocks, key=lambda b: (not _defines(b[1], entry_point), not _parses(b[1]), -len(b[1])))
        body = ranked[0][1]
        return body if _parses(body) else (_longest_parsing_prefix(body.split("\n")) or body)
    lines = text.split("\n")
    candidates = [
        code
        for i, ln in enumerate(lines)
        if _CODE_START.match(ln)
        for code in [_longest_parsing_prefix(lines[i:])]
        if code
    ]
    if candidates:  # the first stretch of code that holds the function asked for, else the longest
        with_entry = [c for c in candidates if _defines(c, entry_point)]
        return with_entry[0] if with_entry else max(candidates, key=len)
    if lines and lines[0].startswith((" ", "\t")) and _parses("def _f():\n" + text):
        return text  # an indented body: the reply continues the prompt
    return None
