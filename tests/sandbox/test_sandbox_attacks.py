"""Adversarial suite: model-written code trying to get out, run against every sandbox.

Each attack is bounded by a 2 s limit and must be contained (the program checks its own failure to get
out, or the host checks afterwards), leave no process behind, and end: a hang guard (`hang_guard`) generous enough
for a loaded machine. How far past its limit a run ends is measured in benchmarks/perf/bench_sandbox_timeouts.py,
not asserted here.
"""

import os
import socket
import subprocess
import textwrap
import threading
import time
import uuid

import pytest

from conftest import docker_ready, read_report
from pytest_agentbench.sandbox import SandboxLimits, make_sandbox

LIMIT = 2.0


def hang_guard(limit: float) -> float:
    """Wall time a run limited to `limit` s must end in: catches a run that waits for a child (300 s here) or never
    ends, and never a busy machine (a 15 s run took 7.07 s against the old guard of 7.0 s under load)."""
    return 4 * limit + 20.0


KINDS = ["process", pytest.param("docker", marks=pytest.mark.skipif(bool(docker_ready()), reason=str(docker_ready())))]


@pytest.fixture(params=KINDS)
def box(request):
    sandbox = make_sandbox(request.param, SandboxLimits(timeout=LIMIT, memory_mb=512, output_bytes=1 << 20))
    yield sandbox
    sandbox.close()


def pids_with(fragment: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def real_uid(pid: str) -> int | None:
    """From /proc/PID/status: a non-dumpable process's /proc/PID is shown as root's, whatever its uid."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def pids_of_uid(uid: int) -> list[int]:
    """The sandbox uid's processes, but for its warm process server (runner.serve), which outlives runs."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if real_uid(pid) == uid and b"\nserve()\n" not in open(f"/proc/{pid}/cmdline", "rb").read():
                found.append(int(pid))
        except OSError:
            continue
    return found


def attack(box, source: str, timeout: float = LIMIT):
    """Runs allowed to fork (as agent scenarios' commands are): the harder case to contain."""
    start = time.perf_counter()
    run = box.run_python(textwrap.dedent(source), timeout=timeout, fork=True)
    elapsed = time.perf_counter() - start
    assert elapsed < hang_guard(timeout), f"took {elapsed:.1f}s"
    return run


def assert_no_leftovers(box, marker: str | None = None):
    """Nothing of the run survives it: no process of the sandbox's uid, none carrying the marker."""
    deadline = time.time() + 2.0
    while time.time() < deadline:
        left = (pids_with(marker) if marker else []) + (pids_of_uid(box.uid) if hasattr(box, "uid") else [])
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes left behind: {left}")


def test_fork_bomb_is_contained_and_does_not_starve_the_next_run(box):
    run = attack(
        box,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """,
    )
    assert run.verdict[0] in ("timeout", "error")
    assert_no_leftovers(box)
    assert box.run_python("print('next')\n", timeout=LIMIT, fork=True).verdict == ("passed", "")


def test_4gb_allocation_fails(box):
    run = attack(box, "x = bytearray(4 << 30)\n")
    assert run.verdict[0] == "error" and (
        "MemoryError" in run.verdict[1] or "signal 9" in run.verdict[1] or "exit status 137" in run.verdict[1]
    )


def test_infinite_loop_with_a_child(box):
    marker = f"agentbench-child-{uuid.uuid4().hex[:8]}"
    run = attack(
        box,
        f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.01)", "{marker}"])
        while True:
            pass
    """,
    )
    assert run.verdict[0] == "timeout"
    assert_no_leftovers(box, marker)


def test_loop_ignoring_sigterm(box):
    run = attack(
        box,
        """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            pass
    """,
    )
    assert run.verdict[0] == "timeout"
    assert_no_leftovers(box)


def test_1gb_to_stdout_is_truncated_and_bounded(box):
    run = attack(
        box,
        """
        import sys
        chunk = "x" * (1 << 20)
        for _ in range(1024):
            sys.stdout.write(chunk)
    """,
        timeout=LIMIT,
    )
    assert run.truncated
    assert len(run.stdout) <= 1 << 20


@pytest.mark.parametrize("where", ["task dir", "/tmp", "/dev/shm"])
def test_disk_fill_is_capped(box, where):
    path = {"task dir": "fill.bin", "/tmp": "/tmp/fill.bin", "/dev/shm": "/dev/shm/fill.bin"}[where]
    run = attack(
        box,
        f"""
        import errno
        written = 0
        try:
            with open("{path}", "wb") as f:
                while written < (2 << 30):
                    f.write(b"x" * (1 << 20))
                    f.flush()
                    written += 1 << 20
        except OSError as exc:
            assert exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT), exc
            print("stopped at", written >> 20, "MiB")
        else:
            raise SystemExit("wrote 2 GiB")
    """,
        timeout=10.0,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]


def test_loopback_server_on_the_host_is_unreachable(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def serve():
        deadline = time.time() + LIMIT + 2
        while time.time() < deadline:
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=serve)
    thread.start()
    run = attack(
        box,
        f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
            raise SystemExit("CONNECTED")
        except OSError:
            pass
    """,
    )
    thread.join()
    server.close()
    assert run.verdict == ("passed", "") and accepted == []


def test_no_route_to_any_public_address_and_no_dns(box):
    # Checked without sending traffic anywhere: no interface but loopback, no default route, no resolver.
    run = attack(
        box,
        """
        import os, socket
        ifaces = os.listdir("/sys/class/net") if os.path.isdir("/sys/class/net") else ["lo"]
        assert set(ifaces) <= {"lo"}, ifaces
        routes = open("/proc/net/route").read().splitlines()[1:]
        assert routes == [], routes
        try:
            socket.getaddrinfo("example.com", 80)
            raise SystemExit("DNS RESOLVED")
        except OSError:
            pass
    """,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]


def test_writes_outside_the_workspace_fail(box, tmp_path):
    target = f"/etc/agentbench-pwned-{uuid.uuid4().hex[:6]}"
    home = os.path.expanduser("~")
    run = attack(
        box,
        f"""
        import os
        for path in ["{target}", "{home}/agentbench-pwned", "../agentbench-pwned", "/usr/agentbench-pwned"]:
            try:
                open(path, "w").write("x")
                raise SystemExit("WROTE " + path)
            except OSError:
                pass
        os.symlink("{tmp_path}/outside", "link")
        try:
            open("link", "w").write("x")
        except OSError:
            pass
    """,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]
    assert not os.path.exists(target) and not os.path.exists(f"{home}/agentbench-pwned")
    assert not (tmp_path / "outside").exists()
    with pytest.raises((PermissionError, FileNotFoundError)):  # the host never follows the link out
        box.read_file("link")


def test_host_secrets_are_unreadable(box, monkeypatch):
    secret = f"hf_{uuid.uuid4().hex}"
    monkeypatch.setenv("HF_TOKEN", secret)
    home_secret = os.path.expanduser("~/.agentbench-test-secret")
    with open(home_secret, "w") as f:
        f.write(secret)
    try:
        run = attack(
            box,
            f"""
            import os
            assert "{secret}" not in repr(dict(os.environ))
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    assert b"{secret}" not in open(f"/proc/{{pid}}/environ", "rb").read()
                except OSError:
                    pass
            for path in ["/etc/shadow", "{home_secret}"]:
                try:
                    data = open(path).read()
                    raise SystemExit("READ " + path)
                except OSError:
                    pass
            try:
                listing = os.listdir("/root")
                assert ".bashrc" not in listing and ".agentbench-test-secret" not in listing, listing
            except OSError:
                pass
        """,
        )
        assert run.verdict == ("passed", ""), run.stderr[-500:]
    finally:
        os.unlink(home_secret)


def test_posix_system_cannot_touch_host_files(box, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "keep.txt").write_text("keep")
    attack(
        box,
        f"""
        import posix
        posix.system("rm -rf {scratch}/* ; echo pwned > {scratch}/pwned.txt")
    """,
    )
    assert (scratch / "keep.txt").exists() and not (scratch / "pwned.txt").exists()


def test_setsid_double_fork_daemon_is_gone_afterwards(box):
    marker = f"agentbench-daemon-{uuid.uuid4().hex[:8]}"
    run = attack(
        box,
        f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"])
            os._exit(0)
        os.wait()
    """,
    )
    assert run.verdict == ("passed", "")
    box.close()  # a container's daemons live until the container goes; the process sandbox's end with the run
    assert_no_leftovers(box, marker)


def test_cannot_kill_a_host_process(box):
    victim = subprocess.Popen(["sleep", "60"])
    try:
        run = attack(
            box,
            f"""
            import os, signal
            try:
                os.kill({victim.pid}, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(-1, signal.SIGKILL)   # everything this uid may signal
            except OSError:
                pass
        """,
        )
        time.sleep(0.2)
        assert victim.poll() is None, "host process was killed"
        assert run.verdict[0] in ("passed", "error")  # killing itself with kill(-1) is its own business
    finally:
        victim.kill()
        victim.wait()


def test_cannot_create_user_or_net_namespaces(box):
    run = attack(
        box,
        """
        import ctypes, subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        for flag in (0x10000000, 0x40000000):        # CLONE_NEWUSER, CLONE_NEWNET
            assert libc.unshare(flag) != 0, hex(flag)
        for argv in (["unshare", "-U", "true"], ["unshare", "-n", "true"], ["unshare", "-Ur", "true"]):
            try:
                assert subprocess.run(argv, capture_output=True).returncode != 0, argv
            except OSError:
                pass
    """,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]


def test_run_under_attack_keeps_going_and_reports(pytester):
    """Malicious completions through the whole pytest pipeline: the run finishes and counts them right."""
    import json

    rows = [
        (
            "HumanEval/0",
            "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
        ),
        (
            "HumanEval/1",
            "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    os.kill(-1, signal.SIGKILL)\n",
        ),
        ("HumanEval/2", "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)\n"),
        (
            "HumanEval/3",
            "    import signal\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        pass\n",
        ),
    ]
    replay = pytester.path / "evil.jsonl"
    replay.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    pytester.makepyfile(
        test_he="""
import pytest
from pytest_agentbench.suites.humaneval import HumanEval

@pytest.mark.agentbench(HumanEval())
def test_humaneval(outcome):
    outcome.check()
"""
    )
    start = time.perf_counter()
    result = pytester.runpytest_subprocess(
        "--model",
        f"replay:{replay}",
        "--task-timeout",
        "2",
        "-k",
        " or ".join(t for t, _ in rows),
        "-p",
        "no:cacheprovider",
    )
    assert time.perf_counter() - start < 60
    assert result.ret == 1
    assert result.parseoutcomes()["failed"] == 4
    (res,) = read_report(pytester)["results"]
    assert res["samples"] == 4 and res["outcomes"]["passed"] == 0 and res["outcomes"]["infra"] == 0
    assert res["outcomes"]["timeout"] >= 2


# -- gaps closed: trees, totals, uids, what is bound, socket families -------------------------------------
DEEP_TREE = """
    import os
    os.chdir({where!r})
    for _ in range(3000):
        os.mkdir("d")
        os.chdir("d")
    open("leaf", "w").write("x" * 1000)
    print("deep", len(os.getcwd()) if len("d/" * 3000) < 4096 else "beyond PATH_MAX")
"""


@pytest.mark.parametrize("where", ["workspace", "/tmp"])
def test_a_3000_level_tree_is_removed_and_the_next_test_starts_clean(box, where):
    target = box.workdir if where == "workspace" else "/tmp"
    run = attack(box, DEEP_TREE.format(where=target), timeout=20.0)
    assert run.verdict == ("passed", ""), run.stderr[-300:]
    kind = box.kind
    box.close()  # teardown must not raise (a recursive rmtree hits RecursionError here)
    fresh = make_sandbox(kind, SandboxLimits(timeout=LIMIT))
    try:
        check = fresh.run_python(f"import os\nassert os.listdir({target!r}) == [], os.listdir({target!r})\n")
        assert check.verdict == ("passed", ""), check.stderr[-300:]
    finally:
        fresh.close()


def test_the_workspace_total_is_bounded_not_only_each_file(box):
    run = attack(
        box,
        """
        import errno, os
        written = 0
        try:
            for i in range(12):                      # 12 files of 32 MiB, each under the per-file cap
                with open("f%d.bin" % i, "wb") as f:
                    for _ in range(32):
                        f.write(b"x" * (1 << 20))
                        written += 1
        except OSError as exc:
            assert exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG), exc
            print("stopped at", written, "MiB")
        else:
            raise SystemExit("wrote %d MiB" % written)
    """,
        timeout=20.0,
    )
    assert run.verdict == ("passed", ""), run.stderr[-300:]
    assert int(run.stdout.split()[-2]) <= SandboxLimits().disk_mb


def test_a_run_total_memory_is_bounded_not_only_each_process(box):
    """Five processes of 300 MB each under a 512 MB limit: the run's total is what is bounded."""
    run = attack(
        box,
        """
        import os, time
        kids = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                block = bytearray(300 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(5)
                os._exit(0)
            kids.append(pid)
        alive = 0
        for pid in kids:
            _, status = os.waitpid(pid, 0)
            alive += status == 0
        assert alive < 5, "all five held 300 MB at once"
    """,
        timeout=15.0,
    )
    assert run.verdict[0] in ("passed", "error"), run.stderr[-300:]
    server = getattr(box, "server", None)
    if server is not None and server.cgroup is not None:
        assert server.cgroup.peak_bytes() <= (512 << 20) + (32 << 20)


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are claimed only when running as root")
def test_sandbox_uids_are_unique_across_sessions(box):
    if box.kind != "process":
        pytest.skip("the docker sandbox's uid is per container")
    other = subprocess.run(
        [
            "python",
            "-c",
            "from pytest_agentbench.sandbox import make_sandbox, SandboxLimits\n"
            "box = make_sandbox('process', SandboxLimits())\nprint(box.uid)\nbox.close()",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTEST_XDIST_WORKER": "gw0"},
    )
    assert int(other.stdout.strip()) != box.uid


@pytest.mark.skipif(os.geteuid() != 0, reason="RLIMIT_NPROC is per uid only when running as root")
def test_a_fork_bomb_in_another_session_does_not_starve_this_one(box):
    if box.kind != "process":
        pytest.skip("the docker sandbox's pids limit is per container")
    bomb = subprocess.Popen(
        [
            "python",
            "-c",
            "from pytest_agentbench.sandbox import make_sandbox, SandboxLimits\n"
            "box = make_sandbox('process', SandboxLimits(timeout=6))\n"
            "print('go', flush=True)\n"
            "box.run_python('import os\\nwhile True:\\n    try:\\n        os.fork()\\n"
            "    except OSError:\\n        pass\\n', fork=True)\nbox.close()",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTEST_XDIST_WORKER": "gw0"},
    )
    try:
        assert bomb.stdout.readline().strip() == "go"
        time.sleep(1.0)
        run = box.run_python("import subprocess\nsubprocess.run(['true'], check=True)\n", timeout=LIMIT, fork=True)
        assert run.verdict == ("passed", ""), run.stderr[-300:]
    finally:
        bomb.kill()
        bomb.wait()


def test_a_stdlib_run_sees_only_what_it_needs(box):
    run = attack(
        box,
        """
        import os, site, sys, sysconfig
        try:
            import yaml
            raise SystemExit("site-packages visible: yaml imported from " + yaml.__file__)
        except ImportError:
            pass
        purelib = sysconfig.get_paths()["purelib"]
        assert not os.path.isdir(purelib) or os.listdir(purelib) == [], os.listdir(purelib)[:5]
        for line in open("/proc/self/mountinfo"):
            assert "pytest_agentbench" not in line and "/sandbox/" not in line, line
    """,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]


def test_process_sandbox_mounts_show_no_host_path_it_cannot_see(box):
    """Every bind is a host path at its own path: /proc/self/mountinfo reveals nothing new."""
    if box.kind != "process":
        pytest.skip("Docker's own binds (hosts, resolv.conf) come from its data root")
    run = attack(
        box,
        """
        import os
        for line in open("/proc/self/mountinfo"):
            fields = line.split()
            root, point, fstype = fields[3], fields[4], fields[fields.index("-") + 1]
            if fstype in ("tmpfs", "proc", "devtmpfs", "devpts", "mqueue", "sysfs"):
                continue  # made inside the sandbox: no host path
            assert root in ("/", point) or os.path.exists(root) or point.startswith("/dev/"), line
    """,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]


def test_no_socket_family_but_unix(box):
    run = attack(
        box,
        """
        import socket
        for family in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_VSOCK", "AF_ALG", "AF_TIPC"):
            if not hasattr(socket, family):
                continue
            try:
                socket.socket(getattr(socket, family), socket.SOCK_DGRAM if family != "AF_ALG" else socket.SOCK_SEQPACKET).close()
                raise SystemExit("created a socket of family " + family)
            except OSError:
                pass
        socket.socketpair(socket.AF_UNIX).__class__   # AF_UNIX still works
    """,
    )
    assert run.verdict == ("passed", ""), run.stderr[-500:]
