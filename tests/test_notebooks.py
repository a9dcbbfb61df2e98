"""Execute every example notebook (notebooks/*.ipynb) and require that no cell errors.

The notebooks read ../../shared/data (relative to notebooks/), so the test skips without it. The
kernel is this interpreter (``sys.executable``), whatever kernelspecs are installed elsewhere: a
kernelspec written to a temporary folder is the only one the kernel manager can see.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

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
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "anchorfit tests", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(root / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def test_notebooks_exist():
    assert [p.name for p in PATHS] == ["01_plan_s3fd_wider_face.ipynb",
                                       "02_audit_yolov3_tiny_coco128.ipynb",
                                       "03_compare_ssd300_voc.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path, shared_data: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        assert not cell.get("outputs"), f"{path.name} is stored with outputs; clear them"
    # first cell: which interpreter runs the kernel (removed before the check below)
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
