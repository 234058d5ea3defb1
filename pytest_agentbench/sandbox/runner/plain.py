"""Plain data across the candidate/grader boundary: a restricted unpickler and a walk of every value."""

import builtins
import io
import pickle

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
