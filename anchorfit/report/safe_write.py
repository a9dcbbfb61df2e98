"""The one place anchorfit writes files: what it may replace, and how, stated once.

anchorfit writes reports (``-o``), figures (``--plot``), arrays (``--save``) and exports into
people's config trees (``--export-to``, ``--in-place``), often as root in CI. A naive
"temporary file + rename" replaces ``/dev/null`` with a regular file, turns a FIFO or a symlink
into a plain file, splits hard links, gives every output mode 0600 and overwrites whatever it is
pointed at. The rules here (README, "How outputs are written"):

- ``-`` is standard output; devices and FIFOs are written through (opened, never replaced);
- a symlink is followed to the file it names, which is then written by these same rules, except
  a link the kernel itself would refuse to follow (``fs.protected_symlinks``: a link in a sticky,
  world-writable folder such as /tmp owned by neither us nor the folder's owner) is refused, as
  the last name or as a folder on the way, whatever the kernel's setting: resolving links in user
  space must not bypass that protection (the same rule refuses another user's FIFO or regular
  file there: ``protected_fifos``, ``protected_regular``);
- a new file follows the umask; a replaced regular file keeps its permission bits (setuid,
  setgid and sticky bits are dropped on purpose) and, where allowed, its owner and group;
- a regular file is replaced atomically: the text goes to a temporary file in the same folder,
  which is flushed to disk and renamed over the target, so a reader sees the old file or the new
  one, never half of one; a failed or interrupted write leaves the target as it was;
- a regular file with several hard links is refused (a rename would split the links silently);
- ``existing="refuse"`` never replaces anything that exists (exports without ``--force``);
- nothing is written inside the installed anchorfit package; folders are never created;
- every OS error becomes one message naming the option and the path (exit status 2).

Backups (``--in-place``, ``--force``) are numbered and never overwritten: ``FILE.bak``, then
``FILE.bak.1``, ``FILE.bak.2``... (higher is newer); an mmdetection config keeps its ``.py``
suffix (``NAME.bak.py``, ``NAME.bak.1.py``...) because a config can only inherit a ``.py`` file.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Literal

from anchorfit.errors import AnchorfitError

STDOUT = "-"
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
_MAX_LINKS = 40          # symlink hops before giving up (the kernel's own limit)
_MAX_BACKUPS = 10_000    # numbered backups searched before refusing

Existing = Literal["replace", "refuse"]


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def _fail(what: str, shown: str, reason: str, hint: str | None = None) -> AnchorfitError:
    return AnchorfitError(f"cannot write {shown}: {reason}", key=what, hint=hint)


def _os_error(what: str, shown: str, exc: OSError) -> AnchorfitError:
    reason = exc.strerror or str(exc)
    if exc.filename not in (None, shown) and exc.errno in (errno.EACCES, errno.EROFS,
                                                           errno.ENOENT, errno.ENOTDIR):
        reason += f" ({exc.filename})"
    return _fail(what, shown, reason)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (no race with threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _in_shared_sticky_folder(st: os.stat_result, folder: Path) -> bool:
    """The kernel's protected_symlinks / protected_fifos rule: an entry in a sticky,
    world-writable folder, owned by neither the caller nor the folder's owner."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:
        return False
    try:
        fst = os.stat(folder)
    except OSError:
        return False
    shared = fst.st_mode & stat.S_ISVTX and fst.st_mode & stat.S_IWOTH
    return bool(shared) and st.st_uid not in (geteuid(), fst.st_uid)


def _refuse_foreign_folder_links(folder: Path, what: str, shown: str) -> None:
    """Refuse a path whose folders pass through another user's symlink in a sticky shared
    folder (the protected_symlinks rule, checked even where the kernel's switch is off)."""
    for part in [*reversed(folder.parents), folder]:
        try:
            st = os.lstat(part)
        except OSError:
            return  # the kernel will say what is wrong with the rest
        if stat.S_ISLNK(st.st_mode) and _in_shared_sticky_folder(st, part.parent):
            raise _fail(what, shown, f"refusing to follow the symlink {part}, owned by uid "
                        f"{st.st_uid} in the shared folder {part.parent}",
                        hint="name the real folder")


def resolve_output(path: str | os.PathLike[str], what: str = "output") -> Path:
    """The file that writing ``path`` would change: symlinks followed (see the module rules).

    Raises AnchorfitError for an empty name, a symlink loop and a link in a shared sticky
    folder owned by someone else.
    """
    shown = os.fspath(path)
    if shown == "":
        raise AnchorfitError("an empty file name", key=what)
    if shown.endswith(os.sep) or (os.altsep and shown.endswith(os.altsep)):
        raise _fail(what, shown, "it names a folder", hint="give a file name")
    current = Path(os.getcwd()) / shown
    for _ in range(_MAX_LINKS):
        # Only the last name is resolved here. Folders on the way stay as written and are
        # resolved by the kernel at every use, with its own protection of shared folders
        # (os.path.realpath would follow their links in user space, bypassing it). The
        # same rule is applied to them here, whatever the kernel's setting.
        _refuse_foreign_folder_links(current.parent, what, shown)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return current
        except OSError as exc:
            raise _os_error(what, shown, exc) from None
        if not stat.S_ISLNK(st.st_mode):
            return current
        if _in_shared_sticky_folder(st, current.parent):
            raise _fail(what, shown, f"refusing to follow the symlink {current}, owned by "
                        f"uid {st.st_uid} in the shared folder {current.parent} (the kernel "
                        "would not follow it either)", hint="name the real file")
        try:
            current = current.parent / os.readlink(current)
        except OSError as exc:
            raise _os_error(what, shown, exc) from None
    raise _fail(what, shown, "too many levels of symbolic links")


def _refuse_inside_package(target: Path, what: str, shown: str) -> None:
    package = _package_dir()
    real = Path(os.path.realpath(target))
    if real == package or package in real.parents:
        raise _fail(what, shown, f"{target} is inside the installed anchorfit package",
                    hint="write it somewhere else")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _write_stdout(data: str | bytes) -> None:
    if isinstance(data, str):
        sys.stdout.write(data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _write_through(target: Path, data: bytes) -> None:
    """A device or FIFO: open it and write, as a shell redirection would."""
    fd = os.open(target, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _atomic(target: Path, data: bytes, mode: int, owner: tuple[int, int] | None,
            clobber: bool) -> None:
    """Temporary file in the target's folder, flushed, renamed over ``target`` (or linked to
    it when ``clobber`` is False, which fails rather than replace a file that appeared since)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:180]}.", suffix=".tmp",
                               dir=target.parent)
    try:
        try:
            _write_all(fd, data)
            if owner is not None and hasattr(os, "fchown"):
                try:
                    os.fchown(fd, *owner)
                except OSError:
                    pass  # not ours to give away: the file keeps our owner, as cp would
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            else:  # pragma: no cover - Windows before 3.13
                os.chmod(tmp, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if clobber:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                     errno.EMLINK):
                    raise
                if os.path.lexists(target):  # no hard links here: check, then rename
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST),
                                          str(target)) from None
                os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if os.path.exists(tmp):
        os.unlink(tmp)


def check_output(path: str | os.PathLike[str], *, what: str = "output",
                 existing: Existing = "replace",
                 protect: Iterable[str | os.PathLike[str]] = (),
                 refuse_hint: str | None = None) -> tuple[str, Path | None, os.stat_result | None]:
    """Everything ``write_output`` checks, without writing: ``(kind, real path, stat)`` with
    kind ``"stdout"``, ``"new"``, ``"through"`` (device, FIFO) or ``"replace"`` (a regular
    file). Callers that back a file up first (``--in-place``) call it before the backup."""
    shown = os.fspath(path)
    if shown == STDOUT:
        return "stdout", None, None
    if shown != "":
        # devices and FIFOs as the kernel finds them: this follows magic links such as
        # /dev/stdout -> /proc/self/fd/1 -> pipe:[...], which no user-space resolution can
        try:
            kst = os.stat(shown)
        except OSError:
            kst = None
        if kst is not None and (stat.S_ISCHR(kst.st_mode) or stat.S_ISBLK(kst.st_mode) or
                                stat.S_ISFIFO(kst.st_mode)):
            real = resolve_output(path, what)  # the sticky-folder link rule still applies
            if stat.S_ISFIFO(kst.st_mode) and _in_shared_sticky_folder(kst, real.parent):
                raise _fail(what, shown, f"refusing to write a FIFO owned by uid "
                            f"{kst.st_uid} in the shared folder {real.parent}")
            return "through", Path(shown), kst
    target = resolve_output(path, what)
    _refuse_inside_package(target, what, shown)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise _fail(what, shown, f"the folder {target.parent} does not exist",
                        hint="anchorfit does not create folders") from None
        return "new", target, None
    except OSError as exc:
        raise _os_error(what, shown, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(what, shown, "it is a folder", hint="give a file name")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        raise _fail(what, shown, "it became a device or FIFO while being checked")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(what, shown, "not a regular file, device or FIFO")
    if _in_shared_sticky_folder(st, target.parent):  # the kernel's protected_regular rule
        raise _fail(what, shown, f"refusing to replace a file owned by uid {st.st_uid} in the "
                    f"shared folder {target.parent}", hint="write it somewhere else")
    for item in protect:
        try:
            same = os.path.samefile(item, target)
        except OSError:
            continue
        if same:
            raise _fail(what, shown, "it is an input of this command",
                        hint="write the output somewhere else")
    if existing == "refuse":
        raise _fail(what, shown, "the file exists", hint=refuse_hint)
    if st.st_nlink > 1:
        raise _fail(what, shown, f"it has {st.st_nlink} hard links, and replacing it would "
                    "leave the other names with the old content",
                    hint="write elsewhere, or break the link first (cp FILE FILE.new && "
                         "mv FILE.new FILE)")
    return "replace", target, st


def write_output(path: str | os.PathLike[str], data: str | bytes, *, what: str = "output",
                 existing: Existing = "replace",
                 protect: Iterable[str | os.PathLike[str]] = (),
                 refuse_hint: str | None = None) -> str:
    """Write ``data`` (text is UTF-8) to ``path`` by the module's rules; returns what was
    written: ``"-"`` or the real path.

    ``what`` names the option in messages (``--output``); ``existing="refuse"`` fails on any
    existing regular file (with ``refuse_hint``); ``protect`` lists the command's inputs, which
    an output must never replace.
    """
    shown = os.fspath(path)
    kind, target, st = check_output(path, what=what, existing=existing, protect=protect,
                                    refuse_hint=refuse_hint)
    payload = data if kind == "stdout" else _as_bytes(data)
    try:
        if kind == "stdout":
            _write_stdout(payload)
            return STDOUT
        assert target is not None
        if kind == "new":
            _atomic(target, payload, 0o666 & ~_umask(), None, clobber=existing == "replace")
        elif kind == "through":
            _write_through(target, payload)
        else:
            assert st is not None
            _atomic(target, payload, stat.S_IMODE(st.st_mode) & 0o777, (st.st_uid, st.st_gid),
                    clobber=True)
        return str(target)
    except FileExistsError:
        raise _fail(what, shown, "the file exists", hint=refuse_hint) from None
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _os_error(what, shown, exc) from None


def backup_names(path: Path, *, keep_suffix: bool = False) -> Iterable[Path]:
    """Backup names of ``path`` in order: FILE.bak, FILE.bak.1, ... (``keep_suffix``: the
    suffix stays last, NAME.bak.py, NAME.bak.1.py, ... for configs that must stay .py)."""
    for n in range(_MAX_BACKUPS):
        tag = ".bak" if n == 0 else f".bak.{n}"
        yield (path.with_name(path.stem + tag + path.suffix) if keep_suffix
               else path.with_name(path.name + tag))


def next_backup(path: Path, *, keep_suffix: bool = False) -> Path:
    """The first backup name of ``path`` that nothing uses yet (a dangling link counts)."""
    for name in backup_names(path, keep_suffix=keep_suffix):
        if not os.path.lexists(name):
            return name
    raise AnchorfitError(f"{path}: {_MAX_BACKUPS} backups exist already; remove old ones")


def make_backup(original: Path, backup: Path | None = None, *, what: str = "--in-place",
                keep_suffix: bool = False) -> Path:
    """Copy ``original`` (content, permission bits, times, owner where allowed) to ``backup``,
    default the next free numbered name; an existing file is never overwritten (O_EXCL)."""
    original = Path(original)
    _refuse_inside_package(resolve_output(original, what), what, str(original))
    for _ in range(100):  # another process may take the name between the check and the copy
        name = backup or next_backup(original, keep_suffix=keep_suffix)
        _refuse_inside_package(Path(os.path.abspath(name)), what, str(name))
        try:
            st = os.stat(original)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(name, flags, stat.S_IMODE(st.st_mode) & 0o777)
            try:
                with open(original, "rb") as src, os.fdopen(fd, "wb", closefd=False) as dst:
                    shutil.copyfileobj(src, dst)
                    dst.flush()
                    os.fsync(fd)
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except (OSError, AttributeError):
                    pass
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o777)
            except BaseException:
                os.close(fd)
                os.unlink(name)
                raise
            os.close(fd)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns))
            return Path(name)
        except FileExistsError:
            if backup is not None:
                raise _fail(what, str(name), "the backup exists") from None
            continue
        except OSError as exc:
            raise _os_error(what, str(name), exc) from None
    raise _fail(what, str(original), "could not find a free backup name")


def check_figure_path(path: str | os.PathLike[str], what: str = "--plot") -> str:
    """The matplotlib format of ``path`` (its suffix; PNG without one, e.g. ``-`` or a FIFO);
    an unknown suffix is an error raised before any work is done."""
    shown = os.fspath(path)
    if shown == "":
        raise AnchorfitError("an empty file name", key=what)
    suffix = Path(shown).suffix.lower()
    if shown == STDOUT or suffix == "":
        return "png"
    if suffix not in FIGURE_SUFFIXES:
        raise AnchorfitError(f"{shown}: unknown figure type {suffix!r}", key=what,
                             hint="use " + ", ".join(FIGURE_SUFFIXES))
    return suffix[1:]


def save_figure(fig: Any, path: str | os.PathLike[str], *, what: str = "--plot",
                **kwargs: Any) -> str:
    """Render a matplotlib figure in memory, then write it with ``write_output``."""
    fmt = check_figure_path(path, what)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **kwargs)
    return write_output(path, buf.getvalue(), what=what)
