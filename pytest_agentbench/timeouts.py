"""Per-task time limits calibrated on this machine (as EvalPlus does): max(floor, factor x the reference
solution's runtime here). A slow CPU then does not turn correct code into timeouts. Reference runtimes are
measured once per task, sandbox kind and machine, and cached."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from .provenance import CACHE_DIR, cpu_name
from .results.storage import write_atomic

FACTOR = 4.0


@functools.lru_cache(maxsize=1)
def _machine() -> str:
    return hashlib.sha256(f"{cpu_name()}|{os.cpu_count()}".encode()).hexdigest()[:10]


def _cache_file(suite: str, dataset_sha: str | None, sandbox_kind: str) -> Path:
    return CACHE_DIR / "timeouts" / f"{suite}-{(dataset_sha or 'nodata')[:12]}-{sandbox_kind}-{_machine()}.json"


_LOADED: dict[Path, dict[str, float]] = {}  # read once per process, not once per sample


def _load(path: Path) -> dict[str, float]:
    if path not in _LOADED:
        try:
            _LOADED[path] = json.loads(path.read_text())
        except (OSError, ValueError):
            _LOADED[path] = {}
    return _LOADED[path]


def _store(path: Path, task_id: str, seconds: float) -> None:
    """Read-merge-replace: racing xdist workers may drop an entry, which is only measured again."""
    _load(path)[task_id] = round(seconds, 4)
    try:
        try:
            on_disk = json.loads(path.read_text())
        except (OSError, ValueError):
            on_disk = {}
        on_disk.update(_LOADED[path])
        write_atomic(path, json.dumps(on_disk, sort_keys=True))
    except OSError:
        pass


def time_limit(task_id: str, measure, floor: float, *, suite: str, dataset_sha: str | None, sandbox_kind: str) -> float:
    """`measure(limit)` runs the reference solution once and returns (passed, seconds); None: nothing to measure."""
    if measure is None:
        return floor
    path = _cache_file(suite, dataset_sha, sandbox_kind)
    seconds = _load(path).get(task_id)
    if seconds is None:
        passed, seconds = measure(max(floor, 60.0))
        if not passed:
            return floor  # the reference itself does not pass here: nothing to calibrate against
        _store(path, task_id, seconds)
    return max(floor, FACTOR * seconds)


def item_alarm(item, seconds: float) -> None:
    """pytest-timeout's --timeout for a benchmark item, in one line. Its own signal method prints every thread's stack
    and fails the item with a traceback; here the item fails with one line (no stacks), and a sample cut short while
    it was being evaluated is infra (the harness stopped it, not the model's code): --agentbench-resume runs it again.
    Installed through pytest-timeout's pytest_timeout_set_timer hook; cancelled by its cancel hook."""
    import signal

    import pytest

    def fire(signum, frame):
        pytest.fail(f"harness: pytest-timeout: the item ran past --timeout {seconds:g} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    item.cancel_timeout = cancel
