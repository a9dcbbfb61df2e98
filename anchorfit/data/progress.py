"""Progress of long steps on stderr: a live bar on a terminal, plain periodic lines off it.

Readers report what they have read through a ``Meter`` (bytes of a file, or files of a folder);
the meter shows the amount, the rate and the time left. ``status(message)`` (used by the CLI
around reading and clustering) installs one for the readers called inside it, so the library
functions need no extra argument; ``current()`` is the meter in force (a silent one outside
``status``). Off a terminal a line is written every ``interval`` seconds, and none for a step
shorter than that, so pipes, logs and tests of small files stay clean.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

INTERVAL_S = 10.0


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
