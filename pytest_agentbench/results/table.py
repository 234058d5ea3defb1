"""The tool-use study's comparison table: one row per model x prompt format (x difficulty), from runs' JSONL records.

    python -m pytest_agentbench table RUN.jsonl [RUN2.jsonl ...] [--by-difficulty] [--csv OUT.csv] [--markdown OUT.md]
                                      [--png OUT.png]

Several runs combine (a model per run; the same model, task and sample in two files is refused). Every number is
the report's own (suites/tool_use.block, per_class), so the table equals `metrics.by_prompt_format` of each run's
report; each rate comes with the count it is over. In Python: `study_table(paths_or_records)` returns the pandas
DataFrame.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..metrics import describe, per_class
from ..suites.tool_use import CHOICES, block, selection_pairs
from .records import read_records
from .report import record_key, resources_block

if TYPE_CHECKING:
    import pandas
    from matplotlib.artist import Artist
    from matplotlib.colors import ListedColormap

SUITE = "tool_use"


def load(sources: Iterable) -> list[dict]:
    """Records of the tool-use suite from JSONL paths (or record lists); one-line ValueError on overlaps."""
    records: list[dict] = []
    origin: dict[tuple, str] = {}
    for source in sources:
        name = str(source) if isinstance(source, (str, Path)) else "records"
        if isinstance(source, (str, Path)) and not Path(source).is_file():
            raise ValueError(f"{source}: no such file")
        rows = read_records(source) if isinstance(source, (str, Path)) else list(source)
        for rec in rows:
            # scored tool-use samples only (as the report's metrics: infra, and rows without the suite's fields, out)
            if (
                rec.get("suite") != SUITE
                or rec.get("status") == "infra"
                or not isinstance(rec.get("extra"), dict)
                or not rec["extra"].get("category")
            ):
                continue
            key = (rec["model"], rec["task"], rec["sample"])
            if key in origin:
                raise ValueError(
                    f"model {rec['model']!r} has task {rec['task']} sample {rec['sample']} in both "
                    f"{origin[key]} and {name}: give each run its own model name"
                )
            origin[key] = name
            records.append(rec)
    if not records:
        raise ValueError("no scored tool-use samples in the input")
    return sorted(records, key=record_key)


def _count(value: dict) -> tuple:
    return value["rate"], value["denominator"]


def row(group: list[dict]) -> dict:
    """One row: the report's block of these samples, flattened, each rate beside the count it is over."""
    b = block(group)
    f1 = per_class(selection_pairs(group), CHOICES)
    res = resources_block(group)
    wall = describe([r["wall_s"] for r in group])
    out = {
        "samples": b["tasks"],
        "correctness": b["correctness"],
        "correctness_se": b["correctness_error"]["se"],
        "correctness_lo": b["correctness_error"]["lo"],
        "correctness_hi": b["correctness_error"]["hi"],
        "tool_selection_accuracy": b["tool_selection_accuracy"],
        "tool_selection_se": b["tool_selection_accuracy_error"]["se"],
        "tool_selection_lo": b["tool_selection_accuracy_error"]["lo"],
        "tool_selection_hi": b["tool_selection_accuracy_error"]["hi"],
        "protocol_errors": b["protocol_errors"]["numerator"],
        "protocol_error_rate": b["protocol_errors"]["rate"],
    }
    for tool in CHOICES:
        out[f"f1_{tool}"] = f1[tool]["f1"]
        out[f"support_{tool}"] = f1[tool]["support"]
    out["unnecessary_calls"] = b["unnecessary_tool_calls"]
    out["no_tool_tasks"] = b["tool_calls_on_no_tool_tasks"]["tasks"]
    out["recovery_rate"], out["runs_with_failed_calls"] = _count(b["error_recovery"])
    out["multi_step_success"], out["multi_step_runs"] = _count(b["multi_step_success"])
    out.update(
        {
            "latency_p50_s": wall["p50"],
            "latency_p95_s": wall["p95"],
            "prompt_tokens_mean": b["tokens_per_task"]["prompt"],
            "completion_tokens_mean": b["tokens_per_task"]["completion"],
            "tokens_per_s": res["tokens_per_s"],
            "peak_rss_mb": res["peak_rss_mb"],
            "cuda_peak_mb": res["cuda_peak_mb"],
        }
    )
    return out


def study_table(sources: Iterable, by_difficulty: bool = False) -> pandas.DataFrame:
    """One row per model x prompt format (x difficulty): correctness and tool-selection accuracy with their standard
    errors and 95% intervals (task-clustered, the report's), samples that ended in a protocol error (text or native
    alike: `native` is a prompt format like `direct`, `cot`, `tools`), per-tool F1,
    unnecessary calls, recovery rate, multi-step success, latency p50/p95 (wall per sample), tokens, throughput and
    memory, each with its count, and the model's quantization."""
    import pandas as pd

    records = load(sources)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in records:
        extra = rec["extra"]
        key = (rec["model"], rec.get("quantization"), extra.get("prompt_format", "default"))
        groups[key + ((extra["difficulty"],) if by_difficulty else ())].append(rec)
    columns = ["model", "quantization", "prompt_format"] + (["difficulty"] if by_difficulty else [])
    frame = pd.DataFrame([{**dict(zip(columns, key)), **row(g)} for key, g in groups.items()])
    return frame.sort_values(columns, key=lambda c: c.astype(str), ignore_index=True)


def plot(frame, path: Path) -> Path:
    """Correctness against tool-selection accuracy, a point per model and format, with one standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5), constrained_layout=True)
    models = list(dict.fromkeys(frame["model"]))
    formats = list(dict.fromkeys(frame["prompt_format"]))
    markers = "osD^vP*Xh<>"
    palette: Any = cast("ListedColormap", plt.cm.tab10).colors  # ten RGB tuples
    for _, r in frame.iterrows():
        ax.errorbar(
            r["tool_selection_accuracy"],
            r["correctness"],
            xerr=r["tool_selection_se"],
            yerr=r["correctness_se"],
            fmt=markers[formats.index(r["prompt_format"]) % len(markers)],
            color=palette[models.index(r["model"]) % 10],
            capsize=3,
            markersize=8,
        )
    from matplotlib.patches import Patch

    handles: list[Artist] = [Patch(color=palette[i % 10], label=m) for i, m in enumerate(models)]
    handles += [
        ax.plot([], [], markers[i % len(markers)], color="gray", label=f"format: {f}")[0] for i, f in enumerate(formats)
    ]
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("tool-selection accuracy")
    ax.set_ylabel("correctness")
    ax.set_title("tool use: correctness vs tool selection (± 1 SE)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="best")
    from .storage import MARK

    fig.savefig(path, dpi=110, metadata={"Software": MARK})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pytest_agentbench table", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="per-sample JSONL files (.agentbench/report.jsonl)")
    ap.add_argument("--by-difficulty", action="store_true", help="a row per difficulty too")
    ap.add_argument("--csv", help="write the table as CSV here")
    ap.add_argument("--markdown", help="write the table as Markdown here")
    ap.add_argument("--png", help="plot correctness vs tool-selection accuracy here")
    opts = ap.parse_args(argv)
    from ..errors import AgentbenchError
    from .storage import TABLE_MARK, claim

    try:
        frame = study_table([Path(p) for p in opts.runs], by_difficulty=opts.by_difficulty)
        outputs = [
            (Path(path), kind)
            for path, kind in ((opts.csv, "table-csv"), (opts.markdown, "table-md"), (opts.png, "png"))
            if path
        ]
        for path, kind in outputs:
            claim(path, kind, kind.replace("-", " "))
        markdown = frame.to_markdown(index=False, floatfmt=".3f")
        for path, kind in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "table-csv":
                frame.to_csv(path, index=False)
            elif kind == "table-md":
                path.write_text(f"{TABLE_MARK}\n{markdown}\n", encoding="utf-8")
            else:
                plot(frame, path)
    except (OSError, ValueError, AgentbenchError) as exc:
        from ..errors import first_line, one_line
        from ..sanitize import for_terminal

        print(
            f"table: {for_terminal(one_line(exc) if isinstance(exc, OSError) else first_line(str(exc)))}",
            file=sys.stderr,
        )
        return 2
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
