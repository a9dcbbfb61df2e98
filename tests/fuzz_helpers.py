"""Mutation strategies, a per-case deadline and the pass/fail rule of the fuzz suite.

The fuzz suite (tests/test_fuzz.py) takes real seed files of every input format, mutates them the
way broken downloads, hand edits and hostile files do (lines deleted, duplicated or swapped,
numbers replaced by 0, -1, nan, inf, 1e400, huge integers or words, truncation, control bytes,
invalid UTF-8, deep nesting) and feeds the result to the reader and to what the CLI calls next.
The rule (issue 12, item 4): each case ends in a result or an ``AnchorfitError``, never in another
exception and never in a hang.

Why a SIGALRM deadline and not hypothesis' ``deadline``: hypothesis measures a case only after it
has returned, so a hanging reader would hang the suite; the alarm interrupts it and the case
fails with ``CaseTimeout`` (a BaseException, so a reader's ``except Exception`` cannot swallow it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from hypothesis import strategies as st

from anchorfit.errors import AnchorfitError

SEEDS = Path(__file__).resolve().parent / "data" / "fuzz_seeds"

#: seconds one case may take; generous because the CI machine is shared (a case takes ~30 ms)
CASE_BUDGET_S = float(os.environ.get("ANCHORFIT_FUZZ_BUDGET", "5"))

# Values that break naive number handling: zero, negatives, non-finite, overflow to inf on
# float(), integers too big for float or for a C long, words, empty, other bases, JSON/YAML
# literals, and strings where numbers go.
NASTY_NUMBERS = ["0", "-1", "-3", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e-400",
                 "1" + "0" * 40, "9" * 400, "-" + "9" * 30, "abc", "", "0x10", "1.5", "2.5e9",
                 "true", "false", "null", "None", "[]", "{}", '"7"', "1,5", ".nan", ".inf",
                 "1_000", "７", "\u00a0", "1e9", "100000000", "-0"]
CONTROL = [b"\x00", b"\x01", b"\x1b[31m", b"\x7f", b"\r", b"\x0c", b"\xff", b"\xfe\xff",
           b"\xc3\x28", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x80", b"\t", b"\\x"]
NESTERS = [b"[", b"{", b"(", b"<a>", b"- ", b"  ", b"_base_ = ", b"{{", b"*a", b"&a "]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_TOKEN = re.compile(rb"[^\s,:=\[\]{}()<>\"']+")


class CaseTimeout(BaseException):
    """Raised by the alarm when one case runs past its budget (a hang)."""


def _case_timeout(seconds: float) -> BaseException:
    return CaseTimeout(f"case ran past its {seconds:g} s budget (a hang?)")


@contextlib.contextmanager
def time_budget(seconds: float = CASE_BUDGET_S,
                error: Callable[[float], BaseException] = _case_timeout) -> Iterator[None]:
    """Interrupt the block with ``error(seconds)`` (CaseTimeout unless given) after
    ``seconds`` (main thread, POSIX only)."""
    def on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise error(seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(call: Callable[[], object], budget: float = CASE_BUDGET_S) -> str:
    """Run ``call`` under the budget: "ok" for a result, "error" for an AnchorfitError.

    Any other exception propagates (the test fails and hypothesis shrinks the input), a hang
    raises CaseTimeout. An AnchorfitError must carry a message (an empty one is no help).
    """
    try:
        with time_budget(budget):
            call()
    except AnchorfitError as exc:
        assert str(exc).strip(), "an AnchorfitError without a message"
        return "error"
    return "ok"


# --------------------------------------------------------------------------- mutations

def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


@st.composite
def mutate(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with 1-4 random mutations applied in turn (see the module docstring)."""
    data = seed
    for _ in range(draw(st.integers(1, 4))):
        data = draw(_one_mutation(data))
    return data


def _one_mutation(data: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(_replace_number, st.just(data), st.integers(0, 10**6),
                  st.sampled_from(NASTY_NUMBERS)),
        st.builds(_replace_number, st.just(data), st.integers(0, 10**6),
                  st.sampled_from(NASTY_NUMBERS)),
        st.builds(_delete_line, st.just(data), st.integers(0, 10**6)),
        st.builds(_duplicate_lines, st.just(data), st.integers(0, 10**6), st.integers(1, 30),
                  st.integers(1, 3)),
        st.builds(_swap_lines, st.just(data), st.integers(0, 10**6), st.integers(0, 10**6)),
        st.builds(_truncate, st.just(data), st.integers(0, 10**6)),
        st.builds(_insert, st.just(data), st.integers(0, 10**6), st.sampled_from(CONTROL)),
        st.builds(_insert, st.just(data), st.integers(0, 10**6), st.binary(min_size=1,
                                                                            max_size=8)),
        st.builds(_nest, st.just(data), st.integers(0, 10**6), st.sampled_from(NESTERS),
                  st.sampled_from([2, 50, 1200, 5000])),
        st.builds(_replace_token, st.just(data), st.integers(0, 10**6),
                  st.sampled_from(NASTY_NUMBERS + ["x" * 300, "-", "#", ";", "\\", "'", "\""])),
        st.builds(_delete_token, st.just(data), st.integers(0, 10**6)),
    )


def _replace_number(data: bytes, pick: int, new: str) -> bytes:
    found = list(_NUMBER.finditer(data))
    if not found:
        return data
    m = found[pick % len(found)]
    return data[:m.start()] + new.encode() + data[m.end():]


def _replace_token(data: bytes, pick: int, new: str) -> bytes:
    found = list(_TOKEN.finditer(data))
    if not found:
        return data
    m = found[pick % len(found)]
    return data[:m.start()] + new.encode() + data[m.end():]


def _delete_token(data: bytes, pick: int) -> bytes:
    return _replace_token(data, pick, "")


def _delete_line(data: bytes, pick: int) -> bytes:
    lines = _lines(data)
    del lines[pick % len(lines)]
    return b"".join(lines)


def _duplicate_lines(data: bytes, pick: int, span: int, times: int) -> bytes:
    lines = _lines(data)
    i = pick % len(lines)
    block = lines[i:i + span]
    if block and not block[-1].endswith(b"\n"):
        block[-1] += b"\n"
    return b"".join(lines[:i] + block * (times + 1) + lines[i + span:])


def _swap_lines(data: bytes, a: int, b: int) -> bytes:
    lines = _lines(data)
    i, j = a % len(lines), b % len(lines)
    lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def _truncate(data: bytes, at: int) -> bytes:
    return data[:at % (len(data) + 1)]


def _insert(data: bytes, at: int, what: bytes) -> bytes:
    i = at % (len(data) + 1)
    return data[:i] + what + data[i:]


def _nest(data: bytes, at: int, opener: bytes, depth: int) -> bytes:
    i = at % (len(data) + 1)
    return data[:i] + opener * depth + data[i:]
