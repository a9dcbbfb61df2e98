"""Box CSVs read a block at a time in C (``csv_blocks``) give what the row-by-row reader gives:
the same rows, side tables, notes and messages, whether a block is taken or left to the rows.
Blocks are shrunk to a few dozen bytes so every odd line lands in a block of its own, at a
block's edge, and after blocks already taken."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from anchorfit.data import csvfmt
from anchorfit.data.boxes import Boxes
from anchorfit.data.csvfmt import read_csv
from anchorfit.data.sizes import SizeTable
from test_data_stream import assert_same, outcome

A = "annotations"
SHARED_CSVS = ["raccoon/raccoon_labels.csv", "raccoon/train_labels.csv",
               "raccoon/test_labels.csv", "voc2012_subset100/openimages_csv/all_bounding_boxes.csv"]

OI_HEADER = ("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
             "IsGroupOf,IsDepiction,IsInside")
PX_HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax"


def _oi_rows(n: int = 30) -> list[str]:
    return [f"{i % 7:016x},xclick,/m/0{i % 3}k,1,0.{i + 1:03d}5,0.{i + 50:03d}25,"
            f"0.{2 * i + 3:03d},0.{2 * i + 70:03d},0,1,0,0,0" for i in range(n)]


def _px_rows(n: int = 30) -> list[str]:
    return [f"img{i % 5}.jpg,{640 + 10 * (i % 5)},480,{('cat', 'dog', ' cat')[i % 3]},"
            f"{i}.5,{2 * i},{i + 17.25},{3 * i + 9}" for i in range(n)]


def read_plain(path: Path, **kw):
    """The row-by-row reader alone: no block is ever taken."""
    original = csvfmt.parse_block
    csvfmt.parse_block = lambda *a, **k: None
    try:
        return outcome(read_csv, path, **kw)
    finally:
        csvfmt.parse_block = original


def assert_same_outcome(path: Path, **kw) -> None:
    plain, blocks = read_plain(path, **kw), outcome(read_csv, path, **kw)
    if isinstance(plain, Boxes):
        assert isinstance(blocks, Boxes), blocks
        assert_same(plain, blocks)
    else:
        assert plain == blocks


@pytest.fixture(params=[1 << 22, 97, 1], ids=["4MiB", "97B", "1B"])
def block(request, monkeypatch):
    monkeypatch.setattr(csvfmt, "BLOCK", request.param)
    return request.param


@pytest.mark.parametrize("rel", SHARED_CSVS)
def test_every_shared_csv(config_data, rel, block):
    assert_same_outcome(config_data / A / rel)


def test_shared_open_images_keeps_its_decimal_commas(config_data):
    boxes = read_csv(config_data / A / SHARED_CSVS[-1])
    assert len(boxes) == 273 and boxes.units == "normalized"  # SOURCES.md: 273 boxes


def _write(tmp_path: Path, header: str, rows: list[str], *, end: str = "\n",
           raw: bytes | None = None) -> Path:
    path = tmp_path / "boxes.csv"
    path.write_bytes(raw if raw is not None else (header + end + end.join(rows) + end).encode(
        "utf-8", errors="surrogateescape"))
    return path


def test_plain_files_take_the_blocks(tmp_path, monkeypatch, block):
    taken = []
    original = csvfmt._Rows.add_block
    monkeypatch.setattr(csvfmt._Rows, "add_block",
                        lambda self, b, line: (taken.append(b.rows), original(self, b, line)))
    for header, rows in ((OI_HEADER, _oi_rows(200)), (PX_HEADER, _px_rows(200))):
        taken.clear()
        path = _write(tmp_path, header, rows)
        assert_same_outcome(path)
        assert sum(taken) == 200


ODD_LINES = {
    "quoted_decimal_comma": '0000000000000001,xclick,/m/0k,1,"0,25","0,5","0,125","0,75",0,1,0,0,0',
    "quoted_field": '"0000000000000001",xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0',
    "blank_line": "",
    "spaces_line": "   ",
    "commas_only": "," * 12,
    "short_row": "0000000000000001,xclick,/m/0k,1,0.25,0.5",
    "long_row": "0000000000000001,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0,extra",
    "long_then_short": "0000000000000001,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0,x,y\n"
                       "0000000000000002,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0",
    "nan_and_inf": "0000000000000001,xclick,/m/0k,1,nan,0.5,-inf,Infinity,0,1,0,0,0",
    "huge_and_tiny": "0000000000000001,xclick,/m/0k,1,1e400,0.5,1e-400,0.75,0,1,0,0,0",
    "underscores": "0000000000000001,xclick,/m/0k,1,0.2_5,0.5,0.125,0.75,0,1,0,0,0",
    "word": "0000000000000001,xclick,/m/0k,1,left,0.5,0.125,0.75,0,1,0,0,0",
    "empty_number": "0000000000000001,xclick,/m/0k,1,,0.5,0.125,0.75,0,1,0,0,0",
    "spaces_around": " 0000000000000001 ,xclick, /m/0k ,1, 0.25 ,0.5\t,0.125,0.75,0,1,0,0,0",
    "hash": "#000000000000001,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0",
    "hex_float": "0000000000000001,xclick,/m/0k,1,0x1p-2,0.5,0.125,0.75,0,1,0,0,0",
    "unicode_digits": "0000000000000001,xclick,/m/0k,1,\u0661.5,0.5,0.125,0.75,0,1,0,0,0",
    "nul": "0000000000000001,xclick,/m/0k,1,0.25,0.5\x00,0.125,0.75,0,1,0,0,0",
    "bad_utf8": "0000000000000001,xclick,/m/0k\udcff,1,0.25,0.5,0.125,0.75,0,1,0,0,0",
    "multibyte_name": "é€ü,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0",
    "negative_zero": "0000000000000001,xclick,/m/0k,1,-0,0.5,-0.0,0.75,0,1,0,0,0",
    "quote_in_name": 'a"b,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0',
    "big_coordinates": "0000000000000001,xclick,/m/0k,1,12,400,30,90,0,1,0,0,0",
    "long_and_short_cancel": "0000000000000001,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0,x\n"
                             "0000000000000002,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0",
    "bom_inside": "\ufeff0000000000000001,xclick,/m/0k,1,0.25,0.5,0.125,0.75,0,1,0,0,0",
    "bom_in_number": "0000000000000001,xclick,/m/0k,1,\ufeff0.25,0.5,0.125,0.75,0,1,0,0,0",
    "control_chars": "00\x1a0\x0c1\x7f,xclick,/m/0\x1bk,1,0.25,0.5,0.125,0.75,0,1,0,0,0",
    "unicode_spaces": "\u00a00001\u2028,xclick,/m/0k,1,0.25,\u00a00.5,0.125,0.75,0,1,0,0,0",
    "names_like_numbers": "1e5,xclick,1.50,1,0.25,0.5,0.125,0.75,0,1,0,0,0\n"
                          "-0,xclick,nan,1,0.25,0.5,0.125,0.75,0,1,0,0,0\n"
                          "True,xclick,NA,1,0.25,0.5,0.125,0.75,0,1,0,0,0",
    "many_digits": "0000000000000001,xclick,/m/0k,1,0.12345678901234567890123,0.5,"
                   "0.1000000000000000055511151231257827,0.75,0,1,0,0,0",
}


@pytest.mark.parametrize("name", sorted(ODD_LINES))
@pytest.mark.parametrize("where", [0, 13, 30])
def test_odd_line_same_rows_or_message(tmp_path, name, where, block):
    rows = _oi_rows()
    rows.insert(where, ODD_LINES[name])
    assert_same_outcome(_write(tmp_path, OI_HEADER, rows))


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_endings(tmp_path, end, block):
    assert_same_outcome(_write(tmp_path, OI_HEADER, _oi_rows(), end=end))
    assert_same_outcome(_write(tmp_path, PX_HEADER, _px_rows(), end=end))


@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n\n", b"\r\n\r\n", b"\n  \n", b"\n,,,\n"])
def test_file_endings(tmp_path, tail, block):
    text = (OI_HEADER + "\n" + "\n".join(_oi_rows())).encode()
    assert_same_outcome(_write(tmp_path, "", [], raw=text + tail))


def test_bom_semicolons_and_quoted_header(tmp_path, block):
    rows = [r.replace(",", ";") for r in _px_rows()]
    assert_same_outcome(_write(tmp_path, "", [], raw=codecs.BOM_UTF8 + (
        PX_HEADER.replace(",", ";") + "\n" + "\n".join(rows) + "\n").encode()))
    quoted = '"filename","width","height","class","xmin","ymin","xmax","ymax"'
    assert_same_outcome(_write(tmp_path, quoted, _px_rows()))


@pytest.mark.parametrize("bad", ["nan", "", "wide"])
def test_image_sizes_unknown_in_some_rows(tmp_path, bad, block):
    rows = _px_rows()
    rows[7] = rows[7].replace(",640,", f",{bad},", 1).replace(",690,", f",{bad},", 1)
    rows.append("img0.jpg,nan,nan,cat,1,2,3,4")
    assert_same_outcome(_write(tmp_path, PX_HEADER, rows))


def test_sizes_table_and_normalised_coordinates(tmp_path, block):
    sizes = SizeTable({f"{i:016x}": (100.0 + i, 50.0 + i) for i in range(0, 7, 2)})
    path = _write(tmp_path, OI_HEADER, _oi_rows())
    for kw in ({"sizes": sizes}, {"normalized": False}, {"normalized": True, "sizes": sizes}):
        assert_same_outcome(path, **kw)


def test_columns_given_by_the_caller(tmp_path, block):
    header = "pic,kind,a,b,c,d"
    rows = [f"p{i % 4}.png,k{i % 2},{i},{i + 1},{i + 5},{i + 9}" for i in range(40)]
    path = _write(tmp_path, header, rows)
    assert_same_outcome(path, columns={"image": "pic", "class": "kind", "x1": "a", "y1": "b",
                                       "x2": "c", "y2": "d"})


def test_every_truncation_gives_the_same_outcome(tmp_path, monkeypatch):
    monkeypatch.setattr(csvfmt, "BLOCK", 61)
    text = (PX_HEADER + "\n" + "\n".join(_px_rows(8)) + "\n").encode()
    for end in range(0, len(text), 5):
        assert_same_outcome(_write(tmp_path, "", [], raw=text[:end]))


def test_decode_error_inside_the_reference_window(tmp_path, monkeypatch):
    """A bad number and, a few lines later, invalid UTF-8: the row reader decodes 8 KiB at a
    time and meets the UTF-8 first; after blocks were taken the outcome must not change."""
    monkeypatch.setattr(csvfmt, "BLOCK", 2000)
    rows = _oi_rows(400)
    rows[200] = ODD_LINES["word"]
    rows[203] = ODD_LINES["bad_utf8"]
    assert_same_outcome(_write(tmp_path, OI_HEADER, rows))


@pytest.mark.parametrize("odd_at", [None, 150])
def test_progress_counts_every_byte(tmp_path, monkeypatch, odd_at):
    """Off a terminal the last line says the whole file was read, whether blocks, rows or both
    (the row reader takes over at line ``odd_at``) did the reading."""
    import io

    from anchorfit.data.progress import status

    monkeypatch.setattr(csvfmt, "BLOCK", 512)
    rows = _oi_rows(300)
    if odd_at:
        rows[odd_at] = ODD_LINES["quoted_decimal_comma"]
    path = _write(tmp_path, OI_HEADER, rows)
    stream = io.StringIO()
    with status("reading", stream=stream, interval=0):
        read_csv(path)
    size = path.stat().st_size
    last = [ln for ln in stream.getvalue().splitlines() if ln.startswith("reading boxes.csv: ")]
    assert last and f"{size / 1e3:.1f} kB of {size / 1e3:.1f} kB (100%)" in last[-1]
