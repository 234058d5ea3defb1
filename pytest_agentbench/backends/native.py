"""Native function calling on the backends that render and read the chat themselves (transformers, vLLM's offline
engine), and the tool template every engine of a model shares (docs/function-calling.md).

A model whose own chat template ignores `tools` (SmolLM2's) names a tool-aware template in models.yaml
(`tool_template: smollm2-tools`, packaged in assets/, or a .jinja file). The servers get it too (llama-server's
`--chat-template-file`, vllm serve's `--chat-template`), so every engine renders the same prompt.

Replies are read back with transformers' own parser (`tokenizer.parse_response`) and a response template for the
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` format that template asks for (the one `transformers serve`
uses for Qwen2 models): a call that does not parse is a protocol error, the parser's own words its reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import AgentbenchError, first_line

ASSETS = Path(__file__).resolve().parents[1] / "assets"

#: transformers' response template for the Hermes `<tool_call>` format (ChatML turns)
HERMES_RESPONSE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {
            "open_pattern": r"\s*<tool_call>",
            "close": "</tool_call>",
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}


def packaged_templates() -> list[str]:
    return sorted(p.stem for p in ASSETS.glob("*.jinja"))


def tool_template_path(spec) -> Path | None:
    """The tool template a model names (None: it names none); a name that is neither packaged nor a file is one
    line."""
    name = getattr(spec, "tool_template", None)
    if not name:
        return None
    packaged = ASSETS / f"{name}.jinja"
    if "/" not in name and packaged.is_file():
        return packaged
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    raise AgentbenchError(
        f"model {spec.name!r}: tool_template {name!r} is neither a packaged template "
        f"({', '.join(packaged_templates())}) nor a .jinja file"
    )


@functools.lru_cache(maxsize=16)
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def tool_template(spec) -> str | None:
    path = tool_template_path(spec)
    return None if path is None else _read(path)


def tool_template_sha256(spec) -> str | None:
    text = tool_template(spec)
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def renders_tools(template: str | None) -> bool:
    """Whether a chat template reads `tools` at all (one that does not drops them without a word)."""
    return template is not None and "tools" in template


def read_calls(tokenizer, text: str, prompt: str, tools: list[dict]) -> tuple[str, list[dict[str, Any]], str | None]:
    """(content, calls, protocol error) of a generated reply: calls as {"name", "arguments" (JSON text)}, the shape
    every backend gives. A reply without `<tool_call>` is content; a call that does not parse is the error."""
    template = getattr(tokenizer, "response_template", None) or HERMES_RESPONSE
    try:
        message = tokenizer.parse_response(text, template, prefix=prompt, tools=tools)
    except ValueError as exc:  # the parser's words: 'json parser could not parse region as JSON' + the region
        return text, [], f"malformed native call: {first_line(str(exc))[:300]}"
    calls = []
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            return text, [], "malformed native call: a <tool_call> that is not a JSON object"
        args = fn.get("arguments", {})
        calls.append({"name": fn.get("name"), "arguments": args if isinstance(args, str) else json.dumps(args)})
    return message.get("content") or "", calls, None
