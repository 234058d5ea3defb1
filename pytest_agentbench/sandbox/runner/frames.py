"""Frames (an 8-byte big-endian length, then the payload) and the constants every part shares."""

import os
import struct

VERDICT_MARK = "AGENTBENCH-VERDICT"
MAX_FRAME = 64 << 20  # the largest value that may cross between candidate and grader
MAX_ITER_ITEMS = 1 << 20  # an iterator returned by the candidate is materialized up to this many items
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 4, 38, 22, 2
PR_SET_CHILD_SUBREAPER = 36


# -- frames ------------------------------------------------------------------------------------------
def _read_exact(fd, n):
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_frame(fd, cap=MAX_FRAME):
    (n,) = struct.unpack("!Q", _read_exact(fd, 8))
    if n > cap:
        raise ValueError("frame of %d bytes is over the %d-byte cap" % (n, cap))
    return _read_exact(fd, n)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_frame(fd, data):
    write_all(fd, struct.pack("!Q", len(data)) + data)


def frame(data):
    return struct.pack("!Q", len(data)) + data
