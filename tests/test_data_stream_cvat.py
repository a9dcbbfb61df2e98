"""The streaming CVAT reader gives what ``read_cvat`` gives: the same rows, side tables and
messages, in the same order of precedence (UTF-8, syntax, root, first bad image). Pieces are
shrunk to a few bytes so every element, attribute and multi-byte character crosses a boundary."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest

from anchorfit.data import boxes as boxes_module
from anchorfit.data import cvat_stream
from anchorfit.data.boxes import Boxes
from anchorfit.data.cvat import read_cvat
from anchorfit.data.cvat_stream import read_cvat_stream
from anchorfit.data.io import read_annotations
from test_data_stream import assert_same, outcome

CVAT = "annotations/voc2012_subset100/cvat_xml/annotations.xml"
SEED = Path(__file__).resolve().parent / "data" / "fuzz_seeds" / "cvat_first3.xml"


@pytest.fixture(params=[1 << 20, 7, 1], ids=["1MiB", "7B", "1B"])
def chunk(request, monkeypatch):
    monkeypatch.setattr(cvat_stream, "CHUNK", request.param)
    return request.param


def assert_same_outcome(path: Path) -> None:
    exact, stream = outcome(read_cvat, path), outcome(read_cvat_stream, path)
    if isinstance(exact, Boxes):
        assert isinstance(stream, Boxes), stream
        assert_same(exact, stream)
    else:
        assert exact == stream


def _doc(images: str, labels: str = "<label><name>car</name></label>", head: str = "",
         tail: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n'
            f"<meta><task><labels>{labels}</labels></task></meta>\n{head}{images}{tail}"
            "</annotations>\n")


IMG = ('<image id="{i}" name="img{i}.jpg" width="640" height="480">\n'
       '  <box label="{label}" occluded="0" xtl="{x}" ytl="10.5" xbr="{x2}" ybr="90.25"/>\n'
       '  <box label="person" xtl="1" ytl="2" xbr="3" ybr="5"></box>\n</image>\n')


def _images(n: int = 4, label: str = "car") -> str:
    return "".join(IMG.format(i=i, label=label, x=10 + i, x2=50 + 3 * i) for i in range(n))


def test_shared_cvat_file(config_data, chunk):
    path = config_data / CVAT
    assert_same_outcome(path)
    boxes = read_cvat_stream(path)
    assert (len(boxes.image_names), len(boxes)) == (100, 273)  # SOURCES.md's counts


def test_read_annotations_streams_cvat(config_data, monkeypatch):
    called = []
    original = cvat_stream._Reader.run
    monkeypatch.setattr(cvat_stream._Reader, "run",
                        lambda self, *a: (called.append(1), original(self, *a))[1])
    assert_same(read_cvat(config_data / CVAT), read_annotations(config_data / CVAT))
    assert called


ODD = {
    "regular": _doc(_images()),
    "bom": "\ufeff" + _doc(_images()),
    "no_labels": _doc(_images(), labels=""),
    "label_not_in_meta": _doc(_images(3, label="truck")),
    "image_without_size": _doc('<image name="a.jpg"><box label="car" xtl="1" ytl="2" '
                               'xbr="5" ybr="9"/></image>'),
    "size_decimal_comma": _doc('<image name="a.jpg" width="6,5" height="4"/>'),
    "image_without_name": _doc(_images(2) + '<image width="3" height="4"/>' + _images(2)),
    "box_without_xbr": _doc(_images(1) + '<image name="z" width="3" height="4">'
                            '<box label="car" xtl="1" ytl="1" ybr="2"/></image>'),
    "box_word": _doc('<image name="z" width="3" height="4"><box label="car" xtl="one" '
                     'ytl="1" xbr="2" ybr="2"/></image>'),
    "box_nan_inf": _doc('<image name="z" width="3" height="4"><box label="car" xtl="nan" '
                        'ytl="1" xbr="inf" ybr="2"/></image>'),
    "box_without_label": _doc('<image name="z" width="3" height="4"><box xtl="1" ytl="1" '
                              'xbr="2" ybr="2"/></image>'),
    "boxes_deeper": _doc('<image name="z" width="3" height="4"><g><box label="car" xtl="1" '
                         'ytl="1" xbr="2" ybr="2"/></g></image>'),
    "track_boxes_ignored": _doc(_images(2), tail='<track id="0" label="car"><box frame="0" '
                                'xtl="1" ytl="1" xbr="2" ybr="2"/></track>'),
    "images_deeper": _doc("<group>" + _images(2) + "</group>" + _images(1)),
    "same_name_twice": _doc(_images(2) + _images(2)),
    "nested_image": _doc('<image name="outer" width="9" height="9"><box label="car" xtl="1" '
                         'ytl="1" xbr="2" ybr="2"/>' + _images(1) + "</image>"),
    "labels_after_images": _doc(_images(2), labels="", tail="<meta><task><labels><label>"
                                "<name>zebra</name></label></labels></task></meta>"),
    "project_labels": _doc(_images(1), labels="").replace(
        "<meta><task>", "<meta><project><labels><label><name>dog</name></label></labels>"
        "</project><task>"),
    "wrong_root": '<?xml version="1.0"?>\n<annotation><image name="a"/></annotation>\n',
    "wrong_root_then_syntax": '<annotation><image name="a"/>\n<b></annotation>\n',
    "bad_image_then_syntax": _doc(_images(1) + '<image width="3"/>' + _images(1) + "<oops>"),
    "bad_image_then_bad_utf8": _doc(_images(1) + '<image width="3"/>' + _images(1) + "\udcff"),
    "syntax_then_bad_utf8": _doc(_images(1) + "<a b='1' b='2'/>" + _images(1) + "\udcff"),
    "junk_after_root": _doc(_images(1)) + "<extra/>",
    "entity": _doc('<image name="a&amp;b" width="3" height="4"/>'),
    "undefined_entity": _doc('<image name="a&nope;b" width="3" height="4"/>'),
    "multibyte_names": _doc('<image name="él€phant.jpg" width="3" height="4"><box '
                            'label="ünï" xtl="1" ytl="1" xbr="2" ybr="3"/></image>'),
    "comment_and_cdata": _doc("<!-- a comment -->" + _images(1) + "<![CDATA[x<y]]>"),
    "empty": "",
    "only_declaration": '<?xml version="1.0"?>\n',
    "encoding_latin1_declared": '<?xml version="1.0" encoding="ISO-8859-1"?>\n<annotations>'
                                '<image name="é" width="1" height="2"/></annotations>',
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_documents_same_rows_or_message(tmp_path, name, chunk):
    path = tmp_path / "odd.xml"
    path.write_bytes(ODD[name].encode("utf-8", errors="surrogateescape"))
    assert_same_outcome(path)


def test_messages_say_what_and_where(tmp_path):
    path = tmp_path / "odd.xml"
    path.write_bytes(ODD["bad_image_then_syntax"].encode())
    kind, message = outcome(read_cvat_stream, path)
    assert "malformed XML" in message and "line" in message  # syntax wins over the bad image
    path.write_bytes(ODD["image_without_name"].encode())
    assert "<image> without a name attribute" in outcome(read_cvat_stream, path)[1]


def test_every_truncation_gives_the_same_outcome(tmp_path, monkeypatch):
    monkeypatch.setattr(cvat_stream, "CHUNK", 5)
    text = _doc(_images(2)).encode()
    path = tmp_path / "cut.xml"
    for end in range(0, len(text), 3):
        path.write_bytes(text[:end])
        assert_same_outcome(path)


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_invalid_utf8_names_the_same_byte(tmp_path, bom, chunk):
    text = _doc(_images(3)).encode()
    path = tmp_path / "bad.xml"
    for where in (0, 1, 40, len(text) // 2, len(text) - 1):
        for bad in (b"\xff", b"\xc3", b"\xe2\x82"):
            path.write_bytes(bom + text[:where] + bad + text[where:])
            assert_same_outcome(path)
            assert "not a UTF-8 text file" in outcome(read_cvat_stream, path)[1]


def test_fuzz_seed(chunk):
    assert_same_outcome(SEED)


def test_devices_and_folders_are_refused(tmp_path):
    assert outcome(read_cvat_stream, tmp_path)[0] == outcome(read_cvat, tmp_path)[0]
    fifo = tmp_path / "fifo.xml"
    import os

    os.mkfifo(fifo)
    kind, message = outcome(read_cvat_stream, fifo)
    assert kind == "AnchorfitError" and "fifo" in message.lower()


def test_memory_is_bounded_by_the_piece_not_the_file(tmp_path, monkeypatch):
    """20,000 images (4.6 MB): read_cvat holds the text and the whole tree; the stream holds the
    elements of one 256 KiB piece (the parser reports a piece's events together)."""
    monkeypatch.setattr(boxes_module, "_CHUNK", 4096)  # rows packed early: the readers remain
    path = tmp_path / "big.xml"
    path.write_text(_doc(_images(20_000)))

    def peak(reader) -> int:
        tracemalloc.start()
        try:
            reader(path)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    exact, stream = peak(read_cvat), peak(read_cvat_stream)
    assert stream * 4 < exact, (stream, exact)


def test_progress_counts_every_byte(tmp_path, monkeypatch):
    import io

    from anchorfit.data.progress import status

    monkeypatch.setattr(cvat_stream, "CHUNK", 512)
    path = tmp_path / "annotations.xml"
    path.write_text(_doc(_images(40)))
    stream = io.StringIO()
    with status("reading", stream=stream, interval=0):
        read_annotations(path)
    size = path.stat().st_size
    lines = [ln for ln in stream.getvalue().splitlines()
             if ln.startswith("reading annotations.xml: ")]
    assert len(lines) > 3 and f"{size / 1e3:.1f} kB of {size / 1e3:.1f} kB (100%)" in lines[-1]
