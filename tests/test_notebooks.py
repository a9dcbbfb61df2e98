"""Execute every example notebook (notebooks/*.ipynb) and compare its outputs with the stored ones.

The notebooks are stored with their outputs (so a reader on a code host sees the tables and
figures) and read the files shipped in tests/data, so they run in a fresh clone. The comparison is
loose: numbers may move with the platform (and notebook 01 falls back from WIDER FACE to COCO128
when WIDER_VAL is absent), but every code cell must give the same kinds of output, the same
tables with the same columns, and a figure wherever the stored notebook has one. The kernel is
this interpreter (``sys.executable``), whatever kernelspecs are installed elsewhere: a kernelspec
written to a temporary folder is the only one the kernel manager can see.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

import pytest

import anchorfit

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "anchorfit-test-python"


def _kernel_manager(root: Path) -> KernelManager:
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    # the kernel imports the anchorfit under test (this checkout), not whichever one the
    # environment's install points at
    package_root = str(Path(anchorfit.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "anchorfit tests", "language": "python", "env": {"PYTHONPATH": path}}))
    specs = KernelSpecManager(kernel_dirs=[str(root / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def _table_columns(html: str) -> list[tuple[str, ...]]:
    """Header rows of every HTML table (pandas' ``<thead>``), cell texts in order."""
    heads = re.findall(r"<thead>(.*?)</thead>", html, flags=re.S)
    return [tuple(re.sub(r"<[^>]+>", "", th).strip()
                  for th in re.findall(r"<th[^>]*>.*?</th>", row, flags=re.S))
            for head in heads for row in re.findall(r"<tr[^>]*>(.*?)</tr>", head, flags=re.S)]


def _shape(cell) -> list[tuple]:
    """What a code cell shows, without the values: per output its kind, its MIME types, and
    for HTML tables their header rows."""
    shape = []
    for out in cell.outputs:
        if out.output_type == "stream":
            if out.name == "stderr":  # progress and library warnings: not part of the result
                continue
            item = ("stream", out.name)
            if not shape or shape[-1] != item:  # a stream may arrive in several chunks
                shape.append(item)
            continue
        data = out.get("data", {})
        tables = tuple(_table_columns(data.get("text/html", "")))
        shape.append((out.output_type, tuple(sorted(data)), tables))
    return shape


def test_notebooks_exist():
    assert [p.name for p in PATHS] == ["01_plan_s3fd_wider_face.ipynb",
                                       "02_audit_yolov3_tiny_coco128.ipynb",
                                       "03_compare_ssd300_voc.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path, tmp_path: Path):
    stored = nbformat.read(path, as_version=4)
    code = [i for i, cell in enumerate(stored.cells) if cell.cell_type == "code"]
    assert any(stored.cells[i].get("outputs") for i in code), \
        f"{path.name} is stored without outputs; run python notebooks/_build.py"
    assert any("image/png" in out.get("data", {}) for i in code for out in stored.cells[i].outputs)
    nb = copy.deepcopy(stored)
    for i in code:
        nb.cells[i].outputs = []
    # first cell: which interpreter runs the kernel (removed before the checks below)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable, end='')"))
    client = nbclient.NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=300,
                                     allow_errors=True,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    probe = nb.cells.pop(0)
    assert "".join(o.get("text", "") for o in probe.outputs) == sys.executable
    errors = [(i, cell.source.splitlines()[0] if cell.source else "", out)
              for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert not errors, "\n\n".join(
        f"{path.name} cell {i} ({first!r}): {out.ename}: {out.evalue}\n"
        + "\n".join(out.traceback[-3:]) for i, first, out in errors)
    for i in code:
        first = stored.cells[i].source.splitlines()[0] if stored.cells[i].source else ""
        assert _shape(nb.cells[i]) == _shape(stored.cells[i]), f"{path.name} cell {i} ({first!r})"
