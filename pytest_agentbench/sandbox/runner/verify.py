"""Verifying an agent's workspace: hidden tests in the grader, the workspace's code behind proxies."""

import builtins
import gc
import json
import os
import pickle
import signal
import socket
import sys
import types as _types

from .frames import VERDICT_MARK, read_frame, write_all, write_frame
from .graded import TestDataError, _failure_reason, _first_line, _register_sources
from .hygiene import _close_fds_except, _flush_std, _print_traceback, load_seccomp, nondumpable
from .plain import CandidateFault, _candidate_exception, check_plain, loads_plain


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
