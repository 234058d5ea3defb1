"""Shards on one machine, side by side in one run: the reference run (the harness self-check: 164 canonical HumanEval
solutions in the process sandbox) as

- one process (`-n 0`),
- one shard (`--agentbench-shard 1/1`, then the merge),
- two shards as two concurrent subprocesses (`--agentbench-shard 1/2` and `2/2`, then the merge),
- one run with two xdist workers (`-n 2`),

    python benchmarks/perf/bench_shards.py [--repeat N] [-k EXPR]

Modes are interleaved round by round (the machine's load hits each alike). Prints the median wall time of each
(two shards: until both have ended, plus the merge), the merge's own time, and ratios to the one-process run
(below 1.0: faster); checks that every mode gives the same per-task verdicts. Shards pay for their parallelism with
one interpreter, plugin and collection each, as xdist's workers do; the merge reads the shards' records and
recomputes the report once.
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

ROOT = Path(__file__).resolve().parents[2]
TEST = ROOT / "benchmarks" / "test_humaneval.py"


def pytest_cmd(extra: list[str], select: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(TEST), "--model", "reference", "-p", "no:cacheprovider", "-q"]
    cmd += ["--agentbench-live=off", *(["-k", select] if select else []), *extra]
    return cmd


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def check(done: subprocess.CompletedProcess) -> None:
    if done.returncode not in (0, 1):
        raise SystemExit(f"{done.args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def timed(cmd: list[str], folder: Path) -> float:
    start = time.perf_counter()
    check(subprocess.run(cmd, cwd=folder, env=env(), capture_output=True, text=True))
    return time.perf_counter() - start


def run_one(folder: Path, extra: list[str], select: str | None) -> float:
    return timed(pytest_cmd([*extra, "--agentbench-json=report.json"], select), folder)


def merge(folder: Path, shards: int) -> float:
    return timed(
        [sys.executable, "-m", "pytest_agentbench", "merge", "merged.json", f"report-shard-*-of-{shards}.json"], folder
    )


def run_shards(folder: Path, shards: int, select: str | None) -> tuple[float, float]:
    """(wall time until every shard has ended, the merge's time)."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            pytest_cmd([f"--agentbench-shard={i}/{shards}", "--agentbench-json=report.json"], select),
            cwd=folder,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(1, shards + 1)
    ]
    for proc in procs:
        out, err = proc.communicate()
        check(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    shards_s = time.perf_counter() - start
    return shards_s, merge(folder, shards)


def verdicts(path: Path) -> dict:
    return {(r["task"], r["sample"]): r["status"] for r in map(json.loads, path.read_text().splitlines())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (each runs every mode once; default 3)")
    ap.add_argument("-k", dest="select", help="a -k expression to run fewer tasks")
    opts = ap.parse_args()
    times: dict[str, list[float]] = {m: [] for m in ("n0", "shard1", "shard1+merge", "shards2", "shards2+merge", "n2")}
    merges: dict[str, list[float]] = {"1": [], "2": []}
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        base = Path(tmp)
        run_one(base, ["-n", "0"], opts.select)  # untimed: fills the calibrated time-limit cache, warms the disk
        for round_ in range(opts.repeat):
            folders = {m: base / f"r{round_}-{m}" for m in ("n0", "shard1", "shards2", "n2")}
            for folder in folders.values():
                folder.mkdir()
            times["n0"].append(run_one(folders["n0"], ["-n", "0"], opts.select))
            s, m = run_shards(folders["shard1"], 1, opts.select)
            times["shard1"].append(s)
            times["shard1+merge"].append(s + m)
            merges["1"].append(m)
            s, m = run_shards(folders["shards2"], 2, opts.select)
            times["shards2"].append(s)
            times["shards2+merge"].append(s + m)
            merges["2"].append(m)
            times["n2"].append(run_one(folders["n2"], ["-n", "2"], opts.select))
            same = {
                verdicts(folders["n0"] / "report.jsonl")
                == verdicts(folders[m] / ("merged.jsonl" if m.startswith("shard") else "report.jsonl"))
                for m in ("shard1", "shards2", "n2")
            }
            if same != {True}:
                raise SystemExit(f"round {round_}: the modes gave different verdicts")
            print(f"round {round_ + 1}: " + ", ".join(f"{m} {v[-1]:.2f} s" for m, v in times.items()), flush=True)
        tasks = len(verdicts(base / "r0-n0" / "report.jsonl"))
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\nreference run, {tasks} samples, {opts.repeat} round(s), {os.cpu_count()} CPUs; medians:")
    labels = {
        "n0": "one process (-n 0)",
        "shard1": "one shard (1/1)",
        "shard1+merge": "one shard + merge",
        "shards2": "two shards, concurrent",
        "shards2+merge": "two shards + merge",
        "n2": "xdist (-n 2)",
    }
    for m, label in labels.items():
        print(f"  {label:<24} {med[m]:7.2f} s   x{med[m] / med['n0']:.2f} of -n 0   x{med[m] / med['n2']:.2f} of -n 2")
    for n, v in merges.items():
        print(
            f"  merge of {n} shard(s)        {statistics.median(v):7.2f} s (median; min {min(v):.2f}, max {max(v):.2f})"
        )
    print("  verdicts: the same per task in every mode")


if __name__ == "__main__":
    main()
