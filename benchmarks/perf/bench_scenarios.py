"""The cost of the agent scenarios' audit, side by side in one run on this machine.

    python benchmarks/perf/bench_scenarios.py [--repeat N] [--workers N] [--sandbox process|docker]

Times the whole command `pytest benchmarks -m scenarios --model reference -n 2` (every shipped scenario and variant,
each a gold trajectory replayed through the real pipeline) with the audit on (the default: every command the agent
runs is traced, every check reads whole files) and off (`--scenario-audit off`: the safety rules see only the words
of the commands), alternating the two so drift on a shared machine hits both alike, and prints each run, the
medians and the ratio on / off (target: at most 1.25). Both must win every scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTEST_BENCHMARKS, QUIET

ROOT = Path(__file__).resolve().parents[2]


def run(audit: str, workers: int, sandbox: str, out: Path) -> float:
    cmd = [
        *PYTEST_BENCHMARKS,
        "-m",
        "scenarios",
        "--model",
        "reference",
        *QUIET,
        "--scenario-audit",
        audit,
        "--sandbox",
        sandbox,
        f"--agentbench-json={out}",
        f"--agentbench-traces={out.parent / 'traces'}",
    ]
    if workers > 1:
        cmd += ["-n", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    report = json.loads(out.read_text()) if out.exists() else None
    result = (report or {}).get("results", [{}])[0]
    if proc.returncode != 0 or result.get("pass@1") != 1.0:
        sys.exit(
            f"audit {audit}: the gold runs must all pass (exit {proc.returncode}): {proc.stdout[-2000:]}"
            f"{proc.stderr[-1000:]}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers (-n)")
    parser.add_argument("--sandbox", default="process", choices=("process", "docker"))
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="agentbench-perf-"))
    run("on", opts.workers, opts.sandbox, tmp / "warm.json")  # sandbox servers, page cache
    times: dict[str, list[float]] = {"on": [], "off": []}
    for n in range(opts.repeat):
        for audit in ("on", "off") if n % 2 == 0 else ("off", "on"):
            times[audit].append(run(audit, opts.workers, opts.sandbox, tmp / f"{audit}{n}.json"))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    print(
        f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, sandbox {opts.sandbox}, "
        f"-n {opts.workers}, median of {opts.repeat}"
    )
    print("audit on : " + ", ".join(f"{t:.1f}s" for t in times["on"]))
    print("audit off: " + ", ".join(f"{t:.1f}s" for t in times["off"]))
    print(f"median: on {on:.1f}s, off {off:.1f}s, ratio on/off {on / off:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
