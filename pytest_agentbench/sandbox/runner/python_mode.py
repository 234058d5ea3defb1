"""Plain programs: `python` mode, with a program's own exit status."""

import builtins
import json
import os
import sys

from .frames import read_frame
from .hygiene import _flush_std, _print_traceback, load_seccomp


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
