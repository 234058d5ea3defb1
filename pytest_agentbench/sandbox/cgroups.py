"""A memory cgroup per process-sandbox server: bounds a run's total (every process it starts, plus the files it
keeps in its RAM-backed /work, /tmp and /dev/shm), where RLIMIT_AS bounds only each process on its own.

cgroup v1 (a `memory` hierarchy) or v2 (the unified tree with the memory controller enabled for children), as
root. Where neither can be made (not root, no controller), `create` returns None and the run is bounded per
process only; the report says which (`memory_bound`). The peak it records feeds the report's memory figures.
"""

from __future__ import annotations

import os
from pathlib import Path

V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


class MemoryCgroup:
    def __init__(self, path: Path, v2: bool):
        self.path = path
        self.v2 = v2
        self.limit: int | None = None  # None: unlimited, as a new cgroup starts

    @classmethod
    def create(cls, name: str) -> MemoryCgroup | None:
        if os.geteuid() != 0:
            return None
        if (V1 / "memory.limit_in_bytes").exists():
            base, v2 = V1, False
        elif (V2 / "cgroup.controllers").exists() and "memory" in _read(V2 / "cgroup.subtree_control").split():
            base, v2 = V2, True
        else:
            return None
        path = base / name
        try:
            if path.exists():
                path.rmdir()  # a leftover of a killed session (empty: its processes died with it)
            path.mkdir()
        except OSError:
            return None
        return cls(path, v2)

    @staticmethod
    def sweep(prefix: str, is_stale) -> None:
        """Remove empty cgroups `prefix<uid>` of sessions that were killed (atexit never ran for them)."""
        for base in (V1, V2):
            try:
                entries = [p for p in base.iterdir() if p.name.startswith(prefix)]
            except OSError:
                continue
            for path in entries:
                suffix = path.name[len(prefix) :]
                if suffix.isdigit() and is_stale(int(suffix)):
                    try:
                        path.rmdir()  # fails, harmlessly, while a process is still inside
                    except OSError:
                        pass

    def set_limit(self, limit: int) -> None:
        """Set the memory limit (no swap beyond it); a no-op when unchanged."""
        if limit == self.limit:
            return
        try:
            if self.v2:
                _write(self.path / "memory.max", limit)
                _write(self.path / "memory.swap.max", 0, missing_ok=True)
            else:
                memsw = self.path / "memory.memsw.limit_in_bytes"
                lowering = self.limit is None or limit < self.limit
                first, second = (
                    ("memory.limit_in_bytes", memsw.name) if lowering else (memsw.name, "memory.limit_in_bytes")
                )
                for name in (first, second):  # memsw must stay >= the limit at every step
                    _write(self.path / name, limit, missing_ok=name == memsw.name)
            self.limit = limit
        except OSError:
            pass  # above the current usage only matters between runs, when usage is near zero

    def enter(self) -> None:
        """Move the calling process into the cgroup (used between fork and exec of the sandbox)."""
        _write(self.path / "cgroup.procs", os.getpid())

    def peak_bytes(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(self.path / name))
        except (OSError, ValueError):
            return None

    def destroy(self) -> None:
        """Remove the cgroup once the sandbox's last processes are gone (its pid namespace dies asynchronously)."""
        import time

        for _ in range(40):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.025)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: int, missing_ok: bool = False) -> None:
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except FileNotFoundError:
        if not missing_ok:
            raise
