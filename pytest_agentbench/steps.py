"""Set-up steps that may take long (starting a model server, dequantizing a GGUF): whoever shows the run (the
live view, plugin/live.py) listens; where nobody listens (xdist workers, a view that is off) a step is a plain timer.
Lower layers (serving, backends) report steps here without knowing about the terminal."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

_LISTENER: Any = None  # the live view of this process (only the controller has one), or None


def listen(view: Any) -> Any:
    """Make `view` (step_begin/step_end) the listener; returns the previous one (to put back when it stops)."""
    global _LISTENER
    previous, _LISTENER = _LISTENER, view
    return previous


def listener() -> Any:
    return _LISTENER


@contextlib.contextmanager
def step(what: str, always: bool = False, server_of: str | None = None) -> Iterator[Step]:
    """A set-up step that may take long: shown while it runs and, when it took a second or more (or `always`), one
    line with how long (`what: RESULT, done in 2.1 s`; set `.result` on the yielded Step). `server_of`: the model
    whose server it starts (the bar's serving line shows it). A no-op timer where no view runs (xdist workers, a view
    that is off)."""
    current = Step(what, always, server_of)
    view = _LISTENER
    if view is not None:
        view.step_begin(current)
    try:
        yield current
    except BaseException:
        current.failed = True
        raise
    finally:
        if view is not None:
            view.step_end(current)


class Step:
    def __init__(self, what: str, always: bool = False, server_of: str | None = None):
        self.what = what
        self.always = always
        self.server_of = server_of
        self.result = ""
        self.failed = False
        self.started = time.monotonic()
        self.announced = False

    def line(self) -> str:
        took = time.monotonic() - self.started
        if self.failed:
            return f"agentbench: {self.what}: failed after {took:.1f} s"
        return f"agentbench: {self.what}: {self.result + ', ' if self.result else ''}done in {took:.1f} s"
