"""The seccomp filters, compiled on the host (PyPI `pyseccomp`) to raw BPF that the sandbox loads.

- `base_bpf()`: every run in every sandbox. Denies what reaches outside a sandbox: namespaces, mounts, ptrace and
  cross-process memory or fd access, bpf, keyrings, perf, userfaultfd, io_uring, kernel modules, device nodes, and
  every socket family but AF_UNIX (no INET, INET6, NETLINK, PACKET, VSOCK, ...). The process sandbox hands it to
  bwrap; in the Docker sandbox the runner stacks it on Docker's default profile before anything else runs.
- `agent_bpf()`: every run's own processes (not the sandbox's process server, which traces audited runs): no
  ptrace, no clone that escapes a tracer (CLONE_UNTRACED), no giving up dumpability (which would hide a process's
  files from its audit). The server itself may ptrace its own runs, nothing else: base_bpf keeps everything else.
- `audit_bpf()` with `audit_syscalls()`: an audited command's processes stop for their tracer (SECCOMP_RET_TRACE) at
  every syscall that opens, creates, renames, links, removes or re-permissions a path (runner.trace_run).
- `nofork_bpf()`: candidates of suites that need no processes (HumanEval, HumanEvalFix, tool-use code): fork, vfork
  and clone without CLONE_THREAD fail, so a candidate cannot fork an oracle search; threads still work.
"""

from __future__ import annotations

import errno
import functools
import os
import socket

from ..errors import HarnessError

DENY = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "acct",
    "quotactl",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "mknod",
    "mknodat",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "lookup_dcookie",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "iopl",
    "ioperm",
    "clock_adjtime",
    "settimeofday",
    "adjtimex",
    "clock_settime",
    "move_pages",
    "migrate_pages",
)
# CLONE_NEWUSER, NEWPID, NEWNET, NEWUTS, NEWIPC, NEWNS, NEWCGROUP, NEWTIME
CLONE_NS = (0x10000000, 0x20000000, 0x40000000, 0x04000000, 0x08000000, 0x00020000, 0x02000000, 0x00000080)
CLONE_THREAD = 0x00010000
CLONE_UNTRACED = 0x00800000
PR_SET_DUMPABLE = 4
#: what an audited command stops at (runner._Audit.on_entry knows each one's arguments)
AUDITED = (
    "open",
    "openat",
    "openat2",
    "creat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "truncate",
    "bind",
    "execve",
    "execveat",
)


def _compile(build) -> bytes:
    try:
        import pyseccomp as sc
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise HarnessError(f"pyseccomp is needed for the sandbox: {exc}") from exc
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    build(sc, f)
    fd = os.memfd_create("agentbench-seccomp")
    try:
        with os.fdopen(os.dup(fd), "w+b") as tmp:
            f.export_bpf(tmp)
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


def _deny(sc, f, name: str, err: int, *args) -> None:
    try:
        f.add_rule(sc.ERRNO(err), name, *args)
    except (RuntimeError, ValueError, OSError):
        pass  # a syscall this architecture or libseccomp does not know


@functools.lru_cache(maxsize=1)
def base_bpf() -> bytes:
    def build(sc, f):
        for name in DENY:
            _deny(sc, f, name, errno.EPERM)
        for flag in CLONE_NS:
            _deny(sc, f, "clone", errno.EPERM, sc.Arg(0, sc.MASKED_EQ, flag, flag))
        _deny(sc, f, "clone3", errno.ENOSYS)  # its flags sit behind a pointer; libc falls back to clone
        for name in ("socket", "socketpair"):
            _deny(sc, f, name, errno.EAFNOSUPPORT, sc.Arg(0, sc.NE, socket.AF_UNIX))

    return _compile(build)


@functools.lru_cache(maxsize=1)
def nofork_bpf() -> bytes:
    def build(sc, f):
        for name in ("fork", "vfork"):
            _deny(sc, f, name, errno.EPERM)
        _deny(sc, f, "clone", errno.EPERM, sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        _deny(sc, f, "clone3", errno.ENOSYS)

    return _compile(build)


@functools.lru_cache(maxsize=1)
def agent_bpf() -> bytes:
    def build(sc, f):
        _deny(sc, f, "ptrace", errno.EPERM)
        _deny(sc, f, "clone", errno.EPERM, sc.Arg(0, sc.MASKED_EQ, CLONE_UNTRACED, CLONE_UNTRACED))
        _deny(sc, f, "prctl", errno.EPERM, sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, PR_SET_DUMPABLE))  # an int

    return _compile(build)


@functools.lru_cache(maxsize=1)
def audit_bpf() -> bytes:
    def build(sc, f):
        for name in AUDITED:
            try:
                f.add_rule(sc.TRACE(0), name)
            except (RuntimeError, ValueError, OSError):
                pass  # not a syscall of this architecture (aarch64 has only the *at forms)

    return _compile(build)


@functools.lru_cache(maxsize=1)
def audit_syscalls() -> dict[int, str]:
    """{syscall number: name} of AUDITED on this architecture (the runner reads numbers, not names)."""
    import pyseccomp as sc

    found = {}
    for name in AUDITED:
        try:
            nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
        except (RuntimeError, ValueError, OSError):
            continue
        if nr >= 0:
            found[nr] = name
    return found


def memfd(data: bytes) -> int:
    """A fresh fd holding `data` (a compiled filter, a file's content) for bwrap, which reads it to the end."""
    fd = os.memfd_create("agentbench", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
