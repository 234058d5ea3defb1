"""One PNG per run: pass@1 per suite and model, runtime per task, tokens per sample.

    python -m pytest_agentbench.plots .agentbench/report.jsonl -o results.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def plot_records(records, path: Path) -> Path:
    """Render from records (or a JSONL path) via `report.records_frame`; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import records_frame

    frame = records_frame(records)
    if frame.empty:
        raise ValueError("no samples to plot")
    frame["group"] = frame["model"] + "\n" + frame["suite"]
    groups = list(dict.fromkeys(frame["group"]))
    per_task = frame.groupby(["group", "task"], sort=False).agg(passed=("passed", "mean"), wall_s=("wall_s", "mean"))
    pass1 = per_task.groupby(level="group", sort=False)["passed"].mean().reindex(groups)
    tokens = frame.groupby("group", sort=False)[["prompt_tokens", "completion_tokens"]].mean().reindex(groups)
    timing = frame.groupby("group", sort=False)[["model_s", "sandbox_s"]].mean().reindex(groups)

    width = max(11.0, 2.2 * len(groups) + 6)
    fig, axes = plt.subplots(1, 3, figsize=(width, 4.6), constrained_layout=True)
    colors = plt.cm.tab10.colors
    x = range(len(groups))

    ax = axes[0]
    bars = ax.bar(x, pass1.values, color=[colors[i % 10] for i in x])
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in pass1.values], padding=2)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("pass@1")
    ax.set_title("pass@1 per suite and model")

    ax = axes[1]
    data = [per_task.loc[g]["wall_s"].values for g in groups]
    ax.boxplot(data, showfliers=True)
    low, high = per_task["wall_s"].min(), per_task["wall_s"].max()
    if low > 0 and high / low > 20:  # milliseconds next to minutes: only a log axis shows both
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0, top=high * 1.1 or 1.0)
    ax.set_ylabel("seconds per task (wall, mean of samples)")
    ax.set_title("runtime per task")

    ax = axes[2]
    half = 0.38
    b1 = ax.bar([i - half / 2 for i in x], tokens["prompt_tokens"].values, half, label="prompt", color="#4c72b0")
    b2 = ax.bar([i + half / 2 for i in x], tokens["completion_tokens"].values, half, label="completion", color="#dd8452")
    ax.bar_label(b1, fmt="%.0f", padding=2, fontsize=8)
    ax.bar_label(b2, fmt="%.0f", padding=2, fontsize=8)
    ax.set_ylim(bottom=0, top=max(1.0, float(tokens.values.max()) * 1.15))
    ax.set_ylabel("tokens per sample (mean)")
    ax.set_title("tokens")
    ax.legend(loc="upper right", fontsize=8)

    timed = [f"{g}\nmodel {m:.2f}s, sandbox {s:.3f}s" for g, m, s in zip(groups, timing["model_s"], timing["sandbox_s"])]
    for ax in axes:
        ax.set_xticks(list(x) if ax is not axes[1] else [i + 1 for i in x], groups if ax is not axes[1] else timed,
                      fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    n = frame.groupby("group", sort=False).size().reindex(groups)
    fig.suptitle("pytest-agentbench: " + "; ".join(f"{g.replace(chr(10), '/')} ({k} samples)" for g, k in n.items()),
                 fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_agentbench.plots", description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path, help="per-sample records of a run (.agentbench/report.jsonl)")
    parser.add_argument("-o", "--output", type=Path, default=Path("agentbench.png"), help="PNG to write")
    args = parser.parse_args(argv)
    try:
        print(plot_records(args.jsonl, args.output))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
