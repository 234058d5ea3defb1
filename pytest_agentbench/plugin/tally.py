"""What the live view counts as records arrive (a few counter updates per item) and the words it shows them in;
estimates are computed only when the view is drawn."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from typing import Any, cast

from ..models import WeightsSpec
from ..sanitize import for_terminal
from ..steps import Step

SHOWN_GROUPS = 4  # model/suite rows in the bar (the rest are counted)


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Group:
    """One model and suite as its records arrive."""

    def __init__(self):
        self.per_task: dict[str, list[int]] = {}
        self.outcomes: Counter = Counter()
        self.tokens = 0
        self.model_s = 0.0
        self.version = 0
        self.estimate: tuple[int, Any] = (-1, None)

    def add(self, rec: dict) -> None:
        status = rec.get("status")
        self.outcomes[status] += 1
        self.version += 1
        if status == "infra":
            return
        n_c = self.per_task.setdefault(cast(str, rec.get("task")), [0, 0])  # every record names its task
        n_c[0] += 1
        n_c[1] += status == "passed"
        if not (rec.get("cache") or {}).get("hits"):  # as the report's tokens/s: cached replies took no model time
            self.tokens += rec.get("completion_tokens") or 0
            self.model_s += rec.get("model_s") or 0.0

    def counts_if_changed(self) -> tuple[int, dict] | None:
        """(version, per-task counts) when a record arrived since the last estimate (called under the tally's lock)."""
        if self.estimate[0] == self.version:
            return None
        return self.version, {t: (n, c) for t, (n, c) in self.per_task.items()}

    def pass_at_1(self, changed: tuple[int, dict] | None):
        """(value, lo, hi) over the tasks so far, as the report computes it; recomputed only when records came."""
        if changed is not None:
            version, counts = changed
            value = None
            if counts:
                from ..stats import pass_at_k_estimate

                est = pass_at_k_estimate(counts, 1)
                value = (est.value, est.lo, est.hi)
            self.estimate = (version, value)
        return self.estimate[1]


class Tally:
    """What the view shows, updated from pytest's hooks (main thread) and read by the drawing thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total: int | None = None
        self.done = 0
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self.groups: dict[tuple[str, str], Group] = defaultdict(Group)

    def item_started(self, nodeid: str) -> None:
        with self.lock:
            self.running[nodeid] = time.monotonic()

    def item_finished(self, nodeid: str) -> None:
        with self.lock:
            self.running.pop(nodeid, None)
            self.done += 1

    def add(self, rec: dict) -> None:
        with self.lock:
            self.groups[(str(rec.get("model")), str(rec.get("suite")))].add(rec)

    def parts(self) -> dict[str, Any]:
        """Everything a line or the bar shows, as plain values."""
        now = time.monotonic()
        with self.lock:
            elapsed = now - self.started
            done, total = self.done, self.total
            eta = elapsed / done * (total - done) if done and total else None
            gathered = []
            for (model, suite), g in self.groups.items():
                outcomes = {k: v for k, v in g.outcomes.items() if v and k != "passed"}
                gathered.append(
                    (
                        g,
                        g.counts_if_changed(),
                        {
                            "name": f"{for_terminal(model)}/{for_terminal(suite)}",
                            "outcomes": outcomes,
                            "samples": sum(n for n, _ in g.per_task.values()),
                            "infra": g.outcomes.get("infra", 0),
                            "tokens_per_s": g.tokens / g.model_s if g.model_s > 0 and g.tokens else None,
                        },
                    )
                )
            longest = min(self.running.items(), key=lambda kv: kv[1], default=None)
        groups = [dict(shown, **{"pass@1": g.pass_at_1(changed)}) for g, changed, shown in gathered]
        return {
            "done": done,
            "total": total,
            "elapsed": elapsed,
            "eta": eta,
            "groups": groups,
            "running": len(self.running),
            "longest": (longest[0], now - longest[1]) if longest else None,
        }


def group_text(g: dict) -> str:
    """`pass@1 0.081 [0.030, 0.210] (37 samples), 62.9 tok/s, failed 28, error 5, infra 0`."""
    est = g["pass@1"]
    bits = [f"pass@1 {est[0]:.3f} [{est[1]:.3f}, {est[2]:.3f}] ({g['samples']} samples)" if est else "pass@1 -"]
    if g["tokens_per_s"]:
        bits.append(f"{g['tokens_per_s']:.1f} tok/s")
    counts = dict(g["outcomes"])
    counts.setdefault("error", 0)
    counts.setdefault("infra", 0)
    bits += [f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (kv[0] == "infra", kv[0]))]
    return ", ".join(bits)


def progress_text(p: dict) -> str:
    if p["total"] is None:  # xdist: the workers have not reported their collection yet
        return f"collecting, {clock(p['elapsed'])} elapsed"
    eta = f", ETA {clock(p['eta'])}" if p["eta"] is not None else ""
    return f"{p['done']}/{p['total']} items, {clock(p['elapsed'])} elapsed{eta}"


def serving_text(run, notes: dict, steps: list[Step]) -> list[tuple[str, str]]:
    """(model, how it is served now) for every model of the run; a fallback or an error first in its text."""
    out = []
    for spec in run.models:
        engine = run.serve_engine(spec)[0]
        note = notes.get(spec.name) or {}
        starting = next((s for s in steps if s.server_of == spec.name), None)
        if note.get("fallback"):
            text = f"FALLBACK {note['fallback']} ({note.get('engine')}: {note.get('reason')})"
        elif note.get("error"):
            text = f"SERVER FAILED: {note['error']}"
        elif starting is not None:
            text = f"starting the {engine} server ({clock(time.monotonic() - starting.started)})"
        elif note.get("pid"):
            text = f"{note.get('engine')} server, pid {note['pid']}"
        elif engine is not None:
            text = f"{engine} server (starts with the first item)"
        else:
            text = f"in-process {spec.backend}" if isinstance(spec, WeightsSpec) else spec.backend
        out.append((for_terminal(spec.name), for_terminal(str(text))))
    return out


def status_line(p: dict, serving: list[tuple[str, str]]) -> str:
    """The plain line of the `lines` mode: progress; each model/suite; how models are served."""
    pieces = [progress_text(p)] + [f"{g['name']} {group_text(g)}" for g in p["groups"]]
    if serving:
        pieces.append("serving: " + ", ".join(f"{m} {t}" for m, t in serving))
    return "agentbench: " + "; ".join(pieces)
