"""The CI gate: pass@1 against a floor and against a baseline report. Its verdict decides the exit status.

It fails when any check fails, when any sample could not be evaluated (infra: scores are incomplete), when a
suite that was asked for could not run, and when it was asked to compare and compared nothing. A baseline run of
another model is paired by suite when the baseline holds exactly one model for it; the verdict names both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sanitize import for_terminal


@dataclass(frozen=True)
class GateConfig:
    fail_under: float | None = None
    baseline: list[dict] | None = None          # the baseline report's results
    baseline_path: str | None = None
    max_drop: float = 0.0

    @property
    def active(self) -> bool:
        return self.fail_under is not None or self.baseline is not None


def load_baseline(path: Path) -> list[dict]:
    """The results of an earlier report; raises ValueError with a one-line reason."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        results = doc["results"]
        for r in results:
            r["model"], r["suite"]
            if r["pass@1"] is not None:
                float(r["pass@1"])
        return results
    except OSError as exc:
        raise ValueError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"baseline {path} is not a pytest-agentbench report ({type(exc).__name__}: {exc})") from exc


def baseline_for(result: dict, baseline: list[dict]) -> dict | None:
    """The same model and suite, else the only baseline model with that suite."""
    same_suite = [b for b in baseline if b["suite"] == result["suite"]]
    exact = [b for b in same_suite if b["model"] == result["model"]]
    if exact:
        return exact[0]
    return same_suite[0] if len(same_suite) == 1 else None


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def check(self, good: bool, line: str) -> None:
        self.ok &= good
        self.lines.append(f"{'PASS' if good else 'FAIL'} {line}")


def judge(results: list[dict], gate: GateConfig, unavailable: dict[str, str] | None = None) -> dict[str, Any]:
    """The gate's verdict: ok plus one line per check. Infra samples and suites that could not run always fail it
    when it is active; infra samples fail it even when it is not (the scores are incomplete)."""
    verdict = Verdict()
    infra = sum(r["infra"]["samples"] for r in results)
    if infra:
        verdict.check(False, f"harness: {infra} sample(s) could not be evaluated (infra errors), scores are incomplete")
    if gate.active:
        for suite, why in sorted((unavailable or {}).items()):
            verdict.check(False, f"{suite}: asked for but could not run ({why})")
        if not results and not unavailable:
            verdict.check(False, "nothing to gate: no benchmark samples ran")
    compared = 0
    for r in results:
        name, p1 = f"{r['model']}/{r['suite']}", r["pass@1"]
        if p1 is None:
            if gate.active:
                verdict.check(False, f"{name}: no sample could be scored")
            continue
        if gate.fail_under is not None:
            good = p1 >= gate.fail_under - 1e-12
            verdict.check(good, f"{name}: pass@1 {p1:.4f} {'>=' if good else '<'} fail-under {gate.fail_under:.4f}")
        if gate.baseline is not None:
            base = baseline_for(r, gate.baseline)
            if base is None or base["pass@1"] is None:
                verdict.lines.append(f"SKIP {name}: not in baseline {gate.baseline_path}")
                continue
            compared += 1
            drop = base["pass@1"] - p1
            against = "baseline" if base["model"] == r["model"] else f"baseline {base['model']}/{base['suite']}"
            verdict.check(drop <= gate.max_drop + 1e-12, f"{name}: pass@1 {p1:.4f} vs {against} "
                          f"{base['pass@1']:.4f} (drop {drop:+.4f}, max {gate.max_drop:.4f})")
    if gate.baseline is not None and results and not compared:
        held = ", ".join(sorted({f"{b['model']}/{b['suite']}" for b in gate.baseline})) or "nothing"
        ran = ", ".join(f"{r['model']}/{r['suite']}" for r in results)
        verdict.check(False, f"compared nothing: baseline {gate.baseline_path} holds {held}; this run has {ran}")
    return {"active": gate.active, "ok": verdict.ok, "lines": [for_terminal(line) for line in verdict.lines],
            "fail_under": gate.fail_under, "baseline": gate.baseline_path, "max_drop": gate.max_drop}
