"""Where the live view draws: a tap on pytest's terminal writer (pytest's output passes through, in order with the
view's lines), and two screens: plain lines (CI logs) and a rich bar under pytest's output."""

from __future__ import annotations

import os
import threading


class Tap:
    """Stands in for the file of pytest's terminal writer: what pytest writes goes to `screen.pytest_text`, in order
    with the view's own lines; everything else is the file's own."""

    def __init__(self, orig, screen: Screen):
        self._orig = orig
        self._screen = screen

    def write(self, text: str) -> int:
        self._screen.pytest_text(text)
        return len(text)

    def flush(self) -> None:
        self._screen.pytest_flush()

    def __getattr__(self, name: str):
        return getattr(self._orig, name)


class Screen:
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
        tw._file = Tap(self.orig, self)

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


class LineScreen(Screen):
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


class BarScreen(Screen):
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
