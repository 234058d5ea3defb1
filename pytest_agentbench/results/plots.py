"""One PNG per run: pass@1 per suite and model, runtime per task, tokens per sample.

python -m pytest_agentbench.results.plots .agentbench/report.jsonl -o results.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width // 2 - 1) :]


def plot_records(records, path: Path) -> Path:
    """Render from records (or a JSONL path) via `report.records_frame` (see `figure`); returns the PNG path."""
    import matplotlib.pyplot as plt

    from .storage import MARK

    fig = figure(records)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, metadata={"Software": MARK})
    plt.close(fig)
    return path


def figure(records):
    """The run's figure (matplotlib, Agg) from records (or a JSONL path).

    One row per model and suite, so any number of them stays readable: pass@1 with its 95% interval (the report's
    error bars), runtime per task (with the mean model and sandbox time per sample), tokens per sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .records import read_records
    from .report import aggregate, records_frame

    records = read_records(records) if isinstance(records, (str, Path)) else list(records)
    frame = records_frame(records)
    if frame.empty:
        raise ValueError("no samples to plot")
    frame = frame[frame["status"] != "infra"]
    if frame.empty:
        raise ValueError("no scored samples to plot")
    frame["group"] = [f"{_short(m)} · {s}" for m, s in zip(frame["model"], frame["suite"])]
    groups = list(dict.fromkeys(frame["group"]))[::-1]  # first group on top
    per_task = frame.groupby(["group", "task"], sort=False).agg(passed=("passed", "mean"), wall_s=("wall_s", "mean"))
    pass1 = per_task.groupby(level="group", sort=False)["passed"].mean().reindex(groups)
    tokens = frame.groupby("group", sort=False)[["prompt_tokens", "completion_tokens"]].mean().reindex(groups)
    timing = frame.groupby("group", sort=False)[["model_s", "sandbox_s"]].mean().reindex(groups)
    counts = frame.groupby("group", sort=False).size().reindex(groups)

    height = 1.6 + 0.42 * len(groups)
    fig, axes = plt.subplots(
        1, 3, figsize=(15, height), sharey=True, constrained_layout=True, gridspec_kw={"width_ratios": [1, 1.3, 1]}
    )
    y = list(range(len(groups)))
    suites = list(dict.fromkeys(frame["suite"]))
    palette = plt.cm.tab10.colors
    color = [palette[suites.index(g.rsplit(" · ", 1)[1]) % 10] for g in groups]

    # the report's pass@1 and 95% interval of each group (report.aggregate on the same records)
    named = dict(zip(frame["group"], zip(frame["model"], frame["suite"])))
    scores = {(r["model"], r["suite"]): r for r in aggregate(records)}
    bounds = [scores[named[g]]["errors"]["pass@1"] for g in groups]
    ax = axes[0]
    err = [[p - b["lo"] for p, b in zip(pass1.values, bounds)], [b["hi"] - p for p, b in zip(pass1.values, bounds)]]
    ax.barh(y, pass1.values, color=color, height=0.6, xerr=err, capsize=3, error_kw={"elinewidth": 1})
    for yi, p, b in zip(y, pass1.values, bounds):
        ax.text(b["hi"] + 0.02, yi, f"{p:.3f} [{b['lo']:.2f}, {b['hi']:.2f}]", va="center", fontsize=7)
    ax.set_xlim(0, 1.45)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("pass@1")
    ax.set_title("pass@1 (95% interval)", fontsize=10)

    ax = axes[1]
    data = [per_task.loc[g]["wall_s"].values for g in groups]
    new_api = tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)  # `vert` is deprecated there
    ax.boxplot(
        data,
        positions=y,
        widths=0.5,
        showfliers=True,
        **({"orientation": "horizontal"} if new_api else {"vert": False}),
    )
    low, high = per_task["wall_s"].min(), per_task["wall_s"].max()
    if low > 0 and high / low > 20:  # milliseconds next to minutes: only a log axis shows both
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0, right=(high * 1.35) or 1.0)
    ax.set_xlabel("seconds per task (wall, mean of its samples)")
    ax.set_title("runtime per task", fontsize=10)

    ax = axes[2]
    half = 0.36
    b1 = ax.barh([i + half / 2 for i in y], tokens["prompt_tokens"].values, half, label="prompt", color="#4c72b0")
    b2 = ax.barh(
        [i - half / 2 for i in y], tokens["completion_tokens"].values, half, label="completion", color="#dd8452"
    )
    ax.bar_label(b1, fmt="%.0f", padding=2, fontsize=7)
    ax.bar_label(b2, fmt="%.0f", padding=2, fontsize=7)
    ax.set_xlim(left=0, right=max(1.0, float(tokens.values.max()) * 1.2))
    ax.set_xlabel("tokens per sample (mean)")
    ax.set_title("tokens", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)

    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    labels = [
        f"{g}\n{counts[g]} samples · model {timing.loc[g, 'model_s']:.2f}s · sandbox "
        f"{timing.loc[g, 'sandbox_s']:.3f}s per sample"
        for g in groups
    ]
    axes[0].set_yticks(y, labels, fontsize=8)  # last: the boxplot resets the shared ticks
    fig.suptitle(f"pytest-agentbench: {len(frame)} samples, {len(groups)} model/suite pair(s)", fontsize=10)
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_agentbench.results.plots", description=__doc__.splitlines()[0]
    )
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
