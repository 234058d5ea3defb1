"""Process hygiene: libc, dumpability, seccomp filters, inherited fds, tracebacks that hide the runner."""

import ctypes
import os
import sys

from .frames import PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER

_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def nondumpable():
    """Our memory, fds and environ in /proc become root-only: code of the same uid cannot read them."""
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp(bpf):
    """Stack a compiled seccomp filter (raw sock_filter array, made on the host by pyseccomp) on this process."""
    if not bpf:
        return
    libc = _libc()
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if (
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0
    ):
        err = ctypes.get_errno()
        raise OSError(err, "cannot load the seccomp filter: " + os.strerror(err))


def _close_fds_except(keep):
    keep = sorted(set(keep))
    low = 0
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


_OWN_FILES = {"<string>", globals().get("__file__", "<string>")}


def _print_traceback(exc):
    """The traceback without this runner's own frames: what the candidate or the tests did, nothing else."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    try:
        traceback.print_exception(type(exc), exc, tb)
    except BaseException:
        pass
