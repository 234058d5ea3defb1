"""The docker sandbox against engines on other machines, played here by Docker engines that cannot see this host's
files: each runs in its own mount namespace where the checkout, /tmp, /root and the local engine's state are empty
tmpfs mounts, with its own data root, listening on TCP on loopback; the sandbox image reaches it the way it reaches
a remote engine (`docker save | docker load`). Grading there needs nothing of the local filesystem, `--docker-host`
spreads xdist workers over engines, and the worker of an engine that dies moves to a live one (the sample it was
running there is infra, one line)."""

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import docker_ready, he_project, read_records
from pytest_agentbench.sandbox.docker import DEFAULT_IMAGE
from pytest_agentbench.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
# the checkout's own folder (and the one beside it holding ../shared) wherever the checkout lives (CI clones it
# under /check/work), then the usual homes of files and the local engine's state
HIDDEN = (
    str(ROOT.parent if ROOT.parent != Path("/") else ROOT),
    "/work", "/root", "/home", "/tmp", "/srv", "/opt", "/var/lib/docker", "/run/docker", "/run/containerd",
)  # fmt: skip
TASKS = [f"HumanEval/{n}" for n in range(24)]


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "starting a Docker engine in its own mount namespace needs root"
    missing = [tool for tool in ("unshare", "dockerd", "docker") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install docker.io util-linux)"
    return docker_ready()


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(why_not()), reason=str(why_not()))]


class PrivateEngine:
    """dockerd in a new mount namespace: the host's files out of sight, its data root a folder of its own (mounted
    into the namespace before /tmp is hidden), its API on tcp://127.0.0.1:PORT, the sandbox image loaded into it."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True)
        self.url = f"tcp://127.0.0.1:{free_port()}"
        hide = " ".join(HIDDEN)
        script = f"""set -e
mount -t tmpfs tmpfs /mnt
mkdir /mnt/engine
mount --bind {folder} /mnt/engine
for d in {hide}; do if [ -d $d ]; then mount -t tmpfs -o size=4m tmpfs $d; fi; done
exec dockerd --data-root /mnt/engine/data --exec-root /mnt/engine/exec --pidfile /mnt/engine/dockerd.pid \\
  -H {self.url} --bridge none --iptables=false --ip-masq=false
"""
        self.log = open(folder.with_suffix(".log"), "w")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while self.docker("version", check=False).returncode != 0:
            assert self.proc.poll() is None and time.monotonic() < deadline, folder.with_suffix(".log").read_text()
            time.sleep(0.5)
        saved = subprocess.Popen(["docker", "save", DEFAULT_IMAGE], stdout=subprocess.PIPE)
        loaded = subprocess.run(
            ["docker", "-H", self.url, "load"], stdin=saved.stdout, capture_output=True, timeout=300
        )
        assert saved.wait() == 0 and loaded.returncode == 0, loaded.stderr

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "-H", self.url, *args], capture_output=True, text=True, check=check, timeout=120
        )

    def created(self, since: float) -> int:
        """Containers created on this engine since `since` (its event log)."""
        out = self.docker(
            "events", "--since", f"{since:.0f}", "--until", f"{time.time():.0f}", "--filter", "event=create"
        ).stdout
        return len(out.splitlines())

    def stop(self) -> None:
        """dockerd stops (SIGTERM: it takes its containers down); whatever is left of its namespace is killed."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    started = PrivateEngine(tmp_path_factory.mktemp("engines") / "private")
    yield started
    started.stop()
    shutil.rmtree(started.folder, ignore_errors=True)


def test_the_sandbox_grades_on_an_engine_that_cannot_see_this_hosts_files(engine, pytester, monkeypatch):
    # the engine's view of the checkout and of the test's own folder: empty
    for path in (ROOT, pytester.path):
        seen = engine.docker("run", "--rm", "-v", f"{path}:/probe", DEFAULT_IMAGE, "ls", "-A", "/probe").stdout
        assert seen == "", (path, seen)
    he_project(pytester)
    since = time.time() - 1
    monkeypatch.setenv("DOCKER_HOST", engine.url)  # the sandbox's usual way to a remote engine
    result = pytester.runpytest_subprocess(
        "--model", "reference", "--sandbox", "docker", "-k", "HumanEval/0 or HumanEval/1 or HumanEval/2",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()[-3000:]
    records = read_records(pytester)
    assert len(records) == 3 and all(r["status"] == "passed" for r in records)
    # wrong code fails there as it does here
    pytester.path.joinpath("wrong.jsonl").write_text('{"task_id": "HumanEval/0", "completion": "    return None\\n"}\n')
    wrong = pytester.runpytest_subprocess(
        "--model", "replay:wrong.jsonl", "--sandbox", "docker", "-k", "HumanEval/0", "-p", "no:cacheprovider"
    )
    assert wrong.ret == 1 and read_records(pytester)[0]["status"] == "failed", wrong.stdout.str()[-3000:]
    # grading happened on that engine (the local one is shared with other runs here: its events prove nothing)
    assert engine.created(since) >= 4


def test_docker_host_spreads_workers_over_engines_and_a_worker_moves_off_a_dead_engine(engine, pytester):
    he_project(pytester)
    since = time.time() - 1
    stopped = threading.Event()
    made_there: list[int] = []  # containers the private engine created before it was stopped

    def stop_after_first_containers():
        while not stopped.is_set():
            created = engine.created(since)
            if created >= 3:
                made_there.append(created)
                engine.stop()
                stopped.set()
                return
            time.sleep(0.3)

    threading.Thread(target=stop_after_first_containers, daemon=True).start()
    local = "unix:///var/run/docker.sock"
    result = pytester.runpytest_subprocess(
        "--model", "reference", "--sandbox", "docker", "--docker-host", f"{local},{engine.url}",
        "-n", "2", "-k", " or ".join(TASKS), "-p", "no:cacheprovider",
    )  # fmt: skip
    stopped.set()
    out = result.stdout.str()
    assert result.ret in (0, 1), out[-3000:]
    assert made_there, "the private engine was stopped during the run"
    records = {r["task"]: r for r in read_records(pytester)}
    assert sorted(records) == sorted(TASKS)  # every item has its record: the run went on
    statuses = [r["status"] for r in records.values()]
    # a reference solution is never failed by an engine that went away: each sample passed, or is infra when it
    # was running there as the engine stopped (gw1 runs one sample at a time: at most one)
    assert set(statuses) <= {"passed", "infra"} and statuses.count("infra") <= 1, statuses
    for rec in records.values():
        if rec["status"] == "infra":
            assert rec["worker"] == "gw1" and "\n" not in rec["reason"] and engine.url in rec["reason"], rec
    # gw0 used the local engine, gw1 the private one until it stopped, then the local one: it passed more items than
    # the private engine ever made containers (one per item)
    passed = [r["worker"] for r in records.values() if r["status"] == "passed"]
    assert {"gw0", "gw1"} <= set(passed)
    assert passed.count("gw1") > made_there[0], (passed.count("gw1"), made_there)
    moved = [line for line in out.splitlines() if f"this worker goes on with the Docker engine at {local}" in line]
    assert len(moved) == 1 and engine.url in moved[0], out[-3000:]
