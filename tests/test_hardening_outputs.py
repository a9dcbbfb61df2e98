"""Issue 12, safe outputs: what anchorfit may replace and how (report/safe_write.py).

Every test here checks a file-system fact after the write (the inode kind, the mode, the owner,
the bytes of the old file and of every backup), not only the exit status. The suite runs as
root in CI, so nothing here ever points the old behaviour at a real device: /dev/null is only
written through the new writer, and checked to still be a character device afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from anchorfit.errors import AnchorfitError
from anchorfit.report import safe_write
from anchorfit.report.safe_write import make_backup, write_output

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- special files


def test_dev_null_stays_a_character_device(run_cli):
    before = os.stat("/dev/null")
    code, out, err = run_cli("show", "yolov3", "-o", "/dev/null", "--format", "json")
    assert code == 0, err
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert after.st_rdev == before.st_rdev and out == ""


def test_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        code = subprocess.run([sys.executable, "-m", "anchorfit", "show", "yolov3", "-o",
                               str(fifo), "-f", "json"], cwd=REPO, timeout=120).returncode
        got, _ = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert code == 0
    assert json.loads(got)["name"] == "yolov3"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_stdout_on_a_pipe_is_written_through():
    """/dev/stdout -> /proc/self/fd/1 -> pipe:[N]: a magic link only the kernel can follow."""
    done = subprocess.run([sys.executable, "-m", "anchorfit", "show", "yolov3", "-f", "json",
                           "-o", "/dev/stdout"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "yolov3"


def test_dash_is_standard_output(run_cli):
    code, out, err = run_cli("show", "yolov3", "-o", "-", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["name"] == "yolov3"


def test_dev_full_is_a_clear_enospc_message(run_cli):
    code, out, err = run_cli("show", "yolov3", "-o", "/dev/full", "-f", "json")
    assert code == 2 and "Traceback" not in err
    assert "--output: cannot write /dev/full: No space left on device" in err
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# --------------------------------------------------------------------------- symlinks


def test_symlink_is_followed_and_kept(tmp_path, run_cli):
    real = tmp_path / "real.json"
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    code, _, err = run_cli("show", "yolov3", "-o", str(link), "-f", "json")
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert json.loads(real.read_text())["name"] == "yolov3"
    assert _mode(real) == 0o640
    assert _leftovers(tmp_path) == []


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to("made.txt")
    assert write_output(link, "x\n") == str(tmp_path / "made.txt")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "x\n"


def test_symlink_loop_is_a_message(tmp_path, run_cli):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    code, _, err = run_cli("show", "yolov3", "-o", str(tmp_path / "a"))
    assert code == 2 and "Traceback" not in err
    assert "symbolic links" in err and str(tmp_path / "a") in err


@pytest.mark.skipif(not IS_ROOT, reason="needs root to own a link as another user")
def test_foreign_symlink_in_a_sticky_shared_folder_is_refused(tmp_path):
    """The /tmp symlink attack: another user's link in a sticky world-writable folder. The
    kernel (fs.protected_symlinks) would not follow it for us; resolving it ourselves must not
    either."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = shared / "report.json"
    link.symlink_to(victim)
    os.lchown(link, 54321, 54321)
    with pytest.raises(AnchorfitError, match="refusing to follow the symlink"):
        write_output(link, "pwned\n", what="--output")
    assert victim.read_text() == "precious\n"
    # our own link in the same folder is followed
    os.lchown(link, os.geteuid(), os.getegid())
    write_output(link, "ours\n")
    assert victim.read_text() == "ours\n"


# --------------------------------------------------------------------------- modes, owners, links


def test_existing_file_keeps_its_mode(tmp_path, run_cli):
    out = tmp_path / "report.csv"
    out.write_text("old\n")
    os.chmod(out, 0o604)
    code, _, err = run_cli("show", "yolov3", "-o", str(out), "-f", "csv")
    assert code == 0, err
    assert _mode(out) == 0o604 and out.read_text().startswith("level,")


@pytest.mark.parametrize("umask, want", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_file_follows_the_umask(tmp_path, umask, want):
    old = os.umask(umask)
    try:
        write_output(tmp_path / "new.txt", "x\n")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new.txt") == want


def test_setuid_bit_is_dropped_on_replace(tmp_path):
    path = tmp_path / "tool.cfg"
    path.write_text("old\n")
    os.chmod(path, 0o4755)
    write_output(path, "new\n")
    assert _mode(path) == 0o755


@pytest.mark.skipif(not IS_ROOT, reason="chown to another user needs root")
def test_root_keeps_the_owner_of_a_replaced_file(tmp_path):
    path = tmp_path / "theirs.cfg"
    path.write_text("old\n")
    os.chown(path, 1234, 2345)
    write_output(path, "new\n")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (1234, 2345) and path.read_text() == "new\n"


def test_hard_linked_file_is_refused_and_unchanged(tmp_path, run_cli):
    path = tmp_path / "a.json"
    path.write_text("old\n")
    os.link(path, tmp_path / "b.json")
    code, _, err = run_cli("show", "yolov3", "-o", str(path), "-f", "json")
    assert code == 2 and "2 hard links" in err and str(path) in err
    assert path.read_text() == (tmp_path / "b.json").read_text() == "old\n"


def test_output_never_replaces_an_input(tmp_path, run_cli, config_data):
    cfg = tmp_path / "yolov3-tiny.cfg"
    shutil.copy(config_data / "configs/darknet/pjreddie/yolov3-tiny.cfg", cfg)
    before = cfg.read_bytes()
    code, _, err = run_cli("show", str(cfg), "-o", str(cfg), "-f", "json")
    assert code == 2 and "input of this command" in err
    assert cfg.read_bytes() == before


def test_nothing_is_written_inside_the_package(tmp_path):
    import anchorfit

    target = Path(anchorfit.__file__).parent / "configs" / "hostile.yaml"
    with pytest.raises(AnchorfitError, match="inside the installed anchorfit package"):
        write_output(target, "x\n")
    assert not target.exists()


# --------------------------------------------------------------------------- OS errors


@pytest.mark.parametrize("arg, message", [
    ("", "expected a file name, got an empty string"),
    ("{tmp}", "it is a folder"),
    ("{tmp}/missing/", "it names a folder"),
    ("{tmp}/missing/out.json", "does not exist (anchorfit does not create folders)"),
])
def test_bad_output_paths_exit_2(tmp_path, run_cli, arg, message):
    code, _, err = run_cli("show", "yolov3", "-o", arg.format(tmp=tmp_path), "-f", "json")
    assert code == 2 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "missing").exists()


def test_enospc_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old and complete\n")

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:3])  # half written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safe_write, "_write_all", full)
    with pytest.raises(AnchorfitError) as info:
        write_output(path, "x" * 10_000, what="--output")
    assert info.value.format() == (f"--output: cannot write {path}: "
                                   f"{os.strerror(errno.ENOSPC)}")
    assert path.read_text() == "old and complete\n" and _leftovers(tmp_path) == []


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.cfg"
    path.write_text("old\n")

    def interrupted(fd: int, data: bytes) -> None:
        os.write(fd, data[:1])
        raise KeyboardInterrupt

    monkeypatch.setattr(safe_write, "_write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_output(path, "new text\n")
    assert path.read_text() == "old\n" and _leftovers(tmp_path) == []


def _run_as_nobody(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, "-m", "anchorfit", *args], cwd=REPO, user=65534,
                              group=65534, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HOME": str(folder)})
    except PermissionError:
        pytest.skip("user nobody cannot run this Python (its folder is private)")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_unwritable_folder_is_a_message(tmp_path, monkeypatch, run_cli, code):
    """What the kernel says for a read-only mount or folder (root passes permission bits, so
    the error is injected where the writer creates its temporary file)."""
    import tempfile

    def refuse(*args, dir=None, **kwargs):
        raise OSError(code, os.strerror(code), dir)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "x.json"
    got, _, err = run_cli("show", "yolov3", "-o", str(out), "-f", "json")
    assert got == 2 and "Traceback" not in err
    assert f"--output: cannot write {out}: {os.strerror(code)} ({tmp_path})" in err
    assert not out.exists()


@pytest.mark.skipif(not IS_ROOT, reason="root drops to nobody to meet a read-only folder")
def test_read_only_folder_is_a_message(tmp_path_factory):
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="anchorfit-ro-"))
    try:
        os.chmod(base, 0o755)
        ro = base / "ro"
        ro.mkdir(mode=0o555)
        os.chmod(ro, 0o555)
        done = _run_as_nobody(["show", "yolov3", "-o", str(ro / "x.json"), "-f", "json"], base)
        if "Traceback" in done.stderr and "PermissionError" in done.stderr and \
                "anchorfit" not in done.stderr.splitlines()[-1]:
            pytest.skip("nobody cannot read the checkout here")
        assert done.returncode == 2, done.stderr
        assert f"--output: cannot write {ro / 'x.json'}: Permission denied" in done.stderr
        assert "Traceback" not in done.stderr and list(ro.iterdir()) == []
    finally:
        shutil.rmtree(base)


# --------------------------------------------------------------------------- backups, exports


def test_backups_are_numbered_and_never_overwritten(tmp_path):
    from anchorfit.design.export import write_export

    cfg = tmp_path / "model.cfg"
    cfg.write_text("v0\n")
    os.chmod(cfg, 0o644)
    for n in (1, 2, 3):
        write_export(cfg, f"v{n}\n", in_place=True, original=cfg)
    assert cfg.read_text() == "v3\n" and _mode(cfg) == 0o644
    assert [(tmp_path / name).read_text() for name in
            ("model.cfg.bak", "model.cfg.bak.1", "model.cfg.bak.2")] == ["v0\n", "v1\n", "v2\n"]
    assert _mode(tmp_path / "model.cfg.bak.2") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.cfg", "model.cfg.bak", "model.cfg.bak.1", "model.cfg.bak.2"]


def test_make_backup_never_takes_an_existing_name(tmp_path):
    cfg = tmp_path / "a.yaml"
    cfg.write_text("now\n")
    (tmp_path / "a.yaml.bak").write_text("oldest\n")
    (tmp_path / "a.yaml.bak.1").symlink_to("nowhere")  # a dangling link still takes a name
    assert make_backup(cfg) == tmp_path / "a.yaml.bak.2"
    assert (tmp_path / "a.yaml.bak").read_text() == "oldest\n"
    with pytest.raises(AnchorfitError, match="the backup exists"):
        make_backup(cfg, tmp_path / "a.yaml.bak")


def test_in_place_keeps_the_mode_of_the_detector(config_data, tmp_path):
    from anchorfit.design.export import save_export
    from anchorfit.load import load_detector

    cfg = tmp_path / "yolov3-tiny.cfg"
    shutil.copy(config_data / "configs/darknet/pjreddie/yolov3-tiny.cfg", cfg)
    os.chmod(cfg, 0o664)
    det = load_detector(str(cfg))
    new = [[(a.w + 2, a.h + 2) for a in lv.anchors] for lv in det.levels]
    out, written = save_export(det, new, in_place=True)
    assert _mode(cfg) == 0o664 and _mode(tmp_path / "yolov3-tiny.cfg.bak") == 0o664
    assert any("kept as" in n and n.endswith("yolov3-tiny.cfg.bak") for n in out.notes)


def test_export_to_an_existing_file_refuses_then_force_keeps_a_backup(config_data, tmp_path,
                                                                     run_cli):
    ann = config_data / "annotations/coco128_cocojson/instances_train2017.json"
    other = tmp_path / "other.yaml"
    other.write_text("# someone's config\n")
    args = ["compare", "yolov3-tiny", "--boxes", str(ann), "--restarts", "1", "--export",
            "k-means", "--export-to", str(other), "-f", "json"]
    code, out, err = run_cli(*args)
    assert code == 2 and "the file exists" in err and "--force" in err
    assert out == "" and other.read_text() == "# someone's config\n"  # refused before the work
    code, out, err = run_cli(*args, "--force")
    assert code == 0, err
    assert (tmp_path / "other.yaml.bak").read_text() == "# someone's config\n"
    from anchorfit.load import load_detector

    again = load_detector(str(other))
    kmeans = next(s for s in json.loads(out)["sets"] if s["name"] == "k-means")
    assert [[[a.w, a.h] for a in lv.anchors] for lv in again.levels] == \
        [[[round(w), round(h)] for w, h in lv] for lv in kmeans["anchors"]]


def test_built_in_zoo_config_is_never_changed_in_place(config_data, run_cli):
    import anchorfit

    zoo = Path(anchorfit.__file__).parent / "configs" / "yolov3-tiny.yaml"
    digest = hashlib.sha256(zoo.read_bytes()).hexdigest()
    ann = config_data / "annotations/coco128_cocojson/instances_train2017.json"
    code, out, err = run_cli("compare", "yolov3-tiny", "--boxes", str(ann), "--restarts", "1",
                             "--export", "k-means", "--in-place")
    assert code == 2 and "Traceback" not in err
    assert "built-in zoo names need --export-to FILE" in err
    assert hashlib.sha256(zoo.read_bytes()).hexdigest() == digest
    assert not list(zoo.parent.glob("yolov3-tiny.yaml.bak*"))


def test_mmdet_second_in_place_keeps_the_first_override(config_data, tmp_path):
    """mmdet: the override inherits NAME.bak.py (the original); a second in-place export keeps
    inheriting it and keeps the first override as NAME.bak.1.py (which itself loads)."""
    from anchorfit.design.export import save_export
    from anchorfit.load import load_detector

    shutil.copytree(config_data / "configs" / "mmdet", tmp_path / "mmdet")
    path = tmp_path / "mmdet" / "retinanet" / "retinanet_r50_fpn_1x_coco.py"
    folder = path.parent
    original = path.read_text()
    det = load_detector(str(path))
    one = [[(a.w * 1.5, a.h * 1.5) for a in lv.anchors] for lv in det.levels]
    out1, _ = save_export(det, one, in_place=True)
    first = path.read_text()
    two = [[(a.w * 2, a.h * 2) for a in lv.anchors] for lv in det.levels]
    out2, _ = save_export(load_detector(str(path)), two, in_place=True)
    bak, bak1 = folder / f"{path.stem}.bak.py", folder / f"{path.stem}.bak.1.py"
    assert out1.backup == out2.backup == bak
    assert bak.read_text() == original and bak1.read_text() == first
    assert f"'./{bak.name}'" in path.read_text()

    def sides(p: Path) -> list[list[tuple[int, int]]]:
        return [sorted((round(a.w), round(a.h)) for a in lv.anchors)
                for lv in load_detector(str(p)).levels]

    assert sides(bak1) == [sorted((round(w), round(h)) for w, h in lv) for lv in one]
    assert sides(path) == [sorted((round(w), round(h)) for w, h in lv) for lv in two]


# --------------------------------------------------------------------------- figures


@pytest.mark.parametrize("args", [
    ["plan", "s3fd", "--no-erf", "--plot", "{tmp}/x.xyz"],
    ["boxes", "{tmp}/none.json", "--plot", "{tmp}/x.xyz"],
    ["kmeans", "{tmp}/none.json", "--plot", "{tmp}/x.xyz"],
    ["compare", "s3fd", "--boxes", "{tmp}/none.json", "--plot-recall", "{tmp}/x.xyz"],
    ["erf", "s3fd", "--plot", "{tmp}/x.xyz"],
])
def test_unknown_figure_type_stops_before_any_work(tmp_path, run_cli, args):
    code, out, err = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and "unknown figure type '.xyz'" in err and ".png, .svg, .pdf" in err
    assert out == "" and list(tmp_path.iterdir()) == []


def test_figure_without_suffix_is_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    try:
        safe_write.save_figure(fig, tmp_path / "plot")
    finally:
        plt.close(fig)
    assert (tmp_path / "plot").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not IS_ROOT, reason="needs root to own a file as another user")
def test_foreign_file_in_a_sticky_shared_folder_is_not_replaced(tmp_path):
    """The kernel's protected_regular rule, which a rename would bypass."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    theirs = shared / "report.json"
    theirs.write_text("theirs\n")
    os.chown(theirs, 54321, 54321)
    with pytest.raises(AnchorfitError, match="refusing to replace a file owned by uid 54321"):
        write_output(theirs, "ours\n")
    assert theirs.read_text() == "theirs\n"


def test_in_place_on_a_hard_linked_detector_refuses_before_the_backup(tmp_path):
    from anchorfit.design.export import write_export

    cfg = tmp_path / "model.cfg"
    cfg.write_text("v0\n")
    os.link(cfg, tmp_path / "shared.cfg")
    with pytest.raises(AnchorfitError, match="2 hard links"):
        write_export(cfg, "v1\n", in_place=True, original=cfg)
    assert cfg.read_text() == (tmp_path / "shared.cfg").read_text() == "v0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.cfg", "shared.cfg"]


@pytest.mark.skipif(not IS_ROOT, reason="needs root to own a link as another user")
def test_foreign_folder_link_in_a_sticky_shared_folder_is_refused(tmp_path):
    """/tmp/theirs -> /victim-folder, then -o /tmp/theirs/x.json: refused like a final link,
    whether or not the kernel's fs.protected_symlinks is on."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = tmp_path / "victim"
    victim.mkdir()
    link = shared / "theirs"
    link.symlink_to(victim)
    os.lchown(link, 54321, 54321)
    with pytest.raises(AnchorfitError, match="refusing to follow the symlink .*theirs"):
        write_output(link / "x.json", "pwned\n", what="--output")
    assert list(victim.iterdir()) == []
    os.lchown(link, os.geteuid(), os.getegid())  # our own link is followed
    write_output(link / "x.json", "ours\n")
    assert (victim / "x.json").read_text() == "ours\n"
