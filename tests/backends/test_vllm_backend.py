"""The vLLM offline engine's early end of a chat reply (Request.end_after), against a scripted engine with vLLM's
documented interface (`LLM.chat`, `LLM.generate` on `prompt_token_ids`, `LLM.get_tokenizer`, stop strings): vllm
itself cannot run on these CPU machines, so this checks the loop, not vLLM."""

import sys
import types
from dataclasses import dataclass, field

import pytest

from pytest_agentbench.backends.base import Request
from pytest_agentbench.extract import code_block_rule


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    stop: list | None = None


@dataclass
class Choice:
    text: str
    token_ids: list
    finish_reason: str
    stop_reason: object = None


@dataclass
class Output:
    prompt_token_ids: list
    outputs: list = field(default_factory=list)


class Tokenizer:
    """One token per piece of the scripted reply; ids index the pieces."""

    def __init__(self, pieces):
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.pieces[i] for i in ids)


class Engine:
    """Greedy 'model' that always continues the scripted reply from where the token ids say it is; stop strings as vLLM
    applies them (the new text holds one: the request stops, the token that completed it included)."""

    PROMPT = [900, 901, 902]

    def __init__(self, pieces):
        self.tokenizer = Tokenizer(pieces)
        self.calls = []

    def get_tokenizer(self):
        return self.tokenizer

    def _run(self, prompt_ids, params):
        done = [i for i in prompt_ids if i < 900]
        ids, text = [], ""
        for i in range(len(done), len(self.tokenizer.pieces)):
            if len(ids) == params.max_tokens:
                return Choice(text, ids, "length")
            ids.append(i)
            text += self.tokenizer.pieces[i]
            for s in params.stop or ():
                if s in text:
                    return Choice(text[: text.index(s)], ids, "stop", s)
        return Choice(text, ids, "stop", None)  # end of turn

    def chat(self, messages, params, use_tqdm=False):
        self.calls.append(("chat", params.stop))
        return [Output(self.PROMPT, [self._run(self.PROMPT, params)])]

    def generate(self, prompts, params, use_tqdm=False):
        ids = prompts[0]["prompt_token_ids"]
        self.calls.append(("generate", len(ids)))
        return [Output(ids, [self._run(ids, params)])]


@pytest.fixture
def backend(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=SamplingParams))
    from pytest_agentbench.backends.vllm import VLLMBackend

    def make(pieces, chat_template=True):
        made = object.__new__(VLLMBackend)
        made.spec = types.SimpleNamespace(chat_template=chat_template)
        made.llm = Engine(pieces)
        return made

    return make


REPLY = ["Here", ":\n", "```", "python", "\n", "def f", "(x):\n", "    return x\n", "```\n", "\nProse", " after", "."]


def test_the_reply_ends_after_the_closing_fence_from_the_exact_tokens(backend):
    b = backend(REPLY)
    done = b.generate(
        Request(messages=[{"role": "user", "content": "f?"}], max_new_tokens=50, end_after=code_block_rule("f"))
    )
    assert done.text == "".join(REPLY[:9]).rstrip("\n") and done.finish_reason == "stop"
    assert done.completion_tokens == 9 and done.prompt_tokens == 3
    # stopped at the opening fence (inside the token "```"), continued from the token ids, stopped at the closing one
    assert b.llm.calls == [("chat", ["```"]), ("generate", 3 + 3)]


def test_a_reply_without_a_complete_block_runs_to_its_end_or_its_limit(backend):
    no_block = ["Just", " prose", " with", " `x`", "."]
    done = backend(no_block).generate(Request(messages=[], max_new_tokens=50, end_after=code_block_rule("f")))
    assert (done.text, done.finish_reason, done.completion_tokens) == ("".join(no_block), "stop", 5)
    cut = backend(REPLY).generate(Request(messages=[], max_new_tokens=6, end_after=code_block_rule("f")))
    assert (cut.text, cut.finish_reason, cut.completion_tokens) == ("".join(REPLY[:6]), "length", 6)
    other = backend(REPLY).generate(Request(messages=[], max_new_tokens=50, end_after=code_block_rule("g")))
    assert other.text == "".join(REPLY) and other.completion_tokens == len(REPLY)
