"""Watching a run (live.py): the live bar in a real pseudo-terminal (rendered by a terminal emulator, pyte), a plain
line every N seconds when output is not a terminal, quiet under -q, xdist; set-up steps and serving fallbacks said at
once; the end table and the failure summary; pytest's own output left as it was."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_report

SLOW_PROJECT = {
    "test_slow.py": '''
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task
from pytest_agentbench.backends import Request, SampleRef

class Slow(Suite):
    """12 tasks: n % 3 == 0 passes, 1 errs, 2 fails."""
    name = "slow"
    def load(self):
        return [Task(id=f"slow/{n}", prompt=str(n), reference=str(n)) for n in range(12)]
    def evaluate(self, task, backend, sandbox, params, sample):
        c = backend.generate(Request(messages=[{"role": "user", "content": task.prompt}], seed=params.seed,
                                     sample=SampleRef(task_id=task.id, index=sample, reference=task.reference)))
        n = int(task.id.split("/")[1])
        status = (Status.PASSED, Status.ERROR, Status.FAILED)[n % 3]
        return Outcome(status, reason="" if n % 3 == 0 else f"ValueError: bad {n}", completion=c.text,
                       prompt_tokens=3, completion_tokens=c.completion_tokens, model_s=c.seconds)

@pytest.mark.agentbench(Slow())
def test_slow(outcome):
    outcome.check()

def test_plain_failure():
    assert 1 == 2
''',
    "conftest.py": """
import os, time
from pytest_agentbench.backends import Backend, Completion

class Sleepy(Backend):
    def generate(self, request):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        return Completion(text="x", seconds=0.25, completion_tokens=20)

def pytest_agentbench_make_backend(spec):
    if spec.backend == "scripted":
        return Sleepy(spec)
""",
    "models.yaml": "models:\n  sleepy: {backend: scripted}\n",
}
PROGRESS_LINE = re.compile(
    r"agentbench: \d+/13 items, \d:\d\d:\d\d elapsed(, ETA \d:\d\d:\d\d)?; sleepy/slow pass@1 "
    r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \(\d+ samples\), 80\.0 tok/s, error \d+(, failed \d+)?, "
    r"infra 0; serving: sleepy scripted$"
)


@pytest.fixture
def slow(pytester, monkeypatch):
    for name, text in SLOW_PROJECT.items():
        pytester.path.joinpath(name).write_text(text)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])
    )
    return pytester


def in_a_terminal(
    cwd: Path, *args: str, cols: int = 120, rows: int = 40, env: dict | None = None, interrupt_on: bytes | None = None
) -> bytes:
    """What `pytest ARGS` writes to a pseudo-terminal of cols x rows, byte for byte (Ctrl-C once it has written
    `interrupt_on`, and a second more)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows), **(env or {})}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    raw, started, seen = b"", time.monotonic(), None
    while time.monotonic() < started + 120:
        if interrupt_on is not None and seen is None and interrupt_on in raw:
            seen = time.monotonic()
        if seen is not None and time.monotonic() > seen + 1:
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: to the whole process group
            interrupt_on, seen = None, None
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            raw += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return raw


def screen_text(raw: bytes, cols: int = 120, rows: int = 40) -> list[str]:
    """The terminal's scrollback and screen after `raw`, as a terminal emulator renders it."""
    pyte = pytest.importorskip("pyte")
    screen = pyte.HistoryScreen(cols, rows, history=100000)
    pyte.ByteStream(screen).feed(raw)
    history = ["".join(line[x].data for x in range(cols)).rstrip() for line in screen.history.top]
    lines = history + [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def frames(raw: bytes, cols: int = 120, rows: int = 40) -> list[list[str]]:
    """The screen as it looked just before each redraw of the bar (rich erases it with CR, erase-line)."""
    cuts = [m.start() for m in re.finditer(rb"\r\x1b\[2K", raw)]
    return [screen_text(raw[:cut], cols, rows) for cut in cuts[:: max(1, len(cuts) // 12)]]


def pytest_part(lines: list[str]) -> list[str]:
    """Everything pytest itself wrote before the agentbench section (timings differ from run to run after it)."""
    end = next(i for i, line in enumerate(lines) if " agentbench " in line and line.startswith("="))
    return lines[:end]


def test_bar_in_a_terminal_shows_the_run_and_leaves_pytests_output_as_it_was(slow):
    pytest.importorskip("pyte")
    plain = screen_text(in_a_terminal(slow.path, "--model", "sleepy", "--agentbench-live", "off"))
    raw = in_a_terminal(slow.path, "--model", "sleepy", env={"SLEEP": "0.25"})
    final = screen_text(raw)
    assert pytest_part(final) == pytest_part(plain)  # not a character of pytest's own output moved or went
    assert "━" not in "\n".join(final)  # the bar is erased at the end
    assert final[-1].startswith("=") and "9 failed, 4 passed" in final[-1]
    shown = ["\n".join(frame) for frame in frames(raw)]
    drawn = [f for f in shown if re.search(r"agentbench +━*.* \d+/13 items, \d:\d\d:\d\d elapsed, ETA", f)]
    assert len(drawn) >= 3, shown[-1]
    assert any(
        re.search(
            r"sleepy/slow +pass@1 \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \(\d+ samples\), 80\.0 tok/s, "
            r"error \d+",
            f,
        )
        for f in drawn
    )
    assert any("serving     sleepy: scripted" in f for f in drawn)
    # while the bar runs, pytest's unfinished progress line stays on the screen above it
    assert any(re.search(r"^test_slow\.py \.FF\.", f, re.M) for f in drawn)


def test_bar_with_xdist_counts_what_the_workers_report(slow):
    pytest.importorskip("pyte")
    raw = in_a_terminal(slow.path, "--model", "sleepy", "-n", "2", env={"SLEEP": "0.3"})
    final = screen_text(raw)
    assert "━" not in "\n".join(final) and "9 failed, 4 passed" in final[-1]
    assert "2 workers [13 items]" in final  # xdist's rewritten status line, whole
    shown = ["\n".join(frame) for frame in frames(raw)]
    assert any(re.search(r"\d+/13 items", f) for f in shown), shown[-1:]


def test_ctrl_c_leaves_no_bar_behind(slow):
    pytest.importorskip("pyte")
    raw = in_a_terminal(slow.path, "--model", "sleepy", env={"SLEEP": "0.5"}, interrupt_on="━".encode())
    final = screen_text(raw)
    text = "\n".join(final)
    assert "━".encode() in raw and "━" not in text  # drawn while it ran, gone after Ctrl-C
    assert "KeyboardInterrupt" in text and "\ntest_slow.py" in text, text
    assert final[-1].startswith("=") and " in " in final[-1]  # pytest's own last line, as after any Ctrl-C


def test_quiet_shows_no_bar(slow):
    raw = in_a_terminal(slow.path, "--model", "sleepy", "-q", env={"SLEEP": "0.1"})
    assert "━".encode() not in raw and b"items," not in raw
    assert "9 failed, 4 passed" in screen_text(raw)[-1]


def _progress(lines: list[str]) -> str:
    """pytest's progress characters between the collection line and the end of the run."""
    start = next(i for i, line in enumerate(lines) if "collected" in line or "workers [" in line)
    end = next(i for i, line in enumerate(lines) if "FAILURES" in line)
    return "".join(
        token
        for line in lines[start + 1 : end]
        if not line.startswith("agentbench:")
        for token in line.split()
        if re.fullmatch(r"[.F]+", token)
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_lines_every_n_seconds_when_output_is_not_a_terminal(slow, monkeypatch, workers):
    monkeypatch.setenv("SLEEP", "0.3")
    result = slow.runpytest_subprocess("--model", "sleepy", "--agentbench-live-every", "0.5", "-n", workers)
    lines = result.outlines
    ours = [line for line in lines if line.startswith("agentbench: ") and "items" in line]
    assert len(ours) >= 3, "\n".join(lines)
    assert all(PROGRESS_LINE.match(line) for line in ours), ours
    done = [int(line.split()[1].split("/")[0]) for line in ours]
    assert done == sorted(done)
    assert len(_progress(lines)) == 13  # every one of pytest's progress characters is there
    assert {k: v for k, v in result.parseoutcomes().items() if k != "warnings"} == {"failed": 9, "passed": 4}


def test_quiet_prints_no_lines(slow, monkeypatch):
    monkeypatch.setenv("SLEEP", "0.3")
    result = slow.runpytest_subprocess("--model", "sleepy", "--agentbench-live-every", "0.5", "-q")
    assert not [line for line in result.outlines if "items," in line]
    assert {k: v for k, v in result.parseoutcomes().items() if k != "warnings"} == {"failed": 9, "passed": 4}


FALLBACK_CONFTEST = '''
import time
import pytest
from pytest_agentbench.steps import step
from pytest_agentbench.plugin.state import STATE

@pytest.fixture(autouse=True)
def _later(request):
    """On the first item: a set-up step of 1.8 s, then the broker notes a fallback, as serving.Broker does when an
    engine that models.yaml names is missing (the live view must say both before the run ends)."""
    controller = request.config.stash[STATE].controller
    if controller is not None and "sleepy" not in controller.broker.notes:
        with step("warming up the sleepy model") as shown:
            time.sleep(1.8)
            shown.result = "warm"
        controller.broker.notes["sleepy"] = {"engine": "llamacpp", "fallback": "in-process transformers",
                                             "reason": "llama-server is not installed"}
        time.sleep(1.0)
    yield
'''


def test_a_fallback_and_a_long_set_up_step_are_said_at_once(slow):
    slow.path.joinpath("conftest_extra.py").write_text(FALLBACK_CONFTEST)
    slow.makeconftest(SLOW_PROJECT["conftest.py"] + "\npytest_plugins = ['conftest_extra']\n")
    result = slow.runpytest_subprocess("--model", "sleepy", "-k", "slow/0 or slow/1 or slow/2")
    lines = result.outlines
    begun = lines.index("agentbench: warming up the sleepy model ...")
    ended = next(
        i
        for i, line in enumerate(lines)
        if re.fullmatch(r"agentbench: warming up the sleepy model: warm, done in [12]\.\d s", line)
    )
    warned = lines.index(
        "agentbench: sleepy: llamacpp cannot serve it here (llama-server is not installed); it runs "
        "in-process transformers"
    )
    finished = next(i for i, line in enumerate(lines) if line.rstrip().endswith("[100%]"))
    assert begun < ended < warned < finished, "\n".join(lines)
    assert sum("llamacpp cannot serve it here" in line for line in lines) == 1


def test_failures_are_summarised_and_pytests_options_still_work(slow):
    result = slow.runpytest("--model", "sleepy")
    out = result.outlines
    failures = out[
        out.index(next(x for x in out if "FAILURES" in x)) : out.index(next(x for x in out if " agentbench " in x))
    ]
    assert any("test_plain_failure" in line for line in failures)  # a plain test keeps its block
    assert not any("test_slow[" in line for line in failures)  # benchmark items: summed up instead
    result.stdout.fnmatch_lines(
        [
            "failures: 8 of 12 scored samples (failed 4, error 4) (left out of pytest's FAILURES block: --tb=short "
            "shows it)",
            "      4  error: ValueError",
            "         slow/1 s0: error: ValueError: bad 1",
            "         slow/4 s0: error: ValueError: bad 4",
            "         ... and 2 more",
            "      4  failed: ValueError",
            "         slow/2 s0: failed: ValueError: bad 2",
            "*short test summary info*",
            "FAILED test_slow.py::test_slow[[]slow/1[]] - Failed: error: ValueError: bad 1",
        ]
    )
    assert {k: v for k, v in result.parseoutcomes().items() if k != "warnings"} == {"failed": 9, "passed": 4}
    shown = slow.runpytest("--model", "sleepy", "--tb=short", "-rN")
    text = shown.stdout.str()
    assert "_ test_slow[slow/1] _" in text and "error: ValueError: bad 1" in text
    assert "short test summary info" not in text and "left out of pytest's FAILURES block" not in text


def test_end_table_has_the_interval_p95_and_model_and_sandbox_time(arith):
    result = arith.runpytest("--model", "half", "--samples", "2")
    (res,) = read_report(arith)["results"]
    err, lat = res["errors"]["pass@1"], res["latency_s"]
    head = next(line for line in result.outlines if line.startswith("model "))
    row = next(line for line in result.outlines if line.startswith("half "))
    assert re.split(r"\s{2,}", head) == [
        "model",
        "suite",
        "tasks",
        "samples",
        "pass@1",
        "95% CI",
        "pass@k",
        "passed",
        "failed",
        "error",
        "infra",
        "wall p50/p95 s",
        "model s",
        "sandbox s",
        "tok/sample",
    ]
    assert re.split(r"\s{2,}", row) == [
        "half",
        "arith",
        "3",
        "6",
        f"{res['pass@1']:.3f} ± {err['se']:.3f}",
        f"[{err['lo']:.3f}, {err['hi']:.3f}]",
        f"@2 {res['pass@k']['2']:.3f}",
        "3",
        "3",
        "0",
        "0",
        f"{lat['wall_s']['p50']:.3f}/{lat['wall_s']['p95']:.3f}",
        f"{lat['model_s']['mean']:.3f}",
        f"{lat['sandbox_s']['mean']:.3f}",
        "1",
    ]


# -- the command line -------------------------------------------------------------------------------------------------
def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest_agentbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


COMMANDS = ("compare", "table", "check-scenario", "html", "merge", "plots")


def test_help_lists_every_command():
    done = cli("--help")
    assert done.returncode == 0 and done.stderr == ""
    listed = re.findall(r"^    ([a-z-]+)", done.stdout, re.M)
    assert listed == list(COMMANDS), done.stdout
    nothing = cli()
    assert nothing.returncode == 2 and "COMMAND" in nothing.stderr
    unknown = cli("frobnicate")
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_answers_its_own_help(command):
    done = cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m pytest_agentbench {command} ")


def test_html_and_plots_redo_a_runs_page_and_plot(arith, tmp_path):
    arith.runpytest("--model", "half", "--samples", "2")
    report = arith.path / ".agentbench" / "report.json"
    page = cli("html", str(report), "-o", str(tmp_path / "page.html"))
    assert page.returncode == 0, page.stderr
    text = (tmp_path / "page.html").read_text()
    assert "<!-- pytest-agentbench report -->" in text and '"task":"arith/10"' in text
    two = cli("html", str(report), str(report), "-o", str(tmp_path / "two.html"))  # several runs, side by side
    assert two.returncode == 0 and (tmp_path / "two.html").is_file()
    plot = cli("plots", str(report), "-o", str(tmp_path / "plot.png"))
    assert plot.returncode == 0 and (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    from_jsonl = cli("plots", str(report.with_suffix(".jsonl")), "-o", str(tmp_path / "two.png"))
    assert from_jsonl.returncode == 0 and (tmp_path / "two.png").is_file()
    (tmp_path / "notes.html").write_text("mine")
    refused = cli("html", str(report), "-o", str(tmp_path / "notes.html"))
    assert refused.returncode == 2 and refused.stderr.startswith("html: refusing to overwrite")
    assert (tmp_path / "notes.html").read_text() == "mine"
    for bad in (tmp_path / "missing.json", tmp_path / "notes.html"):
        done = cli("html", str(bad))
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_dispatch_keeps_each_commands_exit_statuses(tmp_path):
    assert cli("table", str(tmp_path / "nope.jsonl")).returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert cli("compare", str(bad), str(bad)).returncode == 2
    assert cli("check-scenario").returncode == 2  # argparse: a folder is required


def test_console_script_agentbench_is_the_same_command():
    from importlib import import_module

    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    target = project["project"]["scripts"]["agentbench"]
    module, _, name = target.partition(":")
    main = getattr(import_module(module), name)
    assert main is import_module("pytest_agentbench.__main__").main
    assert main(["table", "/nonexistent.jsonl"]) == 2
    installed = Path(sys.executable).with_name("agentbench")
    if installed.exists():  # an install made from this checkout (pip install -e .)
        done = subprocess.run([str(installed), "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "check-scenario" in done.stdout


# -- rootdir -----------------------------------------------------------------------------------------------------------
def test_a_space_separated_path_that_moves_the_rootdir_is_said_at_start(slow):
    out = slow.path.parent / f"{slow.path.name}-out"
    out.mkdir()
    (out / "report.json").write_text("")
    spaced = slow.runpytest("--model", "sleepy", "-k", "slow/0", "--agentbench-json", f"../{out.name}/report.json")
    warning = [line for line in spaced.outlines if "moved pytest's rootdir" in line]
    assert warning and warning[0].startswith(
        f"agentbench: WARNING --agentbench-json ../{out.name}/report.json moved pytest's rootdir to {slow.path.parent}"
    )
    assert warning[0].endswith(f"write --agentbench-json=../{out.name}/report.json")
    joined = slow.runpytest("--model", "sleepy", "-k", "slow/0", f"--agentbench-json=../{out.name}/report.json")
    assert not [line for line in joined.outlines if "rootdir" in line and "moved" in line]
    assert f"rootdir: {slow.path}" in joined.outlines
    assert json.loads((out / "report.json").read_text())["results"][0]["samples"] == 1
