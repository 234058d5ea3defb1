"""Kernel-enforced confinement for the process sandbox: bubblewrap + setpriv + prlimit + seccomp.

The recipe is the one that held against every attack tried on these machines (../shared/FACTS.md):
private net/pid/ipc/uts namespaces (no user namespace when root: it would hand back full capabilities),
read-only /usr and interpreter, the workspace bound at /work, size-limited tmpfs /tmp and /dev/shm, a
cleared environment, a uid of our own per xdist worker with no capabilities and no-new-privs, rlimits,
and a seccomp filter against the syscalls that reach outside (namespaces, mount, ptrace, bpf, keyrings,
network sockets). When the command ends, bwrap's pid namespace ends with it, daemons included.
"""
from __future__ import annotations

import errno
import functools
import os
import shutil
import socket
import sys
from pathlib import Path

from ..errors import HarnessError

UID_BASE = 61000
WORKDIR = "/work"
TMPFS_BYTES = 64 << 20
NPROC, NOFILE = 64, 256
INSTALL_HINT = ("the process sandbox needs bubblewrap (bwrap) and util-linux (setpriv, prlimit): "
                "apt-get install bubblewrap util-linux; or --sandbox docker; "
                "--sandbox unconfined runs model code without isolation")

_DENY = ("unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "ptrace", "process_vm_readv",
         "process_vm_writev", "bpf", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
         "kexec_load", "init_module", "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at",
         "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl", "fanotify_init", "io_uring_setup",
         "mknod", "mknodat")
_CLONE_NS = (0x10000000, 0x20000000, 0x40000000, 0x04000000, 0x08000000, 0x00020000, 0x02000000, 0x00000080)
# CLONE_NEWUSER, NEWPID, NEWNET, NEWUTS, NEWIPC, NEWNS, NEWCGROUP, NEWTIME
_DENY_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET)


def missing_tools() -> list[str]:
    return [tool for tool in ("bwrap", "setpriv", "prlimit") if shutil.which(tool) is None]


@functools.lru_cache(maxsize=1)
def seccomp_bpf() -> bytes:
    """The filter, compiled once per process to BPF (bwrap loads it from an fd)."""
    try:
        import pyseccomp as sc
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise HarnessError(f"pyseccomp is needed for the process sandbox: {exc}") from exc
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in _DENY:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            pass  # a syscall this architecture lacks
    for flag in _CLONE_NS:
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags are behind a pointer; libc falls back to clone
    for family in _DENY_FAMILIES:
        f.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.EQ, family))
    fd = os.memfd_create("agentbench-seccomp")
    try:
        with os.fdopen(os.dup(fd), "w+b") as tmp:
            f.export_bpf(tmp)
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


def worker_uid() -> int:
    """One uid per xdist worker: RLIMIT_NPROC counts per uid, so one task's fork bomb cannot starve another's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return UID_BASE + (int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0)


def interpreter(site_packages: bool) -> tuple[list[str], list[str]]:
    """(python argv, prefixes to bind read-only). Stdlib only unless the suite asks for site-packages."""
    if site_packages:
        return [sys.executable, "-I"], sorted({sys.base_prefix, sys.prefix})
    exe = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not exe.exists():
        exe = Path(sys.executable).resolve()
    return [str(exe), "-I", "-S"], [sys.base_prefix]


def _parents(path: str) -> list[str]:
    parts = Path(path).parents
    return [str(p) for p in reversed(list(parts)) if str(p) not in ("/", "/usr")]


def command(argv: list[str], workspace: Path, env: dict[str, str], binds: list[str], seccomp_fd: int, uid: int,
            ro_binds: tuple[tuple[str, str], ...] = (), rlimits: list[str] | None = None) -> list[str]:
    """The bwrap + setpriv (+ prlimit) command line that runs argv confined, workspace at /work."""
    root = os.geteuid() == 0
    cmd = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session",
           "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
           "--symlink", "usr/sbin", "/sbin"]
    if os.path.isdir("/usr/lib64"):
        cmd += ["--symlink", "usr/lib64", "/lib64"]
    for path in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime"):
        cmd += ["--ro-bind-try", path, path]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    # The workspace first: a prefix that lives under the same path (a venv in /work/...) is mounted over it.
    cmd += ["--bind", str(workspace), WORKDIR]
    made = set()
    for prefix in [*binds, *(dst for _, dst in ro_binds)]:
        for parent in _parents(prefix):
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
    for prefix in binds:
        cmd += ["--ro-bind", prefix, prefix]
    for src, dst in ro_binds:
        cmd += ["--ro-bind", src, dst]
    cmd += ["--chdir", WORKDIR, "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    if root:  # no user namespace: drop every capability but the three setpriv needs to give up root
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        cmd += ["--unshare-user"]
    cmd += ["--seccomp", str(seccomp_fd), "--"]
    if root:
        cmd += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs"]
    if rlimits:
        cmd += ["/usr/bin/prlimit", *rlimits, "--"]
    return cmd + argv


def seccomp_fd() -> int:
    """A fresh fd holding the compiled filter (bwrap reads it to the end)."""
    fd = os.memfd_create("agentbench-seccomp", 0)
    os.write(fd, seccomp_bpf())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
