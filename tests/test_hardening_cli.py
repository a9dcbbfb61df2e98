"""Issue 12 at the command line: Ctrl-C, escaped names, and number flags checked at parsing."""

from __future__ import annotations

import argparse
import csv
import io
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anchorfit.cli import validate
from anchorfit.report.escape import csv_safe, markdown_safe, terminal_safe

REPO = Path(__file__).resolve().parents[1]
NETS = Path(__file__).parent / "nets" / "erf_nets.py"
TINY = f"{NETS}:tiny_bn"


# --------------------------------------------------------------------------- Ctrl-C


def _interrupt(args: list[str], marker: str, delay: float = 0.0) -> tuple[int, str]:
    """Run ``python -X importtime -m anchorfit ARGS``; send SIGINT once an import line
    matching ``marker`` appears on stderr (a deterministic point in start-up), after ``delay``."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "anchorfit", *args],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    try:
        assert proc.stderr is not None
        pattern = re.compile(marker)
        for line in proc.stderr:
            seen.append(line)
            if pattern.search(line):
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, "".join(seen) + (rest or "")


@pytest.mark.parametrize("marker", [r"\|\s+numpy$", r"\|\s+pandas$"])
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(marker):
    code, err = _interrupt(["show", "yolov3", "-f", "json"], marker)
    assert re.search(marker, err, re.M), "the marker import never happened"
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "anchorfit: interrupted" in err


def test_ctrl_c_during_work_exits_130_without_a_traceback():
    code, err = _interrupt(["erf", TINY, "--input", "40", "--samples", "1000000"],
                           r"\|\s+torch$", delay=1.5)
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "anchorfit: interrupted" in err


def test_ctrl_c_while_the_parser_is_built_is_130(monkeypatch, capsys):
    """In-process: an interrupt before argument parsing finishes (command modules import pandas
    there) is caught like one in a command."""
    import anchorfit.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["show", "yolov3"]) == 130
    assert capsys.readouterr().err == "anchorfit: interrupted\n"


# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("cell, want", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+SUM(1,2)", "'+SUM(1,2)"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "\\x09=1"),
    ("-3.5", "-3.5"),
    ("+1e-3", "+1e-3"),
    ("-", "-"),
    ("conv4_3", "conv4_3"),
    ("P3\x1b[2J", "P3\\x1b[2J"),
    ("a\nb", "a\\x0ab"),
    (12.5, 12.5),
])
def test_csv_safe(cell, want):
    assert csv_safe(cell) == want


def test_terminal_safe_keeps_layout_and_shows_controls():
    text = "level\tP3\n\x1b]0;owned\x07name\u202eevil\x9b31m\x7f\udcff"
    assert terminal_safe(text) == ("level\tP3\n\\x1b]0;owned\\x07name\\u202eevil\\x9b31m\\x7f"
                                   "\\udcff")
    assert terminal_safe("a\tb\nc", one_line=True) == "a\\x09b\\x0ac"
    assert markdown_safe("a|b\x1b") == "a\\|b\\x1b"


HOSTILE = {"conv3_3": "=cmd|' /C calc'!A0", "fc7": "P\x1b]0;owned\x07\x1b[2J|x"}


@pytest.fixture
def hostile_spec(tmp_path: Path) -> Path:
    """The S3FD spec shipped with anchorfit, two level names replaced by hostile ones."""
    import yaml

    import anchorfit

    text = (Path(anchorfit.__file__).parent / "configs" / "s3fd.yaml").read_text()
    for old, new in HOSTILE.items():
        quoted = yaml.safe_dump(new, default_style='"').strip()
        text = text.replace(f"{{name: {old}, from:", f"{{name: {quoted}, from:")
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


def test_csv_cells_are_guarded_against_formulas(run_cli, hostile_spec):
    code, out, err = run_cli("show", str(hostile_spec), "-f", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    levels = [r[0] for r in rows[1:]]
    assert levels[0] == "'=cmd|' /C calc'!A0"
    assert levels[3] == "P\\x1b]0;owned\\x07\\x1b[2J|x"
    assert "\x1b" not in out and "\x07" not in out
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r)


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_terminal_output_has_no_control_characters(run_cli, hostile_spec, fmt):
    code, out, err = run_cli("show", str(hostile_spec), "-f", fmt)
    assert code == 0, err
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", out + err)
    assert "P\\x1b]0;owned\\x07\\x1b[2J" in out
    if fmt == "md":  # a '|' in a name must not open a new column
        row = next(line for line in out.splitlines() if "owned" in line)
        assert row.count(" | ") == out.splitlines()[0].count(" | ")


def test_error_messages_are_escaped(run_cli, tmp_path):
    code, _, err = run_cli("show", str(tmp_path / "x\x1b[2J.cfg"))
    assert code == 2 and "\x1b" not in err and "x\\x1b[2J.cfg" in err


# --------------------------------------------------------------------------- number flags


@pytest.mark.parametrize("args, message", [
    (["kmeans", "x.json", "--anchor-t", "nan"], "argument --anchor-t: expected a finite number "
                                                "above 1, got 'nan'"),
    (["kmeans", "x.json", "--anchor-t", "1"], "argument --anchor-t: expected a finite number"),
    (["boxes", "x.json", "--min-size", "nan"], "argument --min-size: expected a finite number "
                                               "at least 0, got 'nan'"),
    (["compare", "s3fd", "--boxes", "x.json", "--min-size", "-inf"], "argument --min-size"),
    (["compare", "s3fd", "--boxes", "x.json", "--ratio", "inf"], "argument --ratio: expected a "
                                                                 "finite number above 0"),
    (["plan", "--ratio", "nan"], "argument --ratio"),
    (["plan", "--seed", "-1"], "argument --seed: expected an integer seed from 0 to 4294967295"),
    (["erf", TINY, "--seed", str(2**32)], "argument --seed"),
    (["boxes", "x.json", "--seed", "1.5"], "argument --seed"),
    (["erf", TINY, "--ci-target", "nan"], "argument --ci-target: expected a finite number above "
                                          "0 and below 1"),
    (["show", "s3fd", "--input", "640x"], "--input '640x' is not a size"),
    (["show", "s3fd", "--input", "x640"], "--input 'x640' is not a size"),
    (["show", "s3fd", "--input", "640x480x3"], "is not a size"),
    (["show", "s3fd", "--input", "9" * 5000], "is not a size"),
    (["show", "s3fd", "--input", "100000"], "a side above 65536 px"),
    (["boxes", "x.json", "--jitter", "0.9,inf"], "--jitter '0.9,inf'"),
    (["audit", "s3fd", "--erf", "conv3_3=nan"], "--erf 'conv3_3=nan'"),
    (["audit", "s3fd", "--erf", "conv3_3=inf"], "--erf 'conv3_3=inf'"),
    (["erf", TINY, "--input", "40", "--anchors", "nan,4"], "--anchors 'nan,4'"),
    (["compare", "s3fd", "--boxes", "x.json", "--force"], "--force is for --export-to"),
])
def test_bad_flags_exit_2_naming_the_flag(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 2, err
    assert message in err and "Traceback" not in err and out == ""


def test_validators_accept_the_edges():
    assert validate.seed("0") == 0 and validate.seed(str(2**32 - 1)) == 2**32 - 1
    assert validate.finite_float(at_least=0)("0") == 0.0
    assert validate.finite_float(above=0, below=1)("0.5") == 0.5
    with pytest.raises(argparse.ArgumentTypeError):
        validate.finite_float(above=0, below=1)("1")
    assert validate.figure_file("a.SVG") == "a.SVG" and validate.figure_file("-") == "-"
    from anchorfit.cli.common import parse_hw

    assert parse_hw(" 480 x 640 ") == (480, 640) and parse_hw("512") == (512, 512)
    assert parse_hw("384,640") == (384, 640) and parse_hw("65536") == (65536, 65536)
