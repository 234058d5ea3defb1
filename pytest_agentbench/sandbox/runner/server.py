"""The warm process server of the process sandbox (the zygote): `serve()`."""

import gc
import json
import os
import signal
import socket
import sys
import time

from .audit import WALL, _exec_agent, _pack_record, trace_run
from .entry import MODES
from .files import remove_contents
from .frames import PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, read_frame, write_all, write_frame
from .graded import _candidate_process, _graded_header, _grader_finish
from .hygiene import _close_fds_except, _flush_std, _libc, load_seccomp

SCRATCH = ("/tmp", "/dev/shm")
#: Imported once by the server, so every forked run finds them loaded (a fork is cheap, an import is not): what
#: this runner imports lazily, and the stdlib modules benchmark data imports most. `random` reseeds itself in
#: every forked child (os.register_at_fork), so runs do not share a random sequence.
PRELOAD = (
    "resource",
    "linecache",
    "tokenize",
    "traceback",
    "ast",
    "collections",
    "typing",
    "math",
    "random",
    "copy",
    "string",
    "re",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "hashlib",
)


def _high(fd):
    """Move an fd above the stdio range (10+), so installing a run's stdio cannot clobber it."""
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return new


def _enter_run(req, fds, keep=()):
    """Become the run: its own session, its fds as 0, 1, 2 (and 3: the verdict), nothing else open but `keep`
    (returned at their new numbers), its workspace, environment and limits."""
    import resource

    os.setsid()
    keep = [_high(fd) for fd in keep]
    fds = [_high(fd) for fd in fds]
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_fds_except(set(range(len(fds))) | set(keep))
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    for name, value in req["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    return keep


def _child(req, fds):
    """In a forked child: enter the run; then the runner mode or an execve (traced by the server when audited)."""
    _enter_run(req, fds)
    if "argv" in req:
        _exec_agent(req["argv"], req["env"], req)
    load_seccomp(bytes.fromhex(req.get("agent_bpf") or ""))
    sys.argv = ["runner", req["mode"]]
    code = MODES[req["mode"]](0, 3) if req["mode"] in ("graded", "verify") else MODES[req["mode"]](0)
    _flush_std()
    os._exit(code or 0)


class _Spare:
    """A grader and a candidate forked ahead of the next graded request, while the host is busy with the last
    result: the run then starts without a fork on its path. Both come from the server, which never holds tests;
    the candidate gets its source from the grader, which reads the tests only after handing it over."""

    def __init__(self):
        z_ctl, r_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # server -> grader: the request
        g_set, c_set = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # grader -> candidate: its set-up
        g_rpc, c_rpc = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)  # the calls
        self.candidate = os.fork()
        if self.candidate == 0:
            _close_fds_except({c_set.fileno(), c_rpc.fileno()})
            try:
                _spare_candidate(c_set.fileno(), c_rpc.fileno())
            finally:
                os._exit(3)
        self.pid = os.fork()
        if self.pid == 0:
            _close_fds_except({r_ctl.fileno(), g_set.fileno(), g_rpc.fileno()})
            try:
                _spare_grader(r_ctl.fileno(), g_set.fileno(), g_rpc.fileno(), self.candidate)
            finally:
                os._exit(3)
        for sock in (r_ctl, g_set, g_rpc, c_set, c_rpc):
            sock.close()
        self.ctl = z_ctl


def _recv_request(fd, maxfds):
    """One message and its fds from a socket fd we keep owning (a socket object would close it when collected)."""
    sock = socket.socket(fileno=fd)
    try:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, maxfds)
    finally:
        sock.detach()
    if not msg:
        os._exit(0)
    return json.loads(msg), fds


def _spare_grader(ctl_fd, set_fd, rpc_fd, candidate):
    req, fds = _recv_request(ctl_fd, 4)
    set_fd, rpc_fd = _enter_run(req, fds, keep=(set_fd, rpc_fd))
    load_seccomp(bytes.fromhex(req.get("agent_bpf") or ""))
    header, source = _graded_header(0)
    setup = {
        "cwd": req["cwd"],
        "env": req["env"],
        "rlimits": req["rlimits"],
        "header": header,
        "agent_bpf": req.get("agent_bpf"),
    }
    set_sock = socket.socket(fileno=set_fd)
    socket.send_fds(set_sock, [json.dumps(setup).encode()], [1, 2])
    set_sock.close()
    write_frame(rpc_fd, source.encode("utf-8", "surrogatepass"))
    del source
    code = _grader_finish(0, 3, header, rpc_fd, candidate)
    _flush_std()
    os._exit(code)


def _spare_candidate(set_fd, rpc_fd):
    req, fds = _recv_request(set_fd, 2)
    (rpc_fd,) = _enter_run(req, [os.open(os.devnull, os.O_RDONLY)] + list(fds), keep=(rpc_fd,))
    load_seccomp(bytes.fromhex(req.get("agent_bpf") or ""))
    source = read_frame(rpc_fd).decode("utf-8", "replace")
    _candidate_process(source, req["header"], rpc_fd)


def _reap_everything(me):
    """Kill every process of our uid in the namespace (daemons, fork bombs) and reap our own children."""
    for _ in range(500):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG | WALL)
            except ChildProcessError:
                break
            if pid == 0:
                break
        # zombies count too: they hold pids (and RLIMIT_NPROC slots) until reaped, by us or by bwrap's init
        if not [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]:
            return
        time.sleep(0.002)


def _wipe_scratch():
    for top in SCRATCH:
        try:
            remove_contents(top)
        except OSError:
            pass


def serve():
    """The zygote: confined, warm, non-dumpable. fd 0 is a unix socket to the host; each request (JSON plus the
    run's fds) is a fork; when it ends or its time is up, everything left in the namespace is killed, /tmp and
    /dev/shm are emptied, and one JSON line answers. `confined` is false for --sandbox unconfined (then only the
    run's own session is killed and the host's /tmp is left alone)."""
    confined_mode = os.environ.get("AGENTBENCH_CONFINED") == "1"
    libc = _libc()
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    import select

    ctl = socket.socket(fileno=0)
    me = os.getpid()
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    gc.collect()
    gc.freeze()  # forked runs then leave the server's own objects (and their pages) alone
    ctl.sendall(b'{"ready": true}\n')
    spare = None
    while True:
        if confined_mode and spare is None:
            spare = _Spare()  # the next graded run's processes, forked while the host handles the last result
        msg, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 4)
        if not msg:
            return
        req = json.loads(msg)
        if req.get("op") == "wipe":  # between tests: every process of the last run is already dead
            try:
                for top in [req["cwd"], *req.get("scratch", ())]:
                    remove_contents(top)
                answer = {"ok": True}
            except OSError as exc:
                answer = {"ok": False, "error": str(exc)}
            for fd in fds:
                os.close(fd)
            ctl.sendall(json.dumps(answer).encode() + b"\n")
            continue
        started = time.monotonic()
        audit = audit_fd = None
        if req.get("audit"):  # fds: the run's three, then the channel for its audit record (ours alone)
            audit_fd = fds.pop()
        if req.get("mode") == "graded" and spare is not None:
            socket.send_fds(spare.ctl, [msg], fds)
            pid = spare.pid
        else:
            pid = os.fork()
            if pid == 0:
                try:
                    _child(req, fds)
                except BaseException as exc:
                    os.write(2, ("sandbox: cannot start: %s: %s\n" % (type(exc).__name__, exc)).encode())
                os._exit(127)
        for fd in fds:
            os.close(fd)
        if req.get("audit"):
            status, timed_out, audit = trace_run(pid, req["timeout"], req["audit"])
        else:
            pidfd = os.pidfd_open(pid)
            timed_out = not select.select([pidfd], [], [], req["timeout"])[0]
            os.close(pidfd)
        if audit is not None:  # the command and all it started are dead and reaped by now
            try:
                write_all(audit_fd, _pack_record(audit).encode())
            except OSError:
                pass
            os.close(audit_fd)
        elif timed_out:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            os.kill(pid, signal.SIGKILL)
        if audit is None:
            _, status = os.waitpid(pid, WALL)
        elif status is None:
            status = 9  # WIFSIGNALED(SIGKILL): it never reported an end
        seconds = time.monotonic() - started
        if confined_mode:
            _reap_everything(me)  # the spare too, used or not: the next one is forked afresh
            if spare is not None:
                spare.ctl.close()
                spare = None
            _wipe_scratch()
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        code = os.waitstatus_to_exitcode(status)
        ctl.sendall(json.dumps({"exit": code, "timed_out": timed_out, "seconds": seconds}).encode() + b"\n")
