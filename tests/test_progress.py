"""The progress helper (anchorfit.data.progress.TaskMeter) and the ERF estimator's use of it.

A fake clock makes the timing exact: the plain line's counts, elapsed time and time left are
checked against numbers worked out by hand, the line's interval against the clock, and the
forecast's expected time against the rate of the first sample."""

from __future__ import annotations

import io

import pytest

from anchorfit.data.progress import TaskMeter, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def meter(total: int = 32, **kwargs) -> tuple[TaskMeter, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return TaskMeter("erf", total, "samples", stream=out, terminal=False, clock=clock,
                 **kwargs), out, clock


@pytest.mark.parametrize("seconds, text", [(0.25, "0.2 s"), (8.04, "8.0 s"), (41.4, "41 s"),
                                           (68, "1 min 08 s"), (754, "12 min"),
                                           (3900, "1 h 05 min")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_plain_line_every_interval_with_time_left() -> None:
    m, out, clock = meter(interval=10.0)
    with m:
        clock.now += 5.0            # setup (loading, calibration) is not part of the rate
        m.update(0)
        clock.now += 4.0
        m.update(1)                 # 9 s since start: under the interval, nothing printed
        assert out.getvalue() == ""
        clock.now += 32.0           # 41 s elapsed, 12 samples in 36 s since the origin
        m.update(12)
        clock.now += 1.0
        m.update(13)                # 1 s after the last line: silent
    lines = out.getvalue().splitlines()
    # rate 3 s/sample from the origin (36 s / 12) -> 20 left x 3 s = 60 s
    assert lines == ["erf: 12/32 samples, 41 s elapsed, ~1 min 00 s left"]


def test_fractional_progress_counts_whole_samples_and_capped_says_at_most() -> None:
    m, out, clock = meter(total=512, interval=0.0, capped=True)
    with m:
        m.update(0)
        clock.now += 10.0
        m.update(2.5)               # 4 s per sample; 509.5 left -> 2038 s
    assert out.getvalue().splitlines() == ["erf: 2/512 samples, 10 s elapsed, "
                                           "at most ~33 min left"]


def test_forecast_once_for_a_long_run_with_hints() -> None:
    m, out, clock = meter(total=32)
    with m:
        m.update(0)
        clock.now += 7.5
        m.update(1)
        said = m.forecast(["--samples 8"])
        assert m.forecast(["--samples 8"]) is None  # once only
    assert said == ("erf: expect ~4 min 00 s for 32 samples (7.5 s per sample, timed on the "
                    "first); to shorten: --samples 8")
    assert out.getvalue() == said + "\n"


def test_no_forecast_for_a_short_run_and_nothing_when_disabled() -> None:
    m, out, clock = meter(total=10)
    with m:
        m.update(0)
        clock.now += 2.0
        m.update(1)
        assert m.forecast(["x"]) is None     # 20 s expected: under LONG_RUN
    quiet, out2, clock2 = meter(total=10, enabled=False, interval=0.0)
    with quiet:
        quiet.update(0)
        clock2.now += 60.0
        quiet.update(1)
        assert quiet.forecast(["x"]) is not None  # the text is still returned to a caller
    assert out2.getvalue() == ""


def test_terminal_bar_draws_and_says_lines_above_it() -> None:
    out = io.StringIO()
    with TaskMeter("erf", 4, stream=out, terminal=True) as m:
        m.update(0)
        m.update(1.5)
        m.say("a note")
        assert m._bar is not None
    assert "a note" in out.getvalue()


def test_estimator_reports_every_sample_and_forecasts_with_the_callers_flags(monkeypatch):
    """estimate(progress=True) drives one TaskMeter: the clock starts at 0 after calibration, the
    count rises by fractions of a sample as a step's levels finish and ends at the total; after
    the first step the forecast is offered hints in the caller's spelling."""
    pytest.importorskip("torch")
    import anchorfit.erf.estimator as estimator
    from anchorfit.design.erf_network import load_erf_network
    from anchorfit.erf import ErfConfig

    seen: dict[str, list] = {"updates": [], "hints": [], "kw": []}

    class Recorder(TaskMeter):
        def __init__(self, *args, **kwargs):
            seen["kw"].append(kwargs)
            super().__init__(*args, **kwargs)

        def update(self, done: float) -> None:
            seen["updates"].append(done)
            super().update(done)

        def forecast(self, hints=(), *, long_run=0.0):  # every run counts as long here
            seen["hints"].append(list(hints))
            return super().forecast(hints, long_run=0.0)

    monkeypatch.setattr(estimator, "TaskMeter", Recorder)
    net = load_erf_network("yolov3-tiny", (448, 448), None, seed=0)
    config = ErfConfig(samples=2, batch_size=1, n_boot=10, calibrate=1)
    flags = {"samples": "--samples", "channels_last": "--channels-last"}
    result = estimator.estimate(net, None, config, progress=False, options=flags)
    ups = seen["updates"]
    assert result.samples == 2 and seen["kw"][0]["enabled"] is False
    assert ups[0] == 0 and ups[-1] == 2
    assert ups == sorted(ups)
    assert any(0 < u < 1 for u in ups)  # two levels: half a sample after the first level
    hints = seen["hints"][0]
    assert "--channels-last (about 15 % faster on CPU)" in hints
    assert all("=" not in h for h in hints)  # spelled as flags, not keywords
