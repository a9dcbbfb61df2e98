"""Shared fixtures. Real inputs live in ../shared/data (never copied here); tests skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder beside the repository; skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``anchorfit ARGS`` in-process; returns (exit status, stdout, stderr)."""
    from anchorfit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


# Hypothesis profiles of the fuzz suite (tests/test_fuzz.py). "fuzz-ci" (the default) is
# derandomized: the same cases on every run, the whole suite well under a minute. "long" is for
# local runs: `ANCHORFIT_FUZZ=long pytest tests/test_fuzz.py` or `--hypothesis-profile=long`
# (ANCHORFIT_FUZZ_EXAMPLES sets the cases per target, default 2000).
import os as _os  # noqa: E402

from hypothesis import HealthCheck as _HealthCheck  # noqa: E402
from hypothesis import settings as _settings  # noqa: E402

_FUZZ_COMMON = dict(deadline=None, database=None, print_blob=True,
                    suppress_health_check=[_HealthCheck.too_slow, _HealthCheck.data_too_large,
                                           _HealthCheck.filter_too_much])
_settings.register_profile("fuzz-ci", derandomize=True, max_examples=40, **_FUZZ_COMMON)
_settings.register_profile("long", derandomize=False,
                           max_examples=int(_os.environ.get("ANCHORFIT_FUZZ_EXAMPLES", "2000")),
                           **_FUZZ_COMMON)
