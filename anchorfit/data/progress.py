"""Progress of long steps on stderr: a live bar on a terminal, plain periodic lines off it.

Readers report what they have read through a ``Meter`` (bytes of a file, or files of a folder);
the meter shows the amount, the rate and the time left. ``status(message)`` (used by the CLI
around reading and clustering) installs one for the readers called inside it, so the library
functions need no extra argument; ``current()`` is the meter in force (a silent one outside
``status``). Off a terminal a line is written every ``interval`` seconds, and none for a step
shorter than that, so pipes, logs and tests of small files stay clean.

``TaskMeter`` follows a counted task whose caller reports how far it is (ERF samples): on a
terminal a bar with elapsed and remaining time that moves by fractions of a unit; off a terminal
a plain line every ``interval`` seconds ("erf: 12/32 samples, 41 s elapsed, ~68 s left"); and,
before a long run, one line with the expected time and how to shorten it (``forecast``). Both
live in ``data/`` (the bottom of the import graph) so that every layer may use them; this module
imports nothing of anchorfit, and rich only when it draws.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

INTERVAL_S = 10.0
#: a run expected to last longer than this (seconds) gets TaskMeter's one-line forecast
LONG_RUN = 30.0


class Meter:
    """Counts units read against a total and reports rate and ETA (see module docstring)."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = INTERVAL_S,
                 live: Any = None) -> None:
        self.stream, self.interval, self.live = stream, interval, live
        self.label, self.total, self.unit = "", 0, "B"
        self.done = 0
        self._t0 = self._last = time.monotonic()
        self._task = None

    def start(self, label: str, total: int, unit: str = "B") -> None:
        self.label, self.total, self.unit, self.done = label, max(int(total), 0), unit, 0
        self._t0 = self._last = time.monotonic()
        if self.live is not None:
            self._task = self.live.add_task(label, total=self.total or None, text="")

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.live is not None and self._task is not None:
            self.live.update(self._task, completed=self.done, text=self.describe(now))
        elif self.stream is not None and now - self._last >= self.interval:
            self._last = now
            print(f"{self.label}: {self.describe(now)}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.live is not None and self._task is not None:
            self.live.remove_task(self._task)
            self._task = None

    def describe(self, now: float | None = None) -> str:
        """'1.2 GB of 3.4 GB (35%), 85 MB/s, ETA 26 s' (files: '12,000 of 1,000,000 files')."""
        elapsed = max((now or time.monotonic()) - self._t0, 1e-9)
        rate = self.done / elapsed
        if self.unit == "B":
            text = f"{_amount(self.done, 'B')} of {_amount(self.total, 'B')}"
        else:
            text = f"{self.done:,} of {self.total:,} {self.unit}"
        if self.total:
            text += f" ({100 * self.done / self.total:.0f}%)"
        text += f", {_amount(rate, self.unit)}/s"
        if self.total and rate > 0:
            text += f", ETA {max(self.total - self.done, 0) / rate:.0f} s"
        return text


def _amount(n: float, unit: str) -> str:
    if unit != "B":
        return f"{n:,.0f} {unit}"
    for prefix in ("", "k", "M", "G", "T"):
        if abs(n) < 1000 or prefix == "T":
            return f"{n:.0f} {prefix}B" if not prefix else f"{n:.1f} {prefix}B"
        n /= 1000
    return f"{n:.1f} TB"


_SILENT = Meter()
_CURRENT: contextvars.ContextVar[Meter] = contextvars.ContextVar("anchorfit_meter",
                                                                 default=_SILENT)


def current() -> Meter:
    """The meter installed by the innermost ``status`` (a silent one outside)."""
    return _CURRENT.get()


@contextlib.contextmanager
def status(message: str, *, stream: TextIO | None = None,
           interval: float = INTERVAL_S) -> Iterator[Meter]:
    """Show ``message`` while the block runs, with the progress readers report inside it."""
    stream = stream or sys.stderr
    if not stream.isatty():
        meter = Meter(stream, interval=interval)
        token = _CURRENT.set(meter)
        try:
            yield meter
        finally:
            _CURRENT.reset(token)
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.fields[text]}"))
    with Progress(*columns, console=Console(file=stream), transient=True) as live:
        live.add_task(message, total=None, text="")
        meter = Meter(stream, interval=interval, live=live)
        token = _CURRENT.set(meter)
        try:
            yield meter
        finally:
            _CURRENT.reset(token)


def duration(seconds: float) -> str:
    """A duration as people say it: "8 s", "3 min 20 s", "1 h 05 min"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class TaskMeter:
    """Progress of ``total`` units of work named ``label`` (``unit``: what a unit is).

    Use as a context manager; ``update(done)`` with the units done so far (a float: a batch
    part-way through its passes counts as a fraction). ``update(0)`` before the first unit
    starts the clock that rates are measured from, so that setup time (loading, BatchNorm
    calibration) does not inflate the estimate. ``capped``: ``total`` is a cap the run may stop
    short of (sampling until a CI target), so the time left is an upper bound and says so.
    ``enabled=False`` draws and prints nothing. ``terminal`` (default: whether ``stream`` is a
    terminal) picks the bar or the plain lines; ``clock`` is there for tests.
    """

    def __init__(self, label: str, total: int, unit: str = "samples", *, enabled: bool = True,
                 capped: bool = False, interval: float = INTERVAL_S,
                 stream: TextIO | None = None, terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit, self.capped = label, total, unit, capped
        self.enabled, self.interval, self.clock = enabled, interval, clock
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.done = 0.0
        self.started = self.origin = self.last_line = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._forecast_said = False

    def __enter__(self) -> TaskMeter:
        self.started = self.origin = self.last_line = self.clock()
        if self.enabled and self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
                TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn(self.unit),
                                 TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=True)
            self._task = self._bar.add_task(self.label, total=self.total)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    # -- numbers -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.clock() - self.started

    def rate(self) -> float | None:
        """Seconds per unit since the clock's origin, None before the first unit is done."""
        if self.done <= 0:
            return None
        return (self.clock() - self.origin) / self.done

    def left(self) -> float | None:
        """Seconds left at the rate so far (at most that when ``capped``)."""
        rate = self.rate()
        return None if rate is None else rate * max(self.total - self.done, 0.0)

    def line(self) -> str:
        """The plain progress line: "erf: 12/32 samples, 41 s elapsed, ~68 s left"."""
        text = (f"{self.label}: {math.floor(self.done + 1e-9)}/{self.total} {self.unit}, "
                f"{duration(self.elapsed())} elapsed")
        left = self.left()
        if left is not None:
            text += f", {'at most ' if self.capped else ''}~{duration(left)} left"
        return text

    # -- events --------------------------------------------------------------------------
    def update(self, done: float) -> None:
        """``done`` units finished so far; ``update(0)`` (re)starts the rate's clock."""
        if done <= 0 and self.done <= 0:
            self.origin = self.clock()
            return
        self.done = float(done)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = self.clock()
        if now - self.last_line >= self.interval and self.done < self.total:
            self.last_line = now
            self.say(self.line())

    def forecast(self, hints: Sequence[str] = (), *, long_run: float = LONG_RUN) -> str | None:
        """Once, after the first unit: when the whole run should last longer than ``long_run``
        seconds, say how long and how to shorten it (``hints``: ways, each a short phrase).
        Returns the line said (None if none)."""
        rate = self.rate()
        if self._forecast_said or rate is None:
            return None
        self._forecast_said = True
        expected = rate * self.total
        if expected <= long_run:
            return None
        text = (f"{self.label}: expect {'up to ' if self.capped else ''}~{duration(expected)} "
                f"for {self.total} {self.unit} ({duration(rate)} per "
                f"{self.unit.rstrip('s')}, timed on the first)")
        if hints:
            text += "; to shorten: " + "; ".join(hints)
        if self.enabled:
            self.say(text)
        return text

    def say(self, text: str) -> None:
        """One line on the stream, above the bar when there is one."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
