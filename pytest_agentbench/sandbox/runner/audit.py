"""The audit: what an agent's processes actually did (a ptrace tracer over seccomp RET_TRACE)."""

import ctypes
import json
import os
import signal
import struct
import time

from .frames import write_all
from .hygiene import _libc, load_seccomp, nondumpable

# An audited command runs as a traced child: it asks to be traced (PTRACE_TRACEME), stacks the agent filter (no
# ptrace, no untraced clones, no giving up dumpability) and the audit filter (SECCOMP_RET_TRACE on every syscall
# that opens, creates, renames, links, removes or re-permissions a path), stops itself, and execs. The tracer (the
# process server, or in Docker the exec's own runner) follows every descendant (fork, vfork, clone events) and
# records, however a command was spelled: each program executed (EXEC event: /proc/PID/exe and the new argv, which
# no thread of the old image can change any more), each file opened (read at the syscall's exit from the new fd's
# /proc link, so the path is the file really opened, hard links and symlinks resolved, with its inode), and each
# path created, renamed, linked or removed (read at entry, then confirmed at exit by what the file system shows:
# an effect that cannot be confirmed is recorded as such, and the checks fail closed on it). Without a tracer a
# filtered syscall fails (ENOSYS), so a command cannot outlive or outrun its audit; the tracer's record leaves on a
# channel no agent process can write (the server's own fd, or a line after every agent process is dead, carrying a
# nonce only the tracer held).
PTRACE_TRACEME, PTRACE_CONT, PTRACE_SYSCALL = 0, 7, 24
PTRACE_SETOPTIONS, PTRACE_GETEVENTMSG, PTRACE_GET_SYSCALL_INFO = 0x4200, 0x4201, 0x420E
PTRACE_OPTIONS = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x80 | 0x100000  # SYSGOOD FORK VFORK CLONE EXEC SECCOMP EXITKILL
EV_FORK, EV_VFORK, EV_CLONE, EV_EXEC, EV_SECCOMP = 1, 2, 3, 4, 7
WALL = 0x40000000
AT_FDCWD, AT_REMOVEDIR, AT_EMPTY_PATH, RENAME_EXCHANGE = -100, 0x200, 0x1000, 0x2
O_ACCMODE, O_CREAT, O_TRUNC, O_DIRECTORY, O_TMPFILE = 0o3, 0o100, 0o1000, 0o200000, 0o20200000
MAX_EVENTS = 60000
AUDIT_MARK = "AGENTBENCH-AUDIT"
_INTERPRETER = None


_PTRACE = None


def _ptrace(request, pid, addr=0, data=0):
    global _PTRACE
    if _PTRACE is None:
        _PTRACE = _libc().ptrace
        _PTRACE.restype = ctypes.c_long
        _PTRACE.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    return _PTRACE(request, pid, addr, data)


def _exec_agent(argv, env, req):
    """In the run's process: the filters, and (audited) the request to be traced; then execve. Never returns."""
    audit = req.get("audit")
    if audit and _ptrace(PTRACE_TRACEME, 0) != 0:
        os.write(2, b"sandbox: the audit could not trace the command\n")
        os._exit(126)
    load_seccomp(bytes.fromhex(req.get("agent_bpf") or ""))
    load_seccomp(bytes.fromhex(req.get("nofork_bpf") or ""))
    if audit:
        load_seccomp(bytes.fromhex(audit["bpf"]))
        os.kill(os.getpid(), signal.SIGSTOP)  # the tracer sets its options, then lets us go on
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        os.write(2, ("%s: %s\n" % (argv[0], exc.strerror)).encode())
    os._exit(127)


class _Deadline(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Deadline()


class _Audit:
    """The tracer's record of one audited run: a list of events (dicts), or `lost` with why it is incomplete."""

    def __init__(self, cfg):
        self.names = {int(k): v for k, v in cfg["syscalls"].items()}
        self.roots = tuple(r.rstrip("/") + "/" for r in cfg.get("roots", ()))
        self.events = []
        self.lost = None
        self.exe = {}  # pid -> the program it runs (inherited over fork until it execs)
        self.pending = {}  # pid -> what its syscall at entry will do (checked at its exit)
        self.mem = {}  # pid -> an open /proc/PID/mem

    # -- reading a stopped tracee --------------------------------------------------------------------
    def note_lost(self, why):
        if self.lost is None:
            self.lost = why

    def add(self, event):
        if len(self.events) >= MAX_EVENTS:
            self.note_lost("more than %d file events" % MAX_EVENTS)
            return
        self.events.append(event)

    def syscall_info(self, pid):
        buf = ctypes.create_string_buffer(88)
        n = _ptrace(PTRACE_GET_SYSCALL_INFO, pid, 88, ctypes.addressof(buf))
        if n < 24:
            return None
        raw = buf.raw
        op = raw[0]
        if op == 2:  # exit
            rval, is_error = struct.unpack_from("qB", raw, 24)
            return op, rval, is_error
        if op in (1, 3):  # entry, seccomp
            nr = struct.unpack_from("Q", raw, 24)[0]
            return op, nr, struct.unpack_from("6Q", raw, 32)
        return None

    def read_str(self, pid, addr, limit=4096):
        if not addr:
            return None
        fd = self.mem.get(pid)
        try:
            if fd is None:
                fd = self.mem[pid] = os.open("/proc/%d/mem" % pid, os.O_RDONLY | os.O_CLOEXEC)
            out = b""
            while len(out) < limit:
                page_end = ((addr + len(out)) | 0xFFF) + 1
                chunk = os.pread(fd, min(limit - len(out), page_end - addr - len(out)), addr + len(out))
                if not chunk:
                    break
                cut = chunk.find(b"\0")
                if cut >= 0:
                    return (out + chunk[:cut]).decode("utf-8", "surrogateescape")
                out += chunk
        except OSError:
            return None
        return None

    def forget_mem(self, pid):
        fd = self.mem.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def base(self, pid, dirfd):
        dirfd = _s32(dirfd)
        try:
            return os.readlink("/proc/%d/cwd" % pid if dirfd == AT_FDCWD else "/proc/%d/fd/%d" % (pid, dirfd))
        except OSError:
            return None

    def path_at(self, pid, dirfd, addr, follow=False):
        """The path a syscall names, resolved as the tracee would (its cwd or dirfd; the last component itself
        unless `follow`), or None when it cannot be read."""
        path = self.read_str(pid, addr)
        if path is None:
            return None
        if not path.startswith("/"):
            base = self.base(pid, dirfd)
            if base is None:
                return None
            path = os.path.join(base, path)
        if follow:
            return os.path.realpath(path)
        # The last component itself, its folder as the kernel reaches it: symlinks first, then `..` (never
        # normpath, which would take `L/..` for `.` when L is a link elsewhere).
        head, tail = os.path.split(path.rstrip("/") or "/")
        if tail in ("", ".", ".."):
            return os.path.realpath(path)
        return os.path.join(os.path.realpath(head or "/"), tail)

    def fd_path(self, pid, fd):
        try:
            link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
        except OSError:
            return None, None
        try:
            st = os.stat("/proc/%d/fd/%d" % (pid, fd))
            ident = [st.st_dev, st.st_ino]
        except OSError:
            ident = None
        if link.endswith(" (deleted)"):
            link = link[: -len(" (deleted)")]
        return link, ident

    def inside(self, path):
        return path is not None and (path + "/").startswith(self.roots)

    # -- events ----------------------------------------------------------------------------------------
    def on_exec(self, pid):
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
        except OSError:
            exe = None
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = [a.decode("utf-8", "surrogateescape") for a in f.read(1 << 16).split(b"\0")[:-1]]
        except OSError:
            argv = None
        if exe is None or argv is None:
            self.note_lost("could not read what process %d executed" % pid)
        self.forget_mem(pid)
        self.exe[pid] = exe or ""
        streams = []
        for fd in (0, 1):
            try:
                streams.append(os.readlink("/proc/%d/fd/%d" % (pid, fd)))
            except OSError:
                streams.append(None)
        self.add(
            {
                "op": "exec",
                "pid": pid,
                "exe": exe,
                "argv": argv,
                "cwd": self.base(pid, AT_FDCWD),
                "stdin": streams[0],
                "stdout": streams[1],
            }
        )

    def on_entry(self, pid, nr, a):
        """At a filtered syscall's entry: note what it will do; True when its exit must be seen too."""
        name = self.names.get(nr)
        if name is None or self.exe.get(pid, "") is None:
            return False  # not ours, or the runner's own code before the command's first execve
        if name in ("open", "creat"):
            flags = 0o1101 if name == "creat" else a[1]
            self.pending[pid] = ("open", flags, a[0], AT_FDCWD)
            return True
        if name == "openat":
            self.pending[pid] = ("open", a[2], a[1], a[0])
            return True
        if name == "openat2":
            how = self.read_bytes(pid, a[2], 8)
            self.pending[pid] = ("open", struct.unpack("Q", how)[0] if how else O_CREAT, a[1], a[0])
            return True
        if name in ("unlink", "rmdir", "mkdir", "unlinkat", "mkdirat", "chmod", "fchmodat", "fchmodat2", "truncate"):
            at = name.endswith("at") or name == "fchmodat2"
            path = self.path_at(
                pid,
                a[0] if at else AT_FDCWD,
                a[1] if at else a[0],
                follow=name in ("chmod", "fchmodat", "fchmodat2", "truncate"),
            )
            op = {
                "unlinkat": "rmdir" if a[2] & AT_REMOVEDIR else "unlink",
                "mkdirat": "mkdir",
                "fchmodat": "chmod",
                "fchmodat2": "chmod",
            }.get(name, name)
            self.pending[pid] = (op, path, _lstat(path))
            return True
        if name == "fchmod":
            self.pending[pid] = ("fchmod", _s32(a[0]))
            return True
        if name in ("rename", "renameat", "renameat2", "link", "linkat"):
            if name in ("rename", "link"):
                src, dst = self.path_at(pid, AT_FDCWD, a[0]), self.path_at(pid, AT_FDCWD, a[1])
                flags = 0
            else:
                flags = a[4] if name in ("renameat2", "linkat") else 0
                if name == "linkat" and flags & AT_EMPTY_PATH:
                    src = self.fd_path(pid, _s32(a[0]))[0]
                else:
                    src = self.path_at(pid, a[0], a[1])
                dst = self.path_at(pid, a[2], a[3])
            op = "link" if name.startswith("link") else "rename"
            self.pending[pid] = (op, src, dst, _lstat(src), _lstat(dst), flags)
            return True
        if name in ("symlink", "symlinkat"):
            target = self.read_str(pid, a[0])
            dst = self.path_at(pid, AT_FDCWD if name == "symlink" else a[1], a[1] if name == "symlink" else a[2])
            self.pending[pid] = ("symlink", target, dst, _lstat(dst))
            return True
        if name in ("execve", "execveat"):  # a run that succeeds is recorded at its EXEC event; here, an attempt
            at = name == "execveat"
            self.pending[pid] = (
                "execve",
                self.read_str(pid, a[1] if at else a[0]),
                self.read_argv(pid, a[2] if at else a[1]),
            )
            return True
        if name == "bind":
            raw = self.read_bytes(pid, a[1], min(int(a[2]), 110))
            if raw and len(raw) > 2 and struct.unpack_from("H", raw)[0] == 1 and raw[2:3] not in (b"", b"\0"):
                rel = raw[2:].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                path = rel if rel.startswith("/") else os.path.join(self.base(pid, AT_FDCWD) or "/", rel)
                self.pending[pid] = ("bind", os.path.normpath(path))
                return True
        return False

    def read_bytes(self, pid, addr, size):
        fd = self.mem.get(pid)
        try:
            if fd is None:
                fd = self.mem[pid] = os.open("/proc/%d/mem" % pid, os.O_RDONLY | os.O_CLOEXEC)
            return os.pread(fd, size, addr)
        except OSError:
            return None

    def read_argv(self, pid, addr, limit=256):
        argv = []
        for n in range(limit):
            raw = self.read_bytes(pid, addr + 8 * n, 8) if addr else None
            if not raw or len(raw) < 8:
                break
            pointer = struct.unpack("Q", raw)[0]
            if not pointer:
                break
            argv.append(self.read_str(pid, pointer) or "")
        return argv

    def on_exit(self, pid, rval):
        what = self.pending.pop(pid, None)
        if what is not None and what[0] == "execve" and rval < 0 and self.exe.get(pid, "") is not None:
            if what[1] and what[2] and not what[2][0].startswith("-"):  # a program that could not be run
                self.add({"op": "exec_failed", "pid": pid, "path": what[1], "argv": what[2]})
            return
        if what is None or rval < 0 or self.exe.get(pid, "") is None or what[0] == "execve":
            return  # failed, or the runner's own code before the command's first execve, or a run (its EXEC event)
        op = what[0]
        if op == "open":
            flags = what[1]
            path, ident = self.fd_path(pid, rval)
            if path is None:
                self.note_lost("could not see which file process %d (%s) opened" % (pid, self.exe.get(pid)))
                return
            write = _writes(flags)
            if not write and flags & O_DIRECTORY:
                return  # listing a folder (ls, find, a glob) reads no file
            if path.startswith("pipe:"):  # /dev/fd/N of a pipe (`<(...)`): what flows where
                self.add(
                    {
                        "op": "open",
                        "pid": pid,
                        "path": path,
                        "read": flags & O_ACCMODE != 1,
                        "write": write,
                        "exe": self.exe.get(pid, ""),
                    }
                )
                return
            if self.inside(path):
                event = {
                    "op": "open",
                    "pid": pid,
                    "path": path,
                    "read": flags & O_ACCMODE != 1,
                    "write": write,
                    "ino": ident,
                    "exe": self.exe.get(pid, ""),
                }
                if not write and _interpreter(self.exe.get(pid, "")):
                    event["sha256"] = _fd_sha256(pid, rval)
                self.add(event)
            return
        if op == "fchmod":
            path, _ = self.fd_path(pid, what[1])
            self.add({"op": "chmod", "pid": pid, "path": path, "confirmed": path is not None})
            return
        if op in ("unlink", "rmdir", "mkdir", "chmod", "truncate"):
            path, before = what[1], what[2]
            after = _lstat(path)
            if op in ("unlink", "rmdir"):
                confirmed = path is not None and before is not None and (after is None or after != before)
            elif op == "mkdir":
                confirmed = path is not None and before is None and after is not None
            else:
                confirmed = path is not None and after is not None
            self.add({"op": op, "pid": pid, "path": path, "confirmed": confirmed})
            return
        if op in ("rename", "link"):
            src, dst, src_before, dst_before, flags = what[1:]
            dst_after = _lstat(dst)
            confirmed = None not in (src, dst, src_before) and dst_after == src_before
            if op == "link":  # a link is made only where nothing is
                confirmed = confirmed and dst_before is None
            elif flags & RENAME_EXCHANGE:
                confirmed = confirmed and _lstat(src) == dst_before
            elif dst_before is not None and dst_before == src_before:
                # renaming a file onto another name of itself does nothing: its source must still be there
                confirmed = confirmed and _lstat(src) == src_before
            self.add(
                {
                    "op": op,
                    "pid": pid,
                    "src": src,
                    "path": dst,
                    "confirmed": confirmed,
                    "exchange": bool(flags & RENAME_EXCHANGE),
                }
            )
            return
        if op == "symlink":
            target, dst, before = what[1], what[2], what[3]
            try:
                confirmed = dst is not None and before is None and os.readlink(dst) == target
            except OSError:
                confirmed = False
            self.add({"op": "symlink", "pid": pid, "path": dst, "target": target, "confirmed": confirmed})
            return
        if op == "bind":
            self.add({"op": "bind", "pid": pid, "path": what[1], "confirmed": _lstat(what[1]) is not None})

    def died(self, pid):
        """`pid` ended (or was killed) inside a filtered syscall: the kernel may have done it. A change is recorded
        as unconfirmed (the checks fail closed on it); a read-only open that may not have happened is dropped."""
        what = self.pending.pop(pid, None)
        if what is None or self.exe.get(pid, "") is None:
            return
        op = what[0]
        if op == "execve":
            return
        if op == "open":
            if _writes(what[1]):
                self.add(
                    {
                        "op": "open",
                        "pid": pid,
                        "path": self.path_at(pid, what[3], what[2], follow=True),
                        "read": False,
                        "write": True,
                        "ino": None,
                        "exe": self.exe.get(pid, ""),
                        "confirmed": False,
                    }
                )
            return
        path = what[1] if op != "symlink" else what[2]
        if op in ("rename", "link"):
            self.add({"op": op, "pid": pid, "src": what[1], "path": what[2], "confirmed": False})
        elif op != "fchmod":
            self.add({"op": op, "pid": pid, "path": path, "confirmed": False})
        else:
            self.add({"op": "chmod", "pid": pid, "path": None, "confirmed": False})

    def result(self):
        return {"events": self.events, "lost": self.lost}


def _writes(flags):
    """Does an open with these flags change the file (write access, create, truncate, an O_TMPFILE)?"""
    return bool(flags & O_ACCMODE) or bool(flags & (O_CREAT | O_TRUNC)) or flags & O_TMPFILE == O_TMPFILE


def _s32(value):
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _lstat(path):
    if path is None:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _interpreter(exe):
    """Does this program read its code from files (a shell, Python, Perl, ...)?"""
    global _INTERPRETER
    if _INTERPRETER is None:
        import re

        _INTERPRETER = re.compile(
            r"^(python|pypy|sh|bash|dash|zsh|ksh|mksh|busybox|perl|ruby|node|nodejs|php|lua|"
            r"tclsh|wish|awk|gawk|mawk|nawk|Rscript)[0-9.]*$"
        )
    return bool(exe) and _INTERPRETER.match(os.path.basename(exe)) is not None


def _fd_sha256(pid, fd, limit=64 << 20):
    import hashlib

    digest = hashlib.sha256()
    try:
        with open("/proc/%d/fd/%d" % (pid, fd), "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                limit -= len(chunk)
                if limit < 0:
                    return None
    except OSError:
        return None
    return digest.hexdigest()


def trace_run(pid, timeout, cfg):
    """Trace the audited child `pid` (stopped by its own SIGSTOP, or already gone) and all it starts, until it ends
    or `timeout` passes. Returns (wait status of `pid` or None, timed_out, audit record). Processes it leaves
    behind are stopped at their next filtered syscall; the caller kills them (nothing unrecorded can happen)."""
    audit = _Audit(cfg)
    deadline = time.monotonic() + timeout
    try:
        _, status = os.waitpid(pid, WALL)
    except ChildProcessError:
        audit.note_lost("the command's process vanished before it started")
        return None, False, audit.result()
    if not os.WIFSTOPPED(status):
        audit.note_lost("the command ended before its audit began")
        return status, False, audit.result()
    if _ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_OPTIONS) != 0 or _ptrace(PTRACE_CONT, pid, 0, 0) != 0:
        audit.note_lost("the audit could not follow the command")
        os.kill(pid, signal.SIGKILL)
    tracees = {pid}
    audit.exe[pid] = None  # until its execve: our own code
    main_status, timed_out = None, False
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        while tracees and main_status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            signal.setitimer(signal.ITIMER_REAL, remaining)
            try:
                p, status = os.waitpid(-1, WALL)
            except _Deadline:
                timed_out = True
                break
            except ChildProcessError:
                break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                tracees.discard(p)
                audit.died(p)
                audit.forget_mem(p)
                if p == pid:
                    main_status = status
                continue
            if not os.WIFSTOPPED(status):
                continue
            tracees.add(p)
            sig, event = os.WSTOPSIG(status), (status >> 16) & 0xFF
            resume, inject = PTRACE_CONT, 0
            if sig == signal.SIGTRAP and event == EV_SECCOMP:
                info = audit.syscall_info(p)
                if info is None or info[0] != 3:
                    audit.note_lost("could not read a syscall of process %d" % p)
                elif audit.on_entry(p, info[1], info[2]):
                    resume = PTRACE_SYSCALL
            elif sig == signal.SIGTRAP | 0x80:
                info = audit.syscall_info(p)
                if info is not None and info[0] == 2:
                    audit.on_exit(p, info[1])
                else:
                    audit.pending.pop(p, None)
            elif sig == signal.SIGTRAP and event == EV_EXEC:
                audit.on_exec(p)
            elif sig == signal.SIGTRAP and event in (EV_FORK, EV_VFORK, EV_CLONE):
                msg = ctypes.c_ulong(0)
                if _ptrace(PTRACE_GETEVENTMSG, p, 0, ctypes.addressof(msg)) == 0:
                    child = int(msg.value)
                    tracees.add(child)
                    audit.exe.setdefault(child, audit.exe.get(p, ""))
                    if audit.exe.get(p, "") is not None:
                        audit.add({"op": "fork", "pid": p, "child": child, "thread": event == EV_CLONE})
            elif sig == signal.SIGTRAP:
                pass  # another ptrace event (vfork done)
            elif sig in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
                pass  # a new process's first stop, or a stop request: nothing stops under our watch
            else:
                inject = sig
            _ptrace(resume, p, 0, inject)  # ESRCH: it was killed meanwhile
    finally:
        signal.signal(signal.SIGALRM, old)
        for fd in list(audit.mem.values()):
            os.close(fd)
        audit.mem.clear()
        left = tracees - {pid} if main_status is not None else tracees
        for p in left:
            try:  # stopped at a filtered syscall or running: either way it does nothing more
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        for p in left:
            try:
                _, status = os.waitpid(p, WALL)
            except OSError:
                continue
            audit.died(p)  # killed by us inside a syscall: it may have run
            if p == pid:
                main_status = status
    for p in list(audit.pending):
        audit.died(p)
    return main_status, timed_out, audit.result()


def _reap_tracees():
    """Kill every other process we may signal and reap what we trace or parent, until none is left."""
    for _ in range(2000):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        try:
            pid, _ = os.waitpid(-1, WALL | os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.002)


def _audited_exec(transport):
    """Docker's audited `exec`: this process is the tracer of the command it forks (the same uid: killing the
    tracer ends the command too, PTRACE_O_EXITKILL, and loses the record, which the host reports as lost).
    The record is the last line of stdout, after every process of the command is dead."""
    nonce = transport["audit"].pop("nonce")
    nondumpable()
    pid = os.fork()
    if pid == 0:
        _exec_agent(transport["argv"], dict(os.environ), transport)
    status, timed_out, record = trace_run(pid, float(transport.get("timeout") or 1e9), transport["audit"])
    _reap_tracees()
    record["exit"] = None if status is None or timed_out else os.waitstatus_to_exitcode(status)
    record["timed_out"] = timed_out
    blob = _pack_record(record)
    write_all(1, ("\n%s %s %s\n" % (AUDIT_MARK, nonce, blob)).encode())
    return 0


def _pack_record(record):
    import base64
    import zlib

    return base64.b64encode(zlib.compress(json.dumps(record, separators=(",", ":")).encode(), 6)).decode()


def unpack_blob(data):
    """An audit record as _pack_record wrote it (bytes or str); ValueError when it is not one."""
    import base64
    import zlib

    try:
        record = json.loads(zlib.decompress(base64.b64decode(data)))
    except (ValueError, TypeError, zlib.error) as exc:
        raise ValueError("not an audit record: %s" % exc)
    if not isinstance(record, dict) or not isinstance(record.get("events"), list):
        raise ValueError("not an audit record")
    return record


def unpack_record(text, nonce):
    """(the audit record after AUDIT_MARK and `nonce` (the last such line) or None, the text before it)."""
    mark = "%s %s " % (AUDIT_MARK, nonce)
    at = text.rfind("\n" + mark)
    if at < 0:
        return None, text
    line = text[at + 1 + len(mark) :].split("\n", 1)[0]
    try:
        return unpack_blob(line), text[:at]
    except ValueError:
        return None, text[:at]
