"""What the live view costs a run, side by side in one invocation on this machine.

    python benchmarks/perf/bench_live.py [--repeat N] [--items N]

Each configuration runs the whole pytest command in a pseudo-terminal (so `auto` draws the bar), alternating the
views run by run so that drift on a shared machine hits them alike, and prints the median wall time and the ratio to
`--agentbench-live off`:

- HumanEval, `--model reference` (164 graded runs in the process sandbox): a realistic run;
- N instant items of a scripted suite with `-v`: the worst case for the view, one finished pytest line per item
  passing through it, with little other work per item.

Whole runs on a shared machine vary by more than the view costs, so it also times, in this process, what the view
does for each line pytest writes (the tap, and with the bar, printing the line above it and redrawing the bar as
last drawn): milliseconds per item.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTANT = """
import pytest
from pytest_agentbench import Outcome, Status, Suite, Task

class Instant(Suite):
    name = "instant"
    def load(self):
        return [Task(id=f"instant/{n}", prompt=str(n), reference=str(n)) for n in range({items})]
    def evaluate(self, task, backend, sandbox, params, sample):
        n = int(task.id.split("/")[1])
        return Outcome(Status.PASSED if n % 2 else Status.FAILED, reason="" if n % 2 else "odd",
                       completion_tokens=5, model_s=0.001)

@pytest.mark.agentbench(Instant())
def test_instant(outcome):
    outcome.check()
"""


def in_a_terminal(cmd: list[str], cwd: Path) -> float:
    """Wall time of `cmd` with a pseudo-terminal as its output (read and thrown away as it comes)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                if not os.read(master, 1 << 16):
                    break
            except OSError:
                break
        elif proc.poll() is not None:
            break
    proc.wait()
    elapsed = time.perf_counter() - start
    os.close(master)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median is reported")
    parser.add_argument("--items", type=int, default=500, help="items of the instant suite")
    opts = parser.parse_args()
    per_line_cost()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "test_instant.py").write_text(INSTANT.replace("{items}", str(opts.items)))
        (work / "conftest.py").write_text("")
        pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
        cases = {
            "humaneval reference": (
                pytest
                + [
                    str(ROOT / "benchmarks" / "test_humaneval.py"),
                    "--model",
                    "reference",
                    "--agentbench-json",
                    str(work / "he.json"),
                ],
                ROOT,
            ),
            f"{opts.items} instant items, -v": (
                pytest + ["-v", "test_instant.py", "--model", "reference", "--agentbench-json", str(work / "in.json")],
                work,
            ),
        }
        views = ("off", "bar", "lines")
        for name, (cmd, cwd) in cases.items():
            in_a_terminal(cmd + ["--agentbench-live", "off"], cwd)  # warm: imports, calibrated time limits
            times: dict[str, list[float]] = {v: [] for v in views}
            for _ in range(opts.repeat):
                for view in views:
                    times[view].append(
                        in_a_terminal(cmd + ["--agentbench-live", view, "--agentbench-live-every", "1"], cwd)
                    )
            base = statistics.median(times["off"])
            for view in views:
                median = statistics.median(times[view])
                print(
                    f"{name:32} --agentbench-live {view:5}  median {median:6.2f} s  ({median / base:.3f}x off)  "
                    f"runs: {', '.join(f'{t:.2f}' for t in times[view])}"
                )


def per_line_cost(lines: int = 2000) -> None:
    from pytest_agentbench.plugin.live import _BarScreen, _LineScreen

    class Writer:  # the attributes of pytest's TerminalWriter the view uses
        def __init__(self):
            self._file = open(os.devnull, "w")
            self.hasmarkup = True
            self._current_line = ""

    def bar():
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_row("agentbench", "━" * 30 + " 37/164 items, 0:01:12 elapsed, ETA 0:04:08")
        grid.add_row("model/suite", "pass@1 0.081 [0.030, 0.210] (37 samples), 62.9 tok/s, error 5, infra 0")
        return grid

    for name, make in (("bar", lambda w: _BarScreen(w, bar)), ("lines", _LineScreen)):
        screen = make(Writer())
        screen.redraw()
        start = time.perf_counter()
        for i in range(lines):  # what pytest -v writes per item
            screen.pytest_text(f"test_x.py::test_x[task/{i}] ")
            screen.pytest_text("\x1b[32mPASSED\x1b[0m" + " " * 40 + "[ 50%]")
            screen.pytest_text("\n")
            screen.pytest_flush()
        took = time.perf_counter() - start
        screen.close()
        print(f"per finished pytest line, --agentbench-live {name:5}: {took / lines * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
