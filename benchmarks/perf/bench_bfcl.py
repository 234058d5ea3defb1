"""BFCL items per second: the reference self-check over every single-turn item, as a user runs it.

    python benchmarks/perf/bench_bfcl.py [--repeat N] [--workers N] [--multi-turn]

Times the whole command `pytest benchmarks -m "bfcl and single_turn" --model reference -n 2` (interpreter start,
plugin, loading the 4,441 BFCL questions, 3,641 items, report writing) and prints items per second, with the
passed count and the per-category accuracy from its report. `--multi-turn` also times the 800 multi-turn items
(each runs BFCL's simulators in the sandbox: a few runs of a fresh Python per item). The machine's load average is
printed beside each figure: these machines are shared, and a busy one halves the rate.
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


def run(marker: str, workers: int, out: Path) -> tuple[float, dict]:
    cmd = [
        *PYTEST_BENCHMARKS,
        "-m",
        marker,
        "--model",
        "reference",
        "-n",
        str(workers),
        *QUIET,
        "--agentbench-json",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) or not out.exists():
        sys.exit(f"pytest failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration; the median is reported")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers (-n)")
    parser.add_argument("--multi-turn", action="store_true", help="also time the 800 multi-turn items")
    args = parser.parse_args()
    markers = ["bfcl and single_turn"] + (["bfcl and multi_turn"] if args.multi_turn else [])
    with tempfile.TemporaryDirectory() as tmp:
        for marker in markers:
            times, report = [], None
            for i in range(args.repeat):
                load = os.getloadavg()[0]
                elapsed, report = run(marker, args.workers, Path(tmp) / f"r{i}.json")
                times.append(elapsed)
                print(
                    f"  run {i + 1}: {elapsed:.1f} s (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)"
                )
            result = report["results"][0]
            wall = statistics.median(times)
            outcomes = result["outcomes"]
            print(
                f'-m "{marker}" --model reference -n {args.workers}: {result["samples"]} items in {wall:.1f} s = '
                f"{result['samples'] / wall:.1f} items/s; passed {outcomes['passed']}, failed {outcomes['failed']}, "
                f"infra {outcomes['infra']}"
            )
            cats = result["metrics"]["categories"]
            print(
                "  "
                + ", ".join(
                    f"{c} {v['passed']}/{v['tasks']}"
                    + (f" ({v['answer_defects']} defective)" if v["answer_defects"] else "")
                    for c, v in cats.items()
                )
            )


if __name__ == "__main__":
    main()
