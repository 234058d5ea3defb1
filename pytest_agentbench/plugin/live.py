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
tap (`_Tap`) that passes every character on, in order with the view's lines (one lock). With the bar, the line
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
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from ..models import WeightsSpec
from ..sanitize import for_terminal

MODES = ("auto", "bar", "lines", "off")
TICK_S = 0.5  # how often the bar is redrawn (the estimates with it) and the broker's notes are read
STEP_SHOWN_AFTER = 1.0  # a set-up step shorter than this prints nothing
SHOWN_GROUPS = 4  # model/suite rows in the bar (the rest are counted)
_ACTIVE: LiveView | None = None  # the view of this process, for `step` (only the controller has one)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def step(what: str, always: bool = False, server_of: str | None = None) -> Iterator[Step]:
    """A set-up step that may take long: shown while it runs and, when it took a second or more (or `always`), one
    line with how long (`what: RESULT, done in 2.1 s`; set `.result` on the yielded Step). `server_of`: the model
    whose server it starts (the bar's serving line shows it). A no-op timer where no view runs (xdist workers, a view
    that is off)."""
    current = Step(what, always, server_of)
    view = _ACTIVE
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


class _Group:
    """One model and suite as its records arrive."""

    def __init__(self):
        self.per_task: dict[str, list[int]] = {}
        self.outcomes: Counter = Counter()
        self.tokens = 0
        self.model_s = 0.0
        self.version = 0
        self.estimate: tuple[int, Any] = (-1, None)

    def add(self, rec: dict) -> None:
        status = rec.get("status")
        self.outcomes[status] += 1
        self.version += 1
        if status == "infra":
            return
        n_c = self.per_task.setdefault(rec.get("task"), [0, 0])
        n_c[0] += 1
        n_c[1] += status == "passed"
        if not (rec.get("cache") or {}).get("hits"):  # as the report's tokens/s: cached replies took no model time
            self.tokens += rec.get("completion_tokens") or 0
            self.model_s += rec.get("model_s") or 0.0

    def counts_if_changed(self) -> tuple[int, dict] | None:
        """(version, per-task counts) when a record arrived since the last estimate (called under the tally's lock)."""
        if self.estimate[0] == self.version:
            return None
        return self.version, {t: (n, c) for t, (n, c) in self.per_task.items()}

    def pass_at_1(self, changed: tuple[int, dict] | None):
        """(value, lo, hi) over the tasks so far, as the report computes it; recomputed only when records came."""
        if changed is not None:
            version, counts = changed
            value = None
            if counts:
                from ..stats import pass_at_k_estimate

                est = pass_at_k_estimate(counts, 1)
                value = (est.value, est.lo, est.hi)
            self.estimate = (version, value)
        return self.estimate[1]


class Tally:
    """What the view shows, updated from pytest's hooks (main thread) and read by the drawing thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total: int | None = None
        self.done = 0
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self.groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
        self.estimates_ready = threading.Event()

    def item_started(self, nodeid: str) -> None:
        with self.lock:
            self.running[nodeid] = time.monotonic()

    def item_finished(self, nodeid: str) -> None:
        with self.lock:
            self.running.pop(nodeid, None)
            self.done += 1

    def add(self, rec: dict) -> None:
        with self.lock:
            self.groups[(str(rec.get("model")), str(rec.get("suite")))].add(rec)

    def parts(self) -> dict[str, Any]:
        """Everything a line or the bar shows, as plain values."""
        now = time.monotonic()
        with self.lock:
            elapsed = now - self.started
            done, total = self.done, self.total
            eta = elapsed / done * (total - done) if done and total else None
            groups = []
            for (model, suite), g in self.groups.items():
                outcomes = {k: v for k, v in g.outcomes.items() if v and k != "passed"}
                groups.append(
                    (
                        g,
                        g.counts_if_changed(),
                        {
                            "name": f"{for_terminal(model)}/{for_terminal(suite)}",
                            "outcomes": outcomes,
                            "samples": sum(n for n, _ in g.per_task.values()),
                            "infra": g.outcomes.get("infra", 0),
                            "tokens_per_s": g.tokens / g.model_s if g.model_s > 0 and g.tokens else None,
                        },
                    )
                )
            longest = min(self.running.items(), key=lambda kv: kv[1], default=None)
        ready = self.estimates_ready.is_set()  # scipy takes a second or two to import at start: no interval till then
        groups = [dict(shown, **{"pass@1": g.pass_at_1(changed) if ready else None}) for g, changed, shown in groups]
        return {
            "done": done,
            "total": total,
            "elapsed": elapsed,
            "eta": eta,
            "groups": groups,
            "running": len(self.running),
            "longest": (longest[0], now - longest[1]) if longest else None,
        }


def group_text(g: dict) -> str:
    """`pass@1 0.081 [0.030, 0.210] (37 samples), 62.9 tok/s, failed 28, error 5, infra 0`."""
    est = g["pass@1"]
    bits = [f"pass@1 {est[0]:.3f} [{est[1]:.3f}, {est[2]:.3f}] ({g['samples']} samples)" if est else "pass@1 -"]
    if g["tokens_per_s"]:
        bits.append(f"{g['tokens_per_s']:.1f} tok/s")
    counts = dict(g["outcomes"])
    counts.setdefault("error", 0)
    counts.setdefault("infra", 0)
    bits += [f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (kv[0] == "infra", kv[0]))]
    return ", ".join(bits)


def progress_text(p: dict) -> str:
    if p["total"] is None:  # xdist: the workers have not reported their collection yet
        return f"collecting, {_clock(p['elapsed'])} elapsed"
    eta = f", ETA {_clock(p['eta'])}" if p["eta"] is not None else ""
    return f"{p['done']}/{p['total']} items, {_clock(p['elapsed'])} elapsed{eta}"


def serving_text(run, notes: dict, steps: list[Step]) -> list[tuple[str, str]]:
    """(model, how it is served now) for every model of the run; a fallback or an error first in its text."""
    out = []
    for spec in run.models:
        engine = run.serve_engine(spec)[0]
        note = notes.get(spec.name) or {}
        starting = next((s for s in steps if s.server_of == spec.name), None)
        if note.get("fallback"):
            text = f"FALLBACK {note['fallback']} ({note.get('engine')}: {note.get('reason')})"
        elif note.get("error"):
            text = f"SERVER FAILED: {note['error']}"
        elif starting is not None:
            text = f"starting the {engine} server ({_clock(time.monotonic() - starting.started)})"
        elif note.get("pid"):
            text = f"{note.get('engine')} server, pid {note['pid']}"
        elif engine is not None:
            text = f"{engine} server (starts with the first item)"
        else:
            text = f"in-process {spec.backend}" if isinstance(spec, WeightsSpec) else spec.backend
        out.append((for_terminal(spec.name), for_terminal(str(text))))
    return out


def status_line(p: dict, serving: list[tuple[str, str]]) -> str:
    """The plain line of the `lines` mode: progress; each model/suite; how models are served."""
    pieces = [progress_text(p)] + [f"{g['name']} {group_text(g)}" for g in p["groups"]]
    if serving:
        pieces.append("serving: " + ", ".join(f"{m} {t}" for m, t in serving))
    return "agentbench: " + "; ".join(pieces)


class _Tap:
    """Stands in for the file of pytest's terminal writer: what pytest writes goes to `screen.pytest_text`, in order
    with the view's own lines; everything else is the file's own."""

    def __init__(self, orig, screen: _Screen):
        self._orig = orig
        self._screen = screen

    def write(self, text: str) -> int:
        self._screen.pytest_text(text)
        return len(text)

    def flush(self) -> None:
        self._screen.pytest_flush()

    def __getattr__(self, name: str):
        return getattr(self._orig, name)


class _Screen:
    """Where the view writes: a copy of the terminal's file descriptor, so that what it writes while an item runs
    under pytest's fd capture (-n 0) still reaches the terminal, and never lands in a test's captured output."""

    def __init__(self, tw):
        self.tw = tw
        self.orig = tw._file
        self.io = threading.RLock()
        self.pending = getattr(tw, "_current_line", "")  # the line pytest has begun and not ended (no colours)
        self.orig.flush()
        try:
            self.out = open(
                os.dup(self.orig.fileno()),
                "w",
                encoding=getattr(self.orig, "encoding", None) or "utf-8",
                errors="strict",
                closefd=True,
            )
            self._own = True
        except (AttributeError, OSError, ValueError):  # no descriptor (an in-process pytester run): the file itself
            self.out, self._own = self.orig, False
        self._encoding = (getattr(self.out, "encoding", None) or "utf-8").lower().replace("-", "")
        tw._file = _Tap(self.orig, self)

    def check_encodable(self, text: str) -> None:
        """The same UnicodeEncodeError the terminal's file would raise, so pytest's writer falls back as it does."""
        if self._encoding not in ("utf8", "utf_8"):
            text.encode(self._encoding)

    def pytest_text(self, text: str) -> None:
        raise NotImplementedError

    def pytest_flush(self) -> None:
        with self.io:
            self.out.flush()

    def line(self, text: str, warn: bool = False) -> None:
        """One line of the view's own, above whatever the view draws."""
        raise NotImplementedError

    def redraw(self) -> None:
        pass

    def close(self) -> None:
        self.tw._file = self.orig
        with self.io:
            self.out.flush()
            if self._own:
                self.out.close()


class _LineScreen(_Screen):
    """Plain lines (CI logs): pytest's text passes straight through; a line of the view's ends pytest's unfinished
    line first (the progress dots go on below it)."""

    def pytest_text(self, text: str) -> None:
        self.check_encodable(text)
        with self.io:
            self.orig.flush()
            self.out.write(text)
            tail = text.rsplit("\n", 1)
            self.pending = tail[-1] if len(tail) > 1 else self.pending + text

    def line(self, text: str, warn: bool = False) -> None:
        with self.io:
            self.orig.flush()
            if self.pending:
                self.out.write("\n")
                self.pending = ""
                self.tw._current_line = ""  # pytest's right-aligned [ 45%] is measured from the new line
            self.out.write(text + "\n")
            self.out.flush()


class _BarScreen(_Screen):
    """The live bar (rich.live.Live), drawn under pytest's output, erased when the run ends."""

    def __init__(self, tw, render):
        super().__init__(tw)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(
            file=self.out, force_terminal=True, highlight=False, color_system="auto" if tw.hasmarkup else None
        )
        self._render = render
        self._body = None  # the bar as drawn at the last tick (pytest's lines between ticks reuse it)
        self.live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            get_renderable=self._renderable,
        )
        if self.pending:  # pytest's unfinished line is drawn again as the bar's first line
            self.out.write("\r\x1b[2K")
        self.live.start()

    def _renderable(self):
        from rich.console import Group
        from rich.text import Text

        pending = self.pending
        body = self._body if self._body is not None else Text("")
        return Group(Text.from_ansi(pending), body) if pending else body

    def _draw_body(self) -> None:
        """Render the bar once, to segments: printing pytest's lines redraws these, not the table and estimates."""
        from rich.segment import Segment, Segments

        segments: list = []
        for i, line in enumerate(self.console.render_lines(self._render(), pad=False)):
            segments.extend(([Segment.line()] if i else []) + line)
        self._body = Segments(segments)

    def pytest_text(self, text: str) -> None:
        self.check_encodable(text)
        from rich.text import Text

        with self.io:
            lines = (self.pending + text.replace("\r\n", "\n")).split("\n")
            self.pending = lines.pop()
            if lines:  # printed above the bar, as pytest wrote them (rich redraws the bar under them)
                self.console.print(Text.from_ansi("\n".join(lines)), soft_wrap=True)

    def pytest_flush(self) -> None:
        with self.io:
            self.live.refresh()  # pytest's unfinished line as it is now, under the bar as last drawn

    def line(self, text: str, warn: bool = False) -> None:
        from rich.text import Text

        with self.io:
            self.console.print(Text(text, style="yellow" if warn else ""), soft_wrap=True)

    def redraw(self) -> None:
        with self.io:
            self._draw_body()
            self.live.refresh()

    def close(self) -> None:
        with self.io:
            self.live.stop()  # transient: the bar is erased, the cursor is where it began
            self.out.write(self.pending)  # pytest's unfinished line, as it wrote it
            self.pending = ""
        super().close()


class LiveView:
    """The controller's view of the run; fed by ControllerHooks (plugin.py)."""

    def __init__(self, controller, config):
        self.controller = controller
        self.config = config
        self.mode = "off"
        self.tally = Tally()
        self.screen: _Screen | None = None
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
        global _ACTIVE
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
        self._previous, _ACTIVE = _ACTIVE, self  # an in-process pytester run inside another run: back at stop
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
                self.screen = _BarScreen(tw, self._bar) if self.mode == "bar" else _LineScreen(tw)

    def stop(self) -> None:
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = self._previous
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
            grid.add_row(Text("set-up", style="cyan"), Text(f"{s.what} ({_clock(time.monotonic() - s.started)})"))
        if p["longest"] and p["longest"][1] >= 10:
            nodeid, age = p["longest"]
            grid.add_row(
                Text("running"),
                Text(
                    f"{p['running']} item(s); longest {_clock(age)}: {for_terminal(nodeid.rsplit('::', 1)[-1])}",
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
