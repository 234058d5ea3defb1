"""The model server's own speed under each OpenMP setting, quiet and beside competing processes, side by side in one
invocation.

    python benchmarks/perf/bench_omp.py [--settings default,passive,spin:10000,gomp] [--hogs 0,2,8] [--rounds 3]

llama-server (the embedded model, 2 threads, as the default path starts it) is started once per setting and round,
and asked the same completion (a fixed 1,200-character prompt, greedy, a fixed number of tokens, prompt cache off)
three times: the first warms it, the other two are measured from the server's own `timings` (prompt and predicted
tokens per second). Settings: `default` (what this project sets: GOMP_SPINCOUNT=1000), `passive`
(OMP_WAIT_POLICY=passive: sleep at once), `active` (spin for minutes), `gomp` (nothing set: GNU OpenMP's default,
about 300,000 spins), `spin:N` (GOMP_SPINCOUNT=N). For each number of competing processes (`while True: pass`, same
priority; 0 is the quiet case) the settings alternate round by round so drift hits them all; the table gives the
medians and each setting's decoding speed as a ratio of the best one in that row. Run it on a quiet machine (the
load average is printed with every row).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_agentbench.backends.base import SPINCOUNT  # noqa: E402
from pytest_agentbench.models import load_models_file  # noqa: E402
from pytest_agentbench.serving import free_port  # noqa: E402
from pytest_agentbench.weights import gguf_path  # noqa: E402

PROMPT = (ROOT / "README.md").read_text()[:1200]


def env_of(setting: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if setting == "default":
        env["GOMP_SPINCOUNT"] = SPINCOUNT
    elif setting in ("passive", "active"):
        env["OMP_WAIT_POLICY"] = setting
    elif setting.startswith("spin:"):
        env["GOMP_SPINCOUNT"] = setting.split(":", 1)[1]
    elif setting != "gomp":
        raise SystemExit(f"unknown setting {setting!r}: default, passive, active, gomp or spin:N")
    return env


def server(model: Path, setting: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [
        str(Path(sys.executable).parent / "llama-server"), "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--threads", "2", "--threads-batch", "2", "--ctx-size", "4096", "--parallel", "1",
        "--no-cache-prompt", "--cache-ram", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env_of(setting), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"llama-server ({setting}) did not start") from None
            time.sleep(0.2)


def ask(url: str, tokens: int) -> tuple[float, float]:
    body = {"prompt": PROMPT, "n_predict": tokens, "temperature": 0, "ignore_eos": True, "cache_prompt": False}
    request = urllib.request.Request(
        url + "/completion", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    timings = json.load(urllib.request.urlopen(request, timeout=900))["timings"]
    return timings["prompt_per_second"], timings["predicted_per_second"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", default="default,passive,gomp")
    ap.add_argument("--hogs", default=f"0,{os.cpu_count()},{4 * (os.cpu_count() or 1)}", help="competing processes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=100, help="tokens generated per request")
    opts = ap.parse_args()
    executable = Path(sys.executable).parent / "llama-server"
    if not executable.exists():
        raise SystemExit(f"{executable} not found: scripts/llama-server.sh builds it")
    model = gguf_path(load_models_file(ROOT / "pytest_agentbench" / "models.yaml")["smollm2-135m"])
    settings = opts.settings.split(",")
    print(f"machine: {os.cpu_count()} cpus; llama-server, 2 threads; {opts.tokens} tokens per request; default is "
          f"GOMP_SPINCOUNT={SPINCOUNT}")  # fmt: skip
    print(f"{'hogs':>4} {'load':>5}  " + "  ".join(f"{s:>22}" for s in settings))
    for hogs in (int(h) for h in opts.hogs.split(",")):
        spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            load = os.getloadavg()[0]
            seen: dict[str, list[tuple[float, float]]] = {s: [] for s in settings}
            for _ in range(opts.rounds):
                for setting in settings:
                    proc, url = server(model, setting)
                    try:
                        ask(url, min(opts.tokens, 20))
                        seen[setting] += [ask(url, opts.tokens) for _ in range(2)]
                    finally:
                        proc.terminate()
                        proc.wait()
        finally:
            for p in spinning:
                p.kill()
                p.wait()
        decode = {s: statistics.median(d for _, d in seen[s]) for s in settings}
        prefill = {s: statistics.median(p for p, _ in seen[s]) for s in settings}
        best = max(decode.values())
        cells = [f"{decode[s]:6.1f} ({decode[s] / best:4.2f}) pp {prefill[s]:5.0f}" for s in settings]
        print(f"{hogs:>4} {load:5.1f}  " + "  ".join(f"{c:>22}" for c in cells))
    print("cells: decode tokens/s (ratio to the row's best) and prefill tokens/s, medians")
    return 0


if __name__ == "__main__":
    sys.exit(main())
