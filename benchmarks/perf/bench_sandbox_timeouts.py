"""How far past its limit a run that times out ends, per sandbox, side by side in one invocation: what the tests
once asserted as wall time (tests/test_sandbox.py, tests/test_sandbox_attacks.py) and now only guard against hangs.

    python benchmarks/perf/bench_sandbox_timeouts.py [--runs N] [--limit SECONDS]

Each run sleeps past the limit with a forked child holding its output pipe (the harder case to end); printed per
sandbox: the overrun (wall time minus the limit) p50 and max over the runs, and the fresh sandbox's start-up time.
Run it on a quiet machine: the figures are the machine's.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pytest_agentbench.sandbox import SandboxLimits, make_sandbox

PROGRAM = "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\ntime.sleep(300)\n"


def kinds() -> list[str]:
    found = ["process"]
    try:
        from pytest_agentbench.sandbox.docker import DEFAULT_IMAGE, engine

        engine().images.get(DEFAULT_IMAGE)
        found.append("docker")
    except Exception as exc:  # no engine or no image: measured where there is one
        print(f"docker: skipped ({type(exc).__name__})")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=float, default=2.0)
    args = parser.parse_args()
    for kind in kinds():
        started = time.perf_counter()
        box = make_sandbox(kind, SandboxLimits(timeout=args.limit, memory_mb=512))
        box.run_python("pass\n")
        startup = time.perf_counter() - started
        overruns = []
        try:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                run = box.run_python(PROGRAM, timeout=args.limit, fork=True)
                assert run.timed_out, run.verdict
                overruns.append(time.perf_counter() - t0 - args.limit)
        finally:
            box.close()
        print(
            f"{kind}: limit {args.limit:g} s, {args.runs} runs: overrun p50 {statistics.median(overruns):.2f} s, "
            f"max {max(overruns):.2f} s; sandbox start-up and first run {startup:.2f} s"
        )


if __name__ == "__main__":
    main()
