"""Kernel-enforced confinement for the process sandbox: bubblewrap + setpriv + seccomp (+ a memory cgroup).

The recipe is the one that held against every attack tried on these machines (docs/sandbox.md): private
net/pid/ipc/uts/cgroup namespaces (no user namespace when root: it would hand back full capabilities), a
cleared environment, a uid of its own (uids.py) with no capabilities and no-new-privs, the seccomp filter of
seccomp.py. The file system holds only what a run needs, each host path bound read-only at its own path (so
/proc/self/mountinfo shows nothing the sandbox cannot already see): /usr, a few /etc files, the interpreter,
its stdlib (site-packages masked unless the suite asks for installed packages) and, for those suites, the
environment's prefix. The workspace, /tmp and /dev/shm are size-limited tmpfs mounts that exist only inside.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
import sysconfig
from pathlib import Path

TMPFS_BYTES = 64 << 20
NPROC, NOFILE = 64, 256
INSTALL_HINT = (
    "the process sandbox needs bubblewrap (bwrap) and util-linux (setpriv): "
    "apt-get install bubblewrap util-linux; or --sandbox docker; "
    "--sandbox unconfined runs model code without isolation"
)
WORKDIRS = ("/work", "/workspace", "/sandbox-work")


def missing_tools() -> list[str]:
    return [tool for tool in ("bwrap", "setpriv") if shutil.which(tool) is None]


def interpreter(site_packages: bool) -> tuple[list[str], list[str], list[str]]:
    """(python argv, host paths to bind read-only, paths to mask with an empty tmpfs)."""
    base = sys.base_prefix
    paths = sysconfig.get_paths(
        vars={"base": base, "platbase": base, "installed_base": base, "installed_platbase": base}
    )
    exe = Path(base) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not exe.exists():
        exe = Path(sys.executable).resolve()
    binds = [str(exe), paths["stdlib"]]
    if paths["platstdlib"] != paths["stdlib"]:
        binds.append(paths["platstdlib"])
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        lib = Path(sysconfig.get_config_var("LIBDIR") or "") / (sysconfig.get_config_var("INSTSONAME") or "")
        if lib.is_file():
            binds.append(str(lib.resolve()))
    masks = [p for p in site.getsitepackages([base]) if os.path.isdir(p)]
    if site_packages:  # the environment's own prefix (a venv's site-packages and scripts, e.g. pytest)
        if sys.prefix != base:
            binds.append(sys.prefix)
            binds.extend(hop for hop in _link_hops(sys.executable) if not hop.startswith(sys.prefix + "/"))
            return [sys.executable, "-I"], _outermost(binds), masks
        return [str(exe), "-I"], _outermost(binds), []
    return [str(exe), "-I", "-S"], _outermost(binds), masks


def _link_hops(path: str) -> list[str]:
    """Every path a symlink chain passes through (a venv's bin/python -> .../bin/python3 -> python3.11): each
    must exist inside for the venv's interpreter to start and find its pyvenv.cfg."""
    hops, current = [], path
    for _ in range(40):
        hops.append(current)
        if not os.path.islink(current):
            break
        current = os.path.join(os.path.dirname(current), os.readlink(current))
        current = os.path.normpath(current)
    return hops


def _outermost(paths: list[str]) -> list[str]:
    """Sorted, without paths that lie inside another bound path."""
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


def workdir(binds: list[str]) -> str:
    """The workspace's path inside: /work, unless a bound path lives there (a venv under /work/...)."""
    for candidate in WORKDIRS:
        if not any(b == candidate or b.startswith(candidate + "/") for b in binds):
            return candidate
    raise RuntimeError("no free workspace path")


def _parents(path: str) -> list[str]:
    return [str(p) for p in reversed(list(Path(path).parents)) if str(p) not in ("/", "/usr")]


def identity_files(uid: int, home: str) -> tuple[bytes, bytes]:
    """/etc/passwd and /etc/group that name the claimed uid `agent`. The uid itself is whichever one uids.py
    claimed, so without a name for it `ls -l`, `id` and `git log` would show a number that changes from run to
    run and between -n 0 and -n 2: the model would read a different workspace each time, and a trace could not be
    reproduced. A name also keeps tools that look the user up (getpass, git, pip) from failing."""
    passwd = (
        f"root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:{uid}:{uid}:agent:{home}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\nagent:x:{uid}:\nnogroup:x:65534:\n"
    return passwd.encode(), group.encode()


def command(
    argv: list[str],
    *,
    workdir: str,
    disk_bytes: int,
    env: dict[str, str],
    binds: list[str],
    masks: list[str],
    seccomp_fd: int,
    uid: int,
    identity_fds: tuple[int, int] | None = None,
) -> list[str]:
    """The bwrap + setpriv command line that runs argv confined, in a fresh tmpfs workspace at `workdir`.
    identity_fds: fds holding /etc/passwd and /etc/group (identity_files) for the sandbox's own."""
    root = os.geteuid() == 0
    cmd = [
        "bwrap",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/sbin",
        "/sbin",
    ]
    if os.path.isdir("/usr/lib64"):
        cmd += ["--symlink", "usr/lib64", "/lib64"]
    # bwrap makes the parents of a bind 0700 root-owned unless told otherwise: the sandbox's uid could not then
    # read /etc/ld.so.cache (every program start fell back to a path search) nor /etc/passwd.
    cmd += ["--perms", "0755", "--dir", "/etc"]
    for path in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/gitconfig"):
        cmd += ["--ro-bind-try", path, path]
    if identity_fds is not None:
        cmd += [
            "--perms",
            "0644",
            "--ro-bind-data",
            str(identity_fds[0]),
            "/etc/passwd",
            "--perms",
            "0644",
            "--ro-bind-data",
            str(identity_fds[1]),
            "/etc/group",
        ]
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        "/dev/shm",
        "--perms",
        "1777",
        "--size",
        str(disk_bytes),
        "--tmpfs",
        workdir,
    ]
    made = set()
    for path in binds:
        for parent in _parents(path):
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
    for path in binds:
        cmd += ["--ro-bind", path, path]
    for path in masks:
        cmd += ["--perms", "0555", "--tmpfs", path]
    cmd += ["--chdir", workdir, "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    if root:  # no user namespace: drop every capability but the three setpriv needs to give up root
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        cmd += ["--unshare-user"]
    cmd += ["--seccomp", str(seccomp_fd), "--"]
    if root:
        cmd += [
            "/usr/bin/setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
        ]
    return cmd + argv
