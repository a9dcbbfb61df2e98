"""YOLO label folders with a million small files: listed and read in threads, parsed in batches.

``yolo.read_yolo`` costs, per label file, a ``Path`` object from ``rglob``, up to twelve
``is_file`` probes for an image beside it, a text decode and a Python parse of every row: about
a minute of CPU for 1 M files. This reader gives the same Boxes (rows, images, classes, files,
skips, notes, messages) for a fraction of that:

* listing: ``os.scandir`` over sub-folders in a thread pool (``rglob`` semantics: symlinked
  folders are not entered, symlinked files count), sorted by path parts like ``sorted(Path)``;
* image sizes: each candidate image folder is listed once and probed in memory; headers are read
  only for the images that exist, as before;
* reading: batches of files are read by worker threads (the system calls release the GIL) while
  the main thread parses the previous batch;
* parsing: a file of plain ASCII numbers whose non-empty lines all have five fields is parsed for
  the whole batch at once (``float`` on every token, numpy for the rest); any other file (a
  segment or pose row, a decimal comma, a BOM, a bad field) goes through ``yolo``'s own
  ``parse_label_text``, which also words every error.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from anchorfit.data import progress as _progress
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.imagesize import image_size
from anchorfit.data.sizes import SizeTable
from anchorfit.data.yolo import (IMAGE_SUFFIXES, LIST_FILES, MAX_CLASS_ID, class_names,
                                 parse_label_text, read_yolo)
from anchorfit.data._parse import read_text
from anchorfit.errors import AnchorfitError

BATCH = 2048
_PLAIN = b"0123456789.-+eE \t\r\n"
_UNKNOWN_WHY = "no image file next to the label and no --image-sizes entry"


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(2, min(8, 2 * cpus))


def read_yolo_stream(path: str | Path, *, sizes: SizeTable | None = None,
                     image_size_wh: tuple[float, float] | None = None,
                     workers: int | None = None,
                     meter: _progress.Meter | None = None) -> Boxes:
    """Boxes of a YOLO label folder (same result as ``read_yolo``), read in parallel."""
    path = Path(path)
    if path.is_file():
        return read_yolo(path, sizes=sizes, image_size_wh=image_size_wh)
    meter = meter or _progress.current()
    workers = workers or default_workers()
    with ThreadPoolExecutor(workers) as pool:
        rels = [r for r in list_txt(path, pool) if r.rsplit("/", 1)[-1] not in LIST_FILES]
        prefix = str(path / "x")[:-1]
        b = BoxBuilder("yolo", str(path))
        b.set_classes(class_names(path))
        meter.start(f"reading {path.name or path}", len(rels), "files")
        try:
            labels = _Labels(b)
            probe = _ImageProbe()
            batches = [rels[i:i + BATCH] for i in range(0, len(rels), BATCH)]
            reads = _ahead(pool, ([prefix + r for r in batch] for batch in batches),
                           2 * workers)
            for batch, (files, contents) in zip(batches, reads):
                wh = []
                for f in files:
                    stem = f[:f.rindex(".")]
                    wh.append(image_size_wh or (sizes.get(stem) if sizes else None)
                              or probe.size(f))
                names = [r[:r.rindex(".")] for r in batch]
                labels.add(files, names, wh, contents)
                meter.advance(len(files))
        finally:
            meter.finish()
    return labels.pack()


def _ahead(pool: ThreadPoolExecutor, batches, depth: int):
    """Results of _read_batch over ``batches`` in order, with ``depth`` batches in flight."""
    pending: list = []
    for batch in batches:
        pending.append(pool.submit(_read_batch, batch))
        if len(pending) > depth:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


def _read_batch(files: list[str]) -> tuple[list[str], list[bytes | None]]:
    out: list[bytes | None] = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                out.append(fh.read())
        except OSError:
            out.append(None)  # read_text will say why, in order
    return files, out


# --------------------------------------------------------------------------- listing

def list_txt(folder: Path, pool: ThreadPoolExecutor) -> list[str]:
    """Relative paths ('/'-joined) of the .txt files under folder, in ``sorted(Path)`` order;
    the same files, and the same errors, as ``_parse.list_files(folder, ('.txt',))``."""
    try:
        top_files, top_dirs = _scan(str(folder), "")
    except OSError as exc:
        raise AnchorfitError(f"cannot list folder: {exc.strerror or exc}",
                             source=folder) from None
    found = list(top_files)
    for files in pool.map(lambda rel: _walk(str(folder), rel), top_dirs):
        found += files
    if not found:
        raise AnchorfitError("no .txt files found", source=folder)
    found.sort(key=lambda r: r.split("/"))
    return found


def _scan(root: str, rel: str) -> tuple[list[str], list[str]]:
    files, dirs = [], []
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        for entry in it:
            name = entry.name
            sub = f"{rel}/{name}" if rel else name
            try:
                is_dir = entry.is_dir() and not entry.is_symlink()
            except OSError:
                is_dir = False
            if is_dir:
                dirs.append(sub)
                continue
            i = name.rfind(".")
            if 0 < i < len(name) - 1 and name[i:].lower() == ".txt" and entry.is_file():
                files.append(sub)
    return files, dirs


def _walk(root: str, rel: str) -> list[str]:
    out: list[str] = []
    stack = [rel]
    while stack:
        try:
            files, dirs = _scan(root, stack.pop())
        except PermissionError:
            continue  # rglob skips what it may not list
        out += files
        stack += dirs
    return out


class _ImageProbe:
    """``yolo._header_size`` with each candidate folder listed once instead of probed 12 times:
    per folder, {stem: image names in ``IMAGE_SUFFIXES`` order}."""

    def __init__(self, keep: int = 64) -> None:
        self.folders: OrderedDict[str, dict[str, list[str]]] = OrderedDict()
        self.parents: dict[str, list[str]] = {}
        self.keep = keep

    def images(self, folder: str) -> dict[str, list[str]]:
        hit = self.folders.get(folder)
        if hit is None:
            found: list[tuple[int, str, str]] = []
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        for rank, suffix in enumerate(IMAGE_SUFFIXES):
                            if entry.name.endswith(suffix):
                                try:
                                    if entry.is_file():
                                        found.append((rank, entry.name[:-len(suffix)],
                                                      entry.name))
                                except OSError:
                                    pass
                                break
            except OSError:
                pass
            hit = {}
            for _, stem, name in sorted(found):
                hit.setdefault(stem, []).append(name)
            self.folders[folder] = hit
            if len(self.folders) > self.keep:
                self.folders.popitem(last=False)
        return hit

    def candidates(self, parent: str) -> list[str]:
        """The label's folder, then the same folder with the last 'labels' part as 'images'."""
        hit = self.parents.get(parent)
        if hit is None:
            hit = [parent]
            parts = parent.split("/")
            if "labels" in parts:
                j = len(parts) - 1 - parts[::-1].index("labels")
                hit.append("/".join(parts[:j] + ["images"] + parts[j + 1:]) or ".")
            if len(self.parents) > 4096:
                self.parents.clear()
            self.parents[parent] = hit
        return hit

    def size(self, label: str) -> tuple[float, float] | None:
        """The size ``_header_size(Path(label))`` finds, by string operations on the path."""
        cut = label.rfind("/")
        parent, name = (label[:cut] or "/", label[cut + 1:]) if cut >= 0 else (".", label)
        stem = name[:name.rfind(".")]
        for folder in self.candidates(parent):
            for image in self.images(folder).get(stem, ()):
                size = image_size(os.path.join(folder, image))
                if size:
                    return float(size[0]), float(size[1])
        return None


# --------------------------------------------------------------------------- parsing

class _Labels:
    """Images registered in order (as pack_labels does first) and their rows, packed per batch
    into numpy columns."""

    def __init__(self, b: BoxBuilder) -> None:
        self.b = b
        self.image: list[np.ndarray] = []     # per file: image index
        self.origin: list[np.ndarray] = []    # per file: file index
        self.any_known = False
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in ("file", "line", "cls", "v")}
        self.n_files = 0

    def add(self, files: list[str], names: list[str], wh: list, contents: list) -> None:
        b, first = self.b, self.n_files
        nan = (float("nan"), float("nan"))
        self.image.append(np.array([b.image(n, *(s if s else nan)) for n, s in zip(names, wh)],
                                   dtype=np.int64))
        self.origin.append(np.array([b.file(f) for f in files], dtype=np.int64))
        self.any_known |= any(s is not None for s in wh)
        self.n_files += len(files)
        plain = [c is not None and not c.translate(None, _PLAIN) for c in contents]
        parsed = self._fast(contents, plain) if any(plain) else None
        if parsed is None:
            plain = [False] * len(files)
        for k, f in enumerate(files):
            if not plain[k]:
                text = read_text(Path(f)) if contents[k] is None else _decode(contents[k], f)
                rows = parse_label_text(text, Path(f))
                if rows:
                    arr = np.array([r[2:] for r in rows], dtype=np.float64)
                    self._put(np.full(len(rows), first + k), [r[0] for r in rows],
                              np.array([r[1] for r in rows], dtype=object), arr)
        if parsed is not None:
            file_k, line, cls, v = parsed
            self._put(first + file_k, line, cls, v)

    def _fast(self, contents: list, plain: list[bool]):
        """(batch image, line, class, (cx, cy, w, h)) of every plain file, or None when a
        token will not parse (then the whole batch goes the exact way, which says where)."""
        lines: list[bytes] = []
        per_file = []
        for k, c in enumerate(contents):
            if plain[k]:
                ls = c.splitlines()
                lines += ls
                per_file.append(len(ls))
            else:
                per_file.append(0)
        counts = np.fromiter(map(len, map(bytes.split, lines)), np.int64, len(lines))
        file_of = np.repeat(np.arange(len(contents)), per_file)
        odd = np.unique(file_of[(counts != 0) & (counts != 5)])
        for k in odd:
            plain[int(k)] = False
        keep = (counts == 5) & ~np.isin(file_of, odd)
        try:
            tokens = b" ".join(itertools.compress(lines, keep)).split()
            v = np.fromiter(map(float, tokens), np.float64, len(tokens)).reshape(-1, 5)
        except ValueError:
            return None
        cls = v[:, 0]
        if not (np.isfinite(cls).all() and (cls == np.floor(cls)).all()) \
                or not ((cls >= 0) & (cls < MAX_CLASS_ID)).all():
            return None
        starts = np.cumsum(per_file) - np.asarray(per_file)
        index = np.flatnonzero(keep)
        file_k = file_of[index]
        line = index - starts[file_k] + 1
        return file_k, line, cls.astype(np.int64), v[:, 1:]

    def _put(self, file_k, line, cls, v) -> None:
        self.cols["file"].append(np.asarray(file_k, np.int64))
        self.cols["line"].append(np.asarray(line, np.int64))
        self.cols["cls"].append(cls)
        self.cols["v"].append(np.asarray(v, np.float64).reshape(-1, 4))

    def pack(self) -> Boxes:
        """``yolo.pack_labels`` on the collected rows, vectorised: same rows, same order."""
        b = self.b
        units = "px" if self.any_known else "normalized"
        if not self.cols["file"]:
            return b.build(units=units)
        idx = np.concatenate(self.image)
        origin = np.concatenate(self.origin)
        file_k = np.concatenate(self.cols["file"])
        line = np.concatenate(self.cols["line"])
        order = np.lexsort((line, file_k))            # file order, then line order
        file_k, line = file_k[order], line[order]
        v = np.concatenate(self.cols["v"])[order]
        parts = self.cols["cls"]
        if any(c.dtype == object for c in parts):
            cls_raw = np.concatenate([c.astype(object) for c in parts])[order]
        else:
            cls_raw = np.concatenate(parts)[order]
        self.cols = {}
        img = idx[file_k]
        if units == "px":
            iw = np.asarray(b._iw, np.float64)[img]
            ih = np.asarray(b._ih, np.float64)[img]
            known = ~np.isnan(iw)
            if not known.all():
                b.skip("no_image_size", int((~known).sum()))
                img, line, v, cls_raw, iw, ih, file_k = (a[known] for a in (
                    img, line, v, cls_raw, iw, ih, file_k))
            sx, sy = iw, ih
        else:
            sx = sy = np.ones(len(img))
        cls = _class_indices(b, cls_raw)
        cx, cy, w, h = v[:, 0], v[:, 1], v[:, 2], v[:, 3]
        if b.skipped.get("no_image_size"):
            b.notes.append(f"{b.skipped['no_image_size']} boxes skipped: their image's size is "
                           f"unknown ({_UNKNOWN_WHY})")
        out = b.build(units=units)
        n = len(img)
        f32 = np.float32
        out.image, out.cls = img.astype(np.int32), cls
        with np.errstate(over="ignore", invalid="ignore"):  # as BoxBuilder: inf, then dropped
            out.x, out.y = ((cx - w / 2) * sx).astype(f32), ((cy - h / 2) * sy).astype(f32)
            out.w, out.h = (w * sx).astype(f32), (h * sy).astype(f32)
        out.difficult, out.flagged = np.zeros(n, bool), np.zeros(n, bool)
        out.origin, out.line = origin[file_k].astype(np.int32), line.astype(np.int32)
        return out


def _class_indices(b: BoxBuilder, cls_raw: np.ndarray) -> np.ndarray:
    """``b.cls(str(c)) if c >= len(b.classes) else c`` row by row, as pack_labels does.

    Only the rows that add a class name change the table; between two such rows every id at or
    above the table's length maps to an existing name, which numpy does for the whole stretch.
    """
    cls = np.array([int(c) for c in cls_raw], dtype=np.int64) if cls_raw.dtype == object \
        else cls_raw.astype(np.int64)
    out = cls.copy()
    start = 0
    while start < len(cls):
        seg = cls[start:]
        over = seg >= len(b.classes)
        if not over.any():
            break
        values = np.unique(seg[over])
        index = np.array([b._classes.get(str(int(v)), -1) for v in values], dtype=np.int64)
        pos = np.searchsorted(values, seg)
        pos[~over] = 0
        mapped = index[pos]
        new = over & (mapped < 0)
        stop = int(np.argmax(new)) if new.any() else len(seg)
        m = over[:stop]
        out[start:start + stop][m] = mapped[:stop][m]
        if stop == len(seg):
            break
        out[start + stop] = b.cls(str(int(seg[stop])))
        start += stop + 1
    return out.astype(np.int32)


def _decode(content: bytes, f: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return read_text(Path(f))  # raises the same message as the exact reader
