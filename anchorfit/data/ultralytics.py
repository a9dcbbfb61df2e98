"""Ultralytics dataset yamls (``data.yaml``: ``path``, ``train``/``val``/``test``, ``names``).

The yaml names *images*; labels are found the way Ultralytics finds them, so a dataset that
trains there reads the same here:

* ``path`` is the dataset root. Relative, it is tried against the working directory (what
  Ultralytics does) and then against the yaml's own folder (where a shipped yaml usually sits);
  the first under which the split's entries exist wins. Absent, the root is the yaml's folder.
  (Ultralytics would also try its ``datasets_dir`` setting, which anchorfit does not read: give
  an absolute ``path`` there.)
* each split is a folder (searched recursively), a ``.txt`` list of image paths, or a list of
  those, relative to the root; an entry starting with ``../`` that does not exist is retried
  without it. In a list file, ``./x.jpg`` is relative to the list's folder and other relative
  entries to the working directory (then, here, to the list's folder).
* only files with an image suffix Ultralytics accepts count (IMG_FORMATS, any letter case).
* an image's label is its path with the *last* ``/images/`` replaced by ``/labels/`` and the
  suffix by ``.txt``; an image without a label file is a background image (no boxes).
* ``names`` is a list or an ``{id: name}`` map with ids 0..n-1; ``nc``, if given, must match.
* labels are checked like Ultralytics' ``verify_image_label``: a file with a class id >= nc or a
  coordinate above 1.01 / below -0.01 is ignored there as corrupt, so its boxes are skipped here
  and counted as ``corrupt_label``; an image under 10 px on a side likewise (``corrupt_image``).
  Segment and OBB rows become their bounding box; pose rows (``kpt_shape``) keep their box.
  (Not copied: Ultralytics also rejects a file that mixes segment and box rows.)
* hidden files and folders (names starting with ``.``) inside an image folder are skipped, as
  Ultralytics' ``glob`` skips them.

Image sizes come from the image headers (no decoding, EXIF orientation applied like
Ultralytics' ``exif_size``), unless a size table or a fixed size is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from anchorfit.data import progress as _progress
from anchorfit.data._parse import read_text
from anchorfit.data.boxes import BoxBuilder, Boxes
from anchorfit.data.imagesize import image_size
from anchorfit.data.sizes import SizeTable
from anchorfit.data.yolo import LabelledImage, pack_labels, parse_label_text, parse_labels
from anchorfit.data.yolo_stream import default_workers
from anchorfit.errors import AnchorfitError, FormatError
from anchorfit.safeinput import check_regular, safe_load

# the image suffixes Ultralytics reads (ultralytics.data.utils.IMG_FORMATS)
IMG_FORMATS = frozenset({"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png",
                         "tif", "tiff", "webp"})
SPLITS = ("train", "val", "test")
_KEY_TYPES = {"path": (str,), "train": (str, list), "val": (str, list), "test": (str, list),
              "names": (list, dict)}


@dataclass
class DataYaml:
    """A data yaml with its class names checked; the dataset root is resolved on first use."""

    source: Path
    names: list[str]
    raw: dict[str, Any]

    @cached_property
    def roots(self) -> list[Path]:
        """Existing candidates for the dataset root, in the order they are tried."""
        return _roots(self.source, self.raw)

    @property
    def root(self) -> Path:
        return self.roots[0]

    def root_for(self, split: str) -> Path:
        """The first candidate root under which every entry of the split exists."""
        entries = self.split_entries(split)
        for root in self.roots:
            if all(_resolve(root, e).exists() for e in entries):
                return root
        return self.roots[0]

    def pose_fields(self) -> int | None:
        """Fields of a pose label row (5 + keypoints x dims) when ``kpt_shape`` is given."""
        shape = self.raw.get("kpt_shape")
        if shape is None:
            return None
        if not (isinstance(shape, list) and len(shape) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
                and shape[1] in (2, 3)):
            raise FormatError(f"expected [keypoints, 2 or 3], found {shape!r}",
                              source=self.source, key="kpt_shape")
        return 5 + shape[0] * shape[1]

    def split_entries(self, split: str) -> list[str]:
        value = self.raw.get(split)
        if split == "val" and not value:
            value = self.raw.get("validation")  # Ultralytics renames this key to 'val'
        if not value:
            listed = [k for k in (*SPLITS, "validation") if self.raw.get(k)]
            raise AnchorfitError(
                f"no images listed for the {split!r} split (key missing or empty); this data "
                f"yaml lists {', '.join(listed) or 'no split'}", source=self.source, key=split,
                hint="choose another with --split")
        entries = [value] if isinstance(value, str) else [str(v) for v in value]
        for entry in entries:
            check_path_text(entry, self.source, split)
        return entries


#: bytes of one path component / of a whole path on Linux and macOS (NAME_MAX, PATH_MAX)
NAME_MAX, PATH_MAX = 255, 4096


def check_path_text(text: str, source: Path | str | None, key: str | None, *,
                    line: int | None = None) -> None:
    """A path written in the yaml that the OS can look up: no NUL byte (``os.stat`` raises
    ValueError) and no name past NAME_MAX or path past PATH_MAX (it raises ENAMETOOLONG, which
    ``Path.exists`` does not swallow)."""
    short = text if len(text) <= 60 else text[:57] + "..."
    if "\x00" in text:
        raise AnchorfitError(f"{short!r} is no path: it holds a NUL byte", source=source,
                             line=line, key=key)
    raw = os.fsencode(text)
    if len(raw) > PATH_MAX or any(len(part) > NAME_MAX for part in raw.split(b"/")):
        raise AnchorfitError(f"{short!r} is no path: a name longer than {NAME_MAX} bytes or a path "
                             f"longer than {PATH_MAX}", source=source, line=line, key=key)


def is_data_yaml(path: str | Path) -> bool:
    """True for a yaml mapping with a train or val key (an Ultralytics data yaml; whether its
    names/nc are right is checked when it is read, so the message can name the key)."""
    check_regular(Path(path), AnchorfitError)  # a FIFO or device: say so, do not guess
    try:
        data = safe_load(read_text(Path(path)), path)
    except AnchorfitError:  # unreadable, bad YAML: not a data yaml
        return False
    return isinstance(data, dict) and any(k in data for k in ("train", "val"))


def load_data_yaml(path: str | Path) -> DataYaml:
    """Parse and check a data yaml: key types and names/nc (the root is resolved when used)."""
    path = Path(path)
    text = read_text(path)
    data = safe_load(text, path)  # bad YAML, alias bombs, deep nesting, duplicate keys: file:line
    if not isinstance(data, dict):
        raise FormatError("expected a mapping with path/train/val/names keys (an Ultralytics "
                          "data yaml)", source=path)
    for key, types in _KEY_TYPES.items():
        if data.get(key) is not None and not isinstance(data[key], types):
            raise FormatError(f"expected {' or '.join(t.__name__ for t in types)}, found "
                              f"{type(data[key]).__name__} {data[key]!r}", source=path, key=key)
    for key in SPLITS:
        if isinstance(data.get(key), list) and not all(isinstance(v, str) for v in data[key]):
            raise FormatError("expected a list of folder or .txt paths", source=path, key=key)
    return DataYaml(path, _names(path, data), data)


def _names(path: Path, data: dict[str, Any]) -> list[str]:
    nc = data.get("nc")
    if "nc" in data:
        if isinstance(nc, bool) or not isinstance(nc, (int, float, str)):
            raise FormatError(f"expected an integer class count, found {nc!r}", source=path,
                              key="nc")
        try:
            as_float = float(nc)
        except (ValueError, OverflowError):
            as_float = float("nan")
        if as_float in (float("inf"), float("-inf")):
            as_float = float("nan")   # int(inf) raises: refused below like any non-integer
        if as_float != as_float or as_float != int(as_float) or as_float < 1:
            raise FormatError(f"expected a positive integer class count, found {nc!r}",
                              source=path, key="nc")
        nc = int(as_float)
    names = data.get("names")
    if names is None:
        if nc is None:
            raise FormatError("neither 'names' nor 'nc' is given; a data yaml needs one",
                              source=path, key="names")
        return [f"class_{i}" for i in range(nc)]
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError, OverflowError):
            bad = next(k for k in names if not _is_int(k))
            raise FormatError(f"class ids must be integers, found {bad!r}", source=path,
                              key="names") from None
        n = len(by_id)
        if n and (min(by_id) < 0 or max(by_id) >= n):
            raise FormatError(f"{n} classes need ids 0-{n - 1}, found ids "
                              f"{min(by_id)}-{max(by_id)}", source=path, key="names")
        names = [by_id[i] for i in range(n)]
    names = [str(v) for v in names]
    if not names:
        raise FormatError("no class names: at least one is required", source=path, key="names")
    if nc is not None and nc != len(names):
        raise FormatError(f"{len(names)} names but nc: {nc}; they must match", source=path,
                          key="nc")
    return names


def _is_int(value: Any) -> bool:
    try:
        int(value)
        return True
    except (TypeError, ValueError, OverflowError):
        return False


def _roots(path: Path, data: dict[str, Any]) -> list[Path]:
    given = data.get("path")
    if not given:
        return [path.parent.resolve()]
    check_path_text(str(given), path, "path")
    root = Path(os.path.expanduser(given))
    if root.is_absolute():
        candidates = [root]
    else:
        candidates = [Path.cwd() / root, path.parent / root]
    found = list(dict.fromkeys(c.resolve() for c in candidates if c.is_dir()))
    if found:
        return found
    raise AnchorfitError(
        f"dataset root not found: {given!r} (tried "
        f"{', '.join(str(c.resolve()) for c in candidates)})",
        source=path, key="path",
        hint="Ultralytics also looks in its datasets_dir setting; give an absolute path")


def split_images(data: DataYaml, split: str) -> tuple[list[Path], list[str]]:
    """The split's image files (sorted, like Ultralytics) and the listed ones that do not exist."""
    found: list[Path] = []
    missing: list[str] = []
    root = data.root_for(split)
    for entry in data.split_entries(split):
        p = _resolve(root, entry)
        if p.is_dir():
            try:  # like glob('**/*.*'): names starting with '.' (files or folders) are skipped
                found += [f for f in p.rglob("*.*") if f.is_file() and _is_image(f.name)
                          and not any(part.startswith(".") for part in f.relative_to(p).parts)]
            except OSError as exc:
                raise AnchorfitError(f"cannot list folder {p}: {exc.strerror or exc}",
                                     source=data.source, key=split) from None
        elif p.is_file() and _is_image(p.name):
            found.append(p)
        elif p.is_file():
            listed, absent = _read_list(p)
            found += listed
            missing += absent
        else:
            tried = ", ".join(str(_resolve(r, entry)) for r in data.roots)
            raise AnchorfitError(
                f"images not found: {entry!r} does not exist (tried {tried})",
                source=data.source, key=split,
                hint="entries are relative to the dataset root (key 'path'); the images must be "
                     "present: labels are found from them and sizes read from their headers")
    if not found and not missing:
        raise AnchorfitError(
            f"no image files ({', '.join(sorted(IMG_FORMATS))}) under "
            + ", ".join(str(_resolve(root, e)) for e in data.split_entries(split)),
            source=data.source, key=split)
    return sorted(found, key=str), missing


def _resolve(root: Path, entry: str) -> Path:
    p = (root / os.path.expanduser(entry)).resolve()
    if not p.exists() and entry.startswith("../"):
        p = (root / entry[3:]).resolve()
    return p


def _is_image(name: str) -> bool:
    return name.rpartition(".")[-1].lower() in IMG_FORMATS


def _read_list(listing: Path) -> tuple[list[Path], list[str]]:
    found: list[Path] = []
    missing: list[str] = []
    for i, line in enumerate(read_text(listing).strip().splitlines(), 1):
        entry = line.strip()
        if not entry or not _is_image(entry):
            continue
        check_path_text(entry, listing, None, line=i)
        if entry.startswith("./"):
            candidates = [listing.parent / entry[2:]]
        elif os.path.isabs(entry):
            candidates = [Path(entry)]
        else:
            candidates = [Path.cwd() / entry, listing.parent / entry]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(str(candidates[-1]))
        else:
            found.append(hit.resolve())
    return found, missing


def label_path(image: str | Path) -> Path:
    """Ultralytics' images → labels rule: the last ``/images/`` becomes ``/labels/``, the suffix
    ``.txt``; without an ``/images/`` folder the label sits beside the image."""
    text = str(image).replace(os.sep, "/")
    head, sep, tail = text.rpartition("/images/")
    text = f"{head}/labels/{tail}" if sep else text
    return Path(text.rsplit(".", 1)[0] + ".txt")


def read_ultralytics(path: str | Path, *, split: str | None = None,
                     sizes: SizeTable | None = None,
                     image_size_wh: tuple[float, float] | None = None) -> Boxes:
    """Boxes of one split (default ``train``) of an Ultralytics dataset described by ``path``."""
    split = split or "train"
    if split not in SPLITS:
        raise AnchorfitError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}",
                             key="--split")
    data = load_data_yaml(path)
    files, missing = split_images(data, split)
    root = data.root_for(split)
    b = BoxBuilder("ultralytics", f"{data.source} [{split}]")
    b.set_classes(data.names)
    images: list[LabelledImage] = []
    corrupt: list[str] = []
    tiny: list[str] = []
    labelled = 0
    unreadable: list[Path] = []
    pose_fields = data.pose_fields()
    meter = _progress.current()
    meter.start(f"reading {data.source.name} [{split}]", len(files), "images")
    try:
        for f, (label, text, name, wh, size) in zip(files, _prefetch(files, root, sizes,
                                                                    image_size_wh, meter)):
            rows: list[tuple] = []
            if text is not None:
                labelled += 1
                if isinstance(text, AnchorfitError):
                    raise text
                rows = parse_label_text(text, label, pose_fields)
                why = _corrupt(rows, len(data.names))
                if why:
                    b.skip("corrupt_label", len(rows))
                    corrupt.append(f"{label}:{why}")
                    rows = []
            if wh is None:
                if size is None:
                    unreadable.append(f)
                wh = (float(size[0]), float(size[1])) if size else None
            if wh is not None and min(wh) < 10:  # Ultralytics' check_image: under 10 px
                if rows:
                    b.skip("corrupt_image", len(rows))
                tiny.append(f"{f} ({wh[0]:g}x{wh[1]:g})")
                rows = []
            images.append(LabelledImage(name, wh, label if text is not None else None, rows))
    finally:
        meter.finish()
    if files and not labelled:
        raise AnchorfitError(
            f"none of the {len(files)} images of the {split!r} split has a label file; the "
            f"first would be {label_path(files[0])}", source=data.source, key=split,
            hint="labels sit beside the images with the last /images/ replaced by /labels/")
    for listed in missing:
        label = label_path(listed)
        n = len(parse_labels(label, pose_fields)) if label.is_file() else 0
        if n:
            b.skip("missing_image", n)
    out = pack_labels(b, images, "the image header could not be read and no --image-sizes entry")
    if missing:
        out.notes.append(f"{len(missing)} listed images do not exist (first: {missing[0]}); "
                         "Ultralytics ignores them, their boxes are counted as missing_image")
    if corrupt:
        out.notes.append(f"{len(corrupt)} label files ignored as corrupt, as Ultralytics does "
                         f"(first: {corrupt[0]})")
    if tiny:
        out.notes.append(f"{len(tiny)} images under 10 px ignored as corrupt, as Ultralytics "
                         f"does (first: {tiny[0]})")
    if unreadable and not image_size_wh:
        out.notes.append(f"{len(unreadable)} image headers could not be read (first: "
                         f"{unreadable[0]})")
    background = len(files) - labelled
    if background:
        out.notes.append(f"{background} of {len(files)} images have no label file (background)")
    return out


def _prefetch(files: list[Path], root: Path, sizes: SizeTable | None,
              image_size_wh: tuple[float, float] | None, meter: _progress.Meter,
              batch: int = 1024) -> Iterator[tuple]:
    """Per image, in order: (label path, label text (None: no label file; an error: unreadable),
    name, known size, header size). The file-system work of read_ultralytics' loop, done by
    threads a few batches ahead, so a million small files are not read one after another."""
    def one(f: Path) -> tuple:
        label = label_path(f)
        text: str | AnchorfitError | None = None
        if label.is_file():
            try:
                text = read_text(label)
            except AnchorfitError as exc:
                text = exc
        name = _name(f, root)
        wh = image_size_wh or (sizes.get(name) if sizes else None)
        return label, text, name, wh, image_size(f) if wh is None else None

    def run(chunk: list[Path]) -> list[tuple]:
        return [one(f) for f in chunk]

    workers = default_workers()
    with ThreadPoolExecutor(workers) as pool:
        pending: list = []
        for start in range(0, len(files), batch):
            pending.append(pool.submit(run, files[start:start + batch]))
            if len(pending) > 2 * workers:
                done = pending.pop(0).result()
                meter.advance(len(done))
                yield from done
        for future in pending:
            done = future.result()
            meter.advance(len(done))
            yield from done


def _corrupt(rows: list[tuple], nc: int) -> str | None:
    """Why Ultralytics' verify_image_label would reject these rows (None if it would not)."""
    for line, cls, cx, cy, w, h in rows:
        if cls < 0 or cls >= nc:
            return f"{line}: class {cls} outside 0-{nc - 1}"
        if max(cx, cy, w, h) > 1.01:
            return f"{line}: coordinate above 1.01 (not normalised)"
    low = min((min(r[2:]) for r in rows), default=0.0)
    if low < 0 and (low < -0.01 or min(min(r[4], r[5]) for r in rows) < 0):
        line = next(r[0] for r in rows if min(r[2:]) == low)
        return f"{line}: negative coordinate"
    return None


def _name(image: Path, root: Path) -> str:
    try:
        return image.relative_to(root).as_posix()
    except ValueError:
        return image.as_posix()
