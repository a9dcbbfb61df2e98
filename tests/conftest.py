"""Shared fixtures. Real inputs: the small files shipped in tests/data (``shipped_data``, always
there) and the larger ../shared/data folder beside the repository (``shared_data``, extra coverage:
tests that need it skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: real configs and annotations shipped with the repository, laid out like ../shared/data
#: (``configs/...``, ``annotations/...``); origin and licence of each in tests/data/SOURCES.md
SHIPPED_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder beside the repository; skip the test when it is absent.

    Use it for what cannot be shipped (WIDER FACE, FDDB) and for walks over the whole folder;
    a test that needs a few files takes ``shipped_data``."""
    return _shared_or_skip("the whole shared data folder")


def _shared_or_skip(what: str) -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs {what} from ../shared/data beside the repository "
                    f"(not found at {SHARED_DATA})")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_wider() -> Path:
    """../shared/data for a test that needs WIDER FACE's real files: their terms (non-commercial
    research) keep them out of the repository. Skips, saying so, without the folder."""
    return _shared_or_skip("WIDER FACE (not shippable: non-commercial terms)")


@pytest.fixture(scope="session")
def shared_fddb() -> Path:
    """../shared/data for a test that needs the FDDB ellipse list (its source has no licence, so
    it is not shipped). Skips, saying so, without the folder."""
    return _shared_or_skip("the FDDB ellipse list (not shippable: no licence)")


@pytest.fixture(scope="session")
def shipped_data() -> Path:
    """tests/data: the shared files the tests need, copied (same relative paths), never skips."""
    assert (SHIPPED_DATA / "configs").is_dir() and (SHIPPED_DATA / "annotations").is_dir()
    return SHIPPED_DATA


@pytest.fixture(scope="session")
def config_data() -> Path:
    """../shared/data when it is beside the repository (every file), else tests/data (the
    shipped copies, same relative paths): for tests that read configs and annotations the
    repository ships, with the whole shared folder as extra coverage where present."""
    return SHARED_DATA if SHARED_DATA.is_dir() else SHIPPED_DATA


@pytest.fixture(scope="session")
def wider_val_or_coco128() -> Path:
    """Many real boxes for tests whose point is not WIDER FACE itself (clustering against a
    reference, CLI plumbing): WIDER FACE val from ../shared/data when it is there, else the
    shipped COCO128 json (929 boxes; read both with ``--policy none``)."""
    wider = SHARED_DATA / "annotations" / "wider_face" / "wider_face_val_bbx_gt.txt"
    if wider.is_file():
        return wider
    return SHIPPED_DATA / "annotations" / "coco128_cocojson" / "instances_train2017.json"


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
from hypothesis import Phase as _Phase  # noqa: E402
from hypothesis import settings as _settings  # noqa: E402

# No "explain" phase: it replays the failing case under sys.settrace, which makes a 2 s case
# overrun the per-case budget and report a CaseTimeout in place of the real failure.
_FUZZ_COMMON = dict(deadline=None, database=None, print_blob=True,
                    phases=[_Phase.explicit, _Phase.reuse, _Phase.generate, _Phase.target,
                            _Phase.shrink],
                    suppress_health_check=[_HealthCheck.too_slow, _HealthCheck.data_too_large,
                                           _HealthCheck.filter_too_much])
_settings.register_profile("fuzz-ci", derandomize=True, max_examples=40, **_FUZZ_COMMON)
_settings.register_profile("long", derandomize=False,
                           max_examples=int(_os.environ.get("ANCHORFIT_FUZZ_EXAMPLES", "2000")),
                           **_FUZZ_COMMON)
