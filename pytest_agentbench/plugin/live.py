"""The run on the terminal while it goes, on the controller (where results arrive: the xdist controller, or the
single process).

- On a terminal, a live bar (rich) under pytest's own output: items done of all with the time so far and an ETA,
  per model and suite the running pass@1 with its 95% interval (stats.pass_at_k_estimate, as the report has it),
  tokens per second of model time, the outcome counts, how each model is served, and the longest-running item.
- Not on a terminal (CI logs), one plain line every `--agentbench-live-every` seconds; under `-q`, nothing but
  warnings. `--agentbench-live bar|lines|off` chooses.
- A model that falls back to in-process, or whose server fails, is a warning line at once, and long set-up steps
  (`step`: starting a model server, dequantizing a GGUF) say what they do and, when they end, how long they took.

pytest's own output is never rewritten or hidden: while the view runs, the file of pytest's terminal writer is a
tap (`screens.Tap`) that passes every character on, in order with the view's lines (one lock). With the bar, the line
pytest has not finished yet (progress dots) is drawn as the bar's first line until pytest ends it, then printed
above the bar as pytest wrote it; in lines mode a line of the view's ends pytest's unfinished line, whose dots go on
below it. The work per item is a few counter updates; estimates and the bar are computed when the view is drawn
(twice a second), never per item.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

from ..sanitize import for_terminal
from ..steps import Step, listen, listener
from .screens import BarScreen, LineScreen, Screen
from .tally import SHOWN_GROUPS, Tally, clock, group_text, progress_text, serving_text, status_line

MODES = ("auto", "bar", "lines", "off")
TICK_S = 0.5  # how often the bar is redrawn (the estimates with it) and the broker's notes are read
STEP_SHOWN_AFTER = 1.0  # a set-up step shorter than this prints nothing


class LiveView:
    """The controller's view of the run; fed by ControllerHooks (plugin.py)."""

    def __init__(self, controller, config):
        self.controller = controller
        self.config = config
        self.mode = "off"
        self.tally = Tally()
        self.screen: Screen | None = None
        self.steps: list[Step] = []
        self.queued: list[tuple[str, bool]] = []  # lines waiting for the next hook (off mode): (text, warn)
        self.announced: set[tuple[str, str]] = set()
        self.benchmark_items: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_line = 0.0
        self._seen = 0
        self._previous: LiveView | None = None
        self._waking = threading.Lock()

    # -- start and stop ---------------------------------------------------------------------------------------
    def choose(self) -> str:
        opts = self.controller.run.options
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        tw = getattr(tr, "_tw", None)
        if tw is None or not hasattr(tw, "_file") or self.config.option.collectonly:
            return "off"
        asked = getattr(opts, "live", "auto")
        if asked != "auto":
            return asked
        if self.config.get_verbosity() < 0 or self.config.option.usepdb or self.config.option.trace:
            return "off"  # -q; and pdb's prompt is not to be drawn over
        is_tty = getattr(tw._file, "isatty", lambda: False)()
        distributed = self.config.pluginmanager.hasplugin("dsession")
        uncaptured = self.config.option.capture == "no" and not distributed  # -s: items print straight through
        return "bar" if is_tty and os.environ.get("TERM") != "dumb" and not uncaptured else "lines"

    def start(self, session) -> None:
        """Before the first item. A session without benchmark items shows nothing (at -n 0 the items say so; under
        xdist the view wakes with the first record, set-up step or serving note)."""
        self.mode = self.choose()
        self.tally = Tally()
        for rec in self.controller.records:  # resumed samples count in the running estimate, as in the report
            self.tally.add(rec)
        self._seen = len(self.controller.records)
        self.announced = {
            (name, kind)
            for name, note in self.controller.broker.notes.items()
            for kind in ("fallback", "error")
            if note.get(kind)
        }  # said at start already
        distributed = self.config.pluginmanager.hasplugin("dsession")
        if not distributed:
            from .items import case_of

            self.tally.total = len(session.items)
            if not any(case_of(item) for item in session.items):
                self.mode = "off"
        if self.mode == "off":
            return
        self._previous = listen(self)  # an in-process pytester run inside another run: back at stop
        self._stop.clear()
        self._last_line = time.monotonic()
        if not distributed:
            self._wake()
        self._thread = threading.Thread(target=self._tick, name="agentbench-live", daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        """Put the bar or the line writer in place (once; no-op when off or stopped)."""
        with self._waking:
            if self.screen is None and self.mode in ("bar", "lines") and not self._stop.is_set():
                tw = self.config.pluginmanager.get_plugin("terminalreporter")._tw
                self.screen = BarScreen(tw, self._bar) if self.mode == "bar" else LineScreen(tw)

    def stop(self) -> None:
        if listener() is self:
            listen(self._previous)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._serving_warnings()
        with self._waking:
            screen, self.screen = self.screen, None
        if screen is not None:
            screen.close()
        self.flush_queued()

    def _tick(self) -> None:
        every = self.controller.run.options.live_every
        threading.Thread(target=self._import_estimators, name="agentbench-live-scipy", daemon=True).start()
        while not self._stop.wait(TICK_S):
            try:
                self._serving_warnings()
                self._steps_running()
                if self.screen is None:  # xdist, before the first record or set-up step
                    with self.tally.lock:
                        if not self.steps and not self.tally.groups:
                            continue
                    self._wake()
                if (
                    self.mode == "lines"
                    and time.monotonic() - self._last_line >= every
                    and self.tally.estimates_ready.is_set()
                ):
                    self._last_line = time.monotonic()
                    self._say(status_line(self.tally.parts(), self._serving()))
                elif self.mode == "bar" and self.screen is not None:
                    self.screen.redraw()
            except Exception as exc:  # the view must never end the run; it stops drawing instead
                self.mode = "off"
                self.queued.append((f"agentbench: live view stopped: {type(exc).__name__}: {exc}", True))
                return

    def _import_estimators(self) -> None:
        from ..stats import wilson

        try:
            wilson(1, 2)  # imports scipy's statistics, off the drawing thread
        finally:
            self.tally.estimates_ready.set()

    # -- fed by the hooks -------------------------------------------------------------------------------------
    def set_total(self, total: int) -> None:
        with self.tally.lock:
            if self.tally.total is None:
                self.tally.total = total

    def item_started(self, nodeid: str) -> None:
        self.tally.item_started(nodeid)

    def item_finished(self, nodeid: str) -> None:
        self.tally.item_finished(nodeid)
        if self._thread is None:  # off: no drawing thread, so warnings wait for a moment between items
            self._serving_warnings()
            self.flush_queued()

    def report(self, report) -> None:
        """Each test report, after the controller took its record (if any)."""
        records = self.controller.records
        if len(records) > self._seen:
            if self.screen is None and self._thread is not None:
                self._wake()
            for rec in records[self._seen :]:
                self.tally.add(rec)
            self._seen = len(records)
            rec = records[-1]
            if rec.get("status") != "infra":  # the model's outcome (an infra one is an error pytest shows)
                self.benchmark_items.add(report.nodeid)
            sent = next((v for k, v in reversed(report.user_properties) if k == "agentbench"), None) or {}
            info = sent.get("backend_info") or {}  # on the first record of a model from each process
            load_s, worker = info.get("load_seconds"), sent.get("worker")
            if load_s and load_s >= STEP_SHOWN_AFTER and worker != "main":  # at -n 0 `step` said it already
                self._say(
                    f"agentbench: {for_terminal(str(rec.get('model')))} loaded in-process on {worker} in "
                    f"{load_s:.1f} s ({info.get('backend')})"
                )
        if report.when not in ("setup", "call", "teardown"):  # xdist: a worker died running this item
            self.item_finished(report.nodeid)

    def step_begin(self, current: Step) -> None:
        with self.tally.lock:
            self.steps.append(current)

    def step_end(self, current: Step) -> None:
        with self.tally.lock:
            if current in self.steps:
                self.steps.remove(current)
        if (
            current.always
            or current.announced
            or current.failed
            or time.monotonic() - current.started >= STEP_SHOWN_AFTER
        ):
            self._say(current.line(), warn=current.failed)

    # -- what it says -----------------------------------------------------------------------------------------
    def _say(self, line: str, warn: bool = False) -> None:
        if self.screen is None and self._thread is not None:  # xdist: the first sign of benchmark items
            self._wake()
        screen = self.screen
        if screen is not None:
            screen.line(line, warn)
        elif warn or self.mode != "off":
            self.queued.append((line, warn))

    def flush_queued(self) -> None:
        """Lines that waited for a moment when pytest's writer is free (main thread, between items)."""
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        while self.queued:
            line, warn = self.queued.pop(0)
            if tr is not None:
                tr.write_line(line, yellow=warn)

    def _steps_running(self) -> None:
        """lines mode: a step still running after a second is said when it begins (a CI log shows what it waits on)."""
        if self.mode != "lines":
            return
        with self.tally.lock:
            due = [s for s in self.steps if not s.announced and time.monotonic() - s.started >= STEP_SHOWN_AFTER]
        for s in due:
            s.announced = True
            self._say(f"agentbench: {s.what} ...")

    def _serving(self) -> list[tuple[str, str]]:
        with self.tally.lock:
            steps = list(self.steps)
        return serving_text(self.controller.run, dict(self.controller.broker.notes), steps)

    def _serving_warnings(self) -> None:
        """A model that falls back to in-process, or whose server failed: one line as soon as the broker knows."""
        for name, note in list(self.controller.broker.notes.items()):
            for kind in ("fallback", "error"):
                if note.get(kind) and (name, kind) not in self.announced:
                    self.announced.add((name, kind))
                    if kind == "fallback":
                        line = (
                            f"agentbench: {for_terminal(name)}: {note.get('engine')} cannot serve it here "
                            f"({for_terminal(str(note.get('reason')))}); it runs {note['fallback']}"
                        )
                    else:
                        line = f"agentbench: {for_terminal(name)}: its server failed: {for_terminal(note['error'])}"
                    self._say(line, warn=True)

    def _bar(self):
        """The bar (rich), rendered by the view's thread twice a second."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        p = self.tally.parts()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        total = p["total"]
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=total or None, completed=p["done"], width=30), Text(progress_text(p)))
        grid.add_row(Text("agentbench", style="bold"), bar)
        for g in p["groups"][:SHOWN_GROUPS]:
            style = "red" if g["infra"] else ""
            grid.add_row(Text(g["name"]), Text(group_text(g), style=style))
        if len(p["groups"]) > SHOWN_GROUPS:
            grid.add_row(Text(""), Text(f"... {len(p['groups']) - SHOWN_GROUPS} more model/suite pairs"))
        for model, text in self._serving():
            bad = text.startswith(("FALLBACK", "SERVER FAILED"))
            grid.add_row(Text("serving"), Text(f"{model}: {text}", style="yellow" if bad else "dim"))
        with self.tally.lock:
            steps = [s for s in self.steps if s.server_of is None]  # a server's start is on its serving line
        for s in steps:
            grid.add_row(Text("set-up", style="cyan"), Text(f"{s.what} ({clock(time.monotonic() - s.started)})"))
        if p["longest"] and p["longest"][1] >= 10:
            nodeid, age = p["longest"]
            grid.add_row(
                Text("running"),
                Text(
                    f"{p['running']} item(s); longest {clock(age)}: {for_terminal(nodeid.rsplit('::', 1)[-1])}",
                    style="dim",
                ),
            )
        return grid


# -- the end: which failures pytest's FAILURES block shows --------------------------------------------------------
@contextlib.contextmanager
def failures_block_without(tr, nodeids: set[str]) -> Iterator[None]:
    """While pytest's terminal reporter writes its FAILURES block, leave out the benchmark items (their failures
    are the model's, summarised in the agentbench section by reason class), unless --tb names a style: pytest's
    short test summary (`-r`) and counts are untouched. A no-op without benchmark items."""
    original = getattr(tr, "summary_failures", None)
    if not leaves_out_failures(tr.config, nodeids) or original is None:
        yield
        return

    def summary_failures() -> None:
        kept = tr.stats.get("failed")
        if kept is None:
            return original()
        tr.stats["failed"] = [rep for rep in kept if getattr(rep, "nodeid", None) not in nodeids]
        try:
            original()
        finally:
            tr.stats["failed"] = kept

    tr.summary_failures = summary_failures
    try:
        yield
    finally:
        del tr.summary_failures


def leaves_out_failures(config, nodeids: set[str]) -> bool:
    """Benchmark items are left out of pytest's FAILURES block: some ran, and --tb is pytest's default (auto)."""
    return bool(nodeids) and config.option.tbstyle == "auto"
