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
    return bool(name) and re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def _longest_parsing_prefix(lines: list[str]) -> str | None:
    """Code followed by prose (or cut off mid-line): keep the longest prefix of lines that parses."""
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end]).rstrip()
        if chunk and _parses(chunk):
            return chunk + "\n"
    return None


def extract_code(reply: str, entry_point: str | None = None) -> str | None:
    text = reply.replace("\r\n", "\n")
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    blocks = [(lang, body) for lang, body in blocks if lang in ("", "python", "py", "python3") and body.strip()]
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
