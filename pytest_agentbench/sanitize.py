"""Text from models and candidate code, made safe to print: every control, format (bidi override, zero-width) and
line/paragraph-separator character is shown escaped (`\x1b`, `\u2028`), so an ANSI or OSC sequence cannot erase
a line or paint a fake "passed", and U+2028 cannot split a one-line reason. The JSONL keeps the exact text."""

from __future__ import annotations

import unicodedata

_ESCAPED = frozenset(("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))


def for_terminal(text: str, keep_newlines: bool = False) -> str:
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in _ESCAPED:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)
