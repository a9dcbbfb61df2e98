"""Progress on stderr for long steps, shared by the readers, clustering and the ERF estimator.

Two helpers. ``status`` is a spinner for a step with no count (reading, clustering), only when
stderr is a terminal, so pipes, logs and tests stay clean. ``Meter`` follows a counted task (ERF
samples): on a terminal a bar with elapsed and remaining time that moves by fractions of a
sample; otherwise, so that a batch job's log shows the run is alive and how long it has left, a
plain line at a steady interval ("erf: 12/32 samples, 41 s elapsed, ~68 s left"). Before a long
run it says once how long the whole run should take and how to shorten it (``forecast``).

It lives in ``data/`` (the bottom of the import graph) so that every layer may use it; it
imports nothing of anchorfit, and rich only when it draws.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

#: seconds between two plain progress lines when stderr is not a terminal
INTERVAL = 10.0
#: a run expected to last longer than this (seconds) gets the one-line forecast
LONG_RUN = 30.0


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


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


class Meter:
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
                 capped: bool = False, interval: float = INTERVAL,
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

    def __enter__(self) -> Meter:
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
