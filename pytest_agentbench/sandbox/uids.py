"""A uid of its own for every live process sandbox, unique across pytest sessions on the host.

RLIMIT_NPROC counts processes per uid, host-wide: two sandboxes sharing a uid would let one's fork bomb make the
other's correct code fail. A claim is an flock on a file named after the uid; the kernel drops it when the
holder dies, so a killed session never leaks a claim. A uid that belongs to a user in the password database, or
that owns a process right now, is passed over.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import tempfile
from pathlib import Path

from ..errors import HarnessError

UID_BASE, UID_COUNT = 61000, 2000
LOCK_DIR = Path(tempfile.gettempdir()) / "agentbench-uids"


def _owns_processes(uid: int) -> bool:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    return True
            except OSError:
                continue
    return False


class UidClaim:
    def __init__(self, uid: int, fd: int | None):
        self.uid = uid
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_free(uid: int) -> bool:
    """Nobody holds a claim on `uid` right now (its holder may have been killed)."""
    try:
        fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def claim() -> UidClaim:
    """Claim a free uid (root), or run as ourselves where bwrap maps us into a user namespace (not root)."""
    if os.geteuid() != 0:
        return UidClaim(os.geteuid(), None)
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    start = (os.getpid() * 7) % UID_COUNT  # spread concurrent sessions over the range
    for i in range(UID_COUNT):
        uid = UID_BASE + (start + i) % UID_COUNT
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _owns_processes(uid):
            os.close(fd)
            continue
        return UidClaim(uid, fd)
    raise HarnessError(f"no free sandbox uid in {UID_BASE}..{UID_BASE + UID_COUNT - 1}")
