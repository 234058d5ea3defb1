"""The sandbox interface and the verdicts it gives (run against every available sandbox)."""

import os
import secrets
import time

import pytest

from pytest_agentbench.sandbox import SandboxLimits, make_sandbox


def processes_running(fragment: str) -> list[int]:
    """pids whose command line contains `fragment` (read from /proc: no shell that would match itself)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fragment in cmdline and int(pid) != os.getpid():
            found.append(int(pid))
    return found


@pytest.fixture(params=["process", "unconfined"])
def box(request):
    sandbox = make_sandbox(request.param, SandboxLimits(timeout=3.0, output_bytes=4096))
    yield sandbox
    sandbox.close()


@pytest.mark.parametrize(
    "source, status, reason",
    [
        ("x = 1\n", "passed", ""),
        ("assert 1 == 2, 'one is not two'\n", "failed", "AssertionError: one is not two"),
        ("raise KeyError('k')\n", "error", "KeyError: 'k'"),
        ("import sys\nsys.exit(0)\n", "passed", ""),  # a plain program: its exit status decides
        ("import sys\nsys.exit(3)\n", "error", "exit status 3"),
        ("import os\nos._exit(0)\n", "passed", ""),
        ("def f(:\n", "error", "SyntaxError: invalid syntax"),
        ("while True:\n    pass\n", "timeout", "killed after the time limit"),
    ],
)
def test_plain_program_verdicts(box, source, status, reason):
    assert box.run_python(source, timeout=1.0).verdict == (status, reason)


def test_files_round_trip_and_stay_inside(box):
    box.write_file("sub/a.txt", "hello")
    assert box.read_file("sub/a.txt") == "hello"
    assert box.list_dir("sub") == [{"name": "a.txt", "type": "file", "size": 5}]
    with pytest.raises(PermissionError):
        box.write_file("../escape.txt", "x")
    with pytest.raises(PermissionError):
        box.write_file("/tmp/abs.txt", "x")
    box.exec(["ln", "-s", "/etc", "etc-link"])
    with pytest.raises(FileNotFoundError, match="leads outside the workspace"):
        box.read_file("etc-link/passwd")


def test_runs_leave_no_runner_files_in_the_workspace(box):
    from pytest_agentbench.sandbox import Candidate, HiddenTests

    box.run_python("print(1)\n")
    run = box.run_tests(
        Candidate("def f():\n    return 1\n", "f"),
        HiddenTests(test="def check(c):\n    assert c() == 1\n", call="check(f)"),
    )
    assert run.passed and box.list_dir(".") == []


def test_output_is_capped_and_the_tail_kept(box):
    run = box.run_python("import sys\nfor i in range(200000):\n    print(i)\n")
    assert run.truncated and len(run.stdout) <= 4096
    assert run.verdict[0] == "passed" and "199999" in run.stdout


def test_timeout_kills_children_and_returns_promptly(box):
    start = time.perf_counter()
    # a duration no other test uses: parallel workers run the same test against other sandboxes
    child = f"300.{secrets.randbelow(10**6):06d}"
    run = box.run_python(
        f"import subprocess, time\nsubprocess.Popen(['sleep', '{child}'])\ntime.sleep(300)\n", timeout=1.0, fork=True
    )
    assert run.timed_out and time.perf_counter() - start < 30.0  # a hang guard (the child sleeps 300 s)
    assert processes_running(f"sleep {child}") == []


def test_a_child_holding_the_pipe_does_not_hold_the_run(box):
    start = time.perf_counter()
    run = box.run_python("import subprocess\nsubprocess.Popen(['sleep', '30'])\n", timeout=3.0, fork=True)
    assert run.verdict[0] == "passed" and time.perf_counter() - start < 20.0  # a hang guard (the child sleeps 30 s)


def test_host_secrets_are_not_in_the_environment(box, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    run = box.run_python("import os\nassert 'HF_TOKEN' not in os.environ, sorted(os.environ)\n")
    assert run.verdict == ("passed", "")


def test_site_packages_are_available_read_only():
    box = make_sandbox("process", SandboxLimits(timeout=10.0), site_packages=True)
    try:
        run = box.run_python(
            "import os, yaml\n"
            "assert yaml.safe_load('a: 1') == {'a': 1}\n"
            "target = os.path.join(os.path.dirname(yaml.__file__), 'pwned.py')\n"
            "try:\n"
            "    open(target, 'w').write('x')\n"
            "    raise SystemExit('WROTE')\n"
            "except OSError:\n"
            "    pass\n"
        )
        assert run.verdict == ("passed", ""), run.stderr[-500:]
    finally:
        box.close()


def test_time_limits_are_calibrated_against_the_reference(tmp_path, monkeypatch):
    from pytest_agentbench import timeouts

    monkeypatch.setattr(timeouts, "CACHE_DIR", tmp_path)
    box = make_sandbox("process", SandboxLimits(timeout=5.0))

    def measure(source):
        def run(limit):
            result = box.run_python(source, timeout=limit)
            return result.verdict[0] == "passed", result.duration_s

        return run

    try:
        kwargs = dict(suite="t", dataset_sha="abc", sandbox_kind="process")
        limit = timeouts.time_limit("t/1", measure("import time\ntime.sleep(0.4)\n"), 0.5, **kwargs)
        assert 4 * 0.4 <= limit < 4 * 1.5  # 4x the measured reference, above the 0.5 s floor
        assert timeouts.time_limit("t/1", measure("raise SystemExit(1)"), 0.5, **kwargs) == pytest.approx(
            limit, abs=1e-3
        )  # cached: not re-run
        assert timeouts.time_limit("t/2", measure("x = 1\n"), 0.5, **kwargs) == 0.5  # fast reference: the floor
        assert timeouts.time_limit("t/3", None, 0.5, **kwargs) == 0.5  # no reference: the floor
        assert timeouts.time_limit("t/4", measure("raise SystemExit(1)"), 0.5, **kwargs) == 0.5  # failing reference
    finally:
        box.close()


def test_unconfined_sandbox_warns(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--sandbox", "unconfined", "--model", "reference")
    result.stdout.fnmatch_lines(["*--sandbox unconfined: model-written code runs with your privileges*"])


def test_wipe_empties_only_the_sandboxes_own_folders(box):
    """Unconfined, /tmp and /dev/shm are the host's: emptying the sandbox must never touch them."""
    import tempfile
    import uuid
    from pathlib import Path

    sentinels = [
        Path(tempfile.gettempdir()) / f"agentbench-sentinel-{uuid.uuid4().hex}",
        Path("/dev/shm") / f"agentbench-sentinel-{uuid.uuid4().hex}",
    ]
    for path in sentinels:
        path.write_text("the host's")
    try:
        box.write_file("a/b.txt", "x")
        box.run_python("import os, tempfile\nopen(os.path.join(tempfile.gettempdir(), 'mine'), 'w').write('x')\n")
        box.wipe()
        assert box.list_dir(".") == []
        assert (
            box.run_python("import os, tempfile\nassert os.listdir(tempfile.gettempdir()) == []\n").verdict[0]
            == "passed"
        )
        assert all(path.read_text() == "the host's" for path in sentinels)
    finally:
        for path in sentinels:
            path.unlink(missing_ok=True)


def test_a_workspace_no_run_touched_is_not_emptied_again(box, monkeypatch):
    """Confined, a sandbox is empty when opened and after a wipe until something runs in it: wiping it then asks the
    server nothing (a round trip less per graded task). Unconfined, every wipe goes to the server."""
    from pytest_agentbench.sandbox import process

    asked = []
    real = process._Server.wipe
    monkeypatch.setattr(process._Server, "wipe", lambda server, **kw: asked.append(1) or real(server, **kw))
    box.wipe()
    box.wipe()
    assert len(asked) == (2 if box.kind == "unconfined" else 0)
    asked.clear()
    box.write_file("left.txt", "x")  # a run (the fs mode): the next wipe must reach the server
    box.wipe()
    box.wipe()
    assert len(asked) == (2 if box.kind == "unconfined" else 1)
    assert box.list_dir(".") == []  # emptied, although the second wipe asked nothing


@pytest.mark.parametrize("kind", ["process", "unconfined"])
def test_a_released_workspace_is_emptied_while_the_host_goes_on(kind):
    """Closing a sandbox asks its server to empty the workspace without waiting for the answer; the next sandbox on
    that server reads it before its first request, and finds the workspace empty."""

    first = make_sandbox(kind, SandboxLimits(timeout=3.0))
    first.write_file("left.txt", "from the last test")
    server = first.server
    first.close()
    assert server.wiping and not server.busy  # asked, answer not read yet
    second = make_sandbox(kind, SandboxLimits(timeout=3.0))
    try:
        assert second.server is server
        assert second.list_dir(".") == [] and not server.wiping
        assert second.run_python("print('ok')\n").stdout == "ok\n"
    finally:
        second.close()


def test_the_confined_user_has_a_name_so_listings_do_not_change_run_to_run():
    """The uid is claimed per sandbox; what the agent reads (ls -l, whoami) must not carry that number."""
    outputs = []
    for _ in range(2):
        box = make_sandbox("process", SandboxLimits(timeout=10.0))
        try:
            box.write_file("a.txt", "x")
            run = box.exec(
                [
                    "sh",
                    "-c",
                    "ls -l a.txt | cut -d' ' -f3,4; whoami; python3 -c 'import getpass; print(getpass.getuser())'",
                ]
            )
            assert run.exit_code == 0, run.stderr
            outputs.append(run.stdout)
        finally:
            box.close()
    assert outputs[0] == outputs[1] == "agent agent\nagent\nagent\n"
