"""The example notebooks: each .ipynb matches its jupytext source (examples/NN_name.py,
percent format, what is edited and linted), and they run, top to bottom, in their small
setting (second stage).

Each notebook is executed by nbclient in a fresh kernel of this interpreter (a
kernelspec written to a temporary JUPYTER_PATH points at ``sys.executable``), with a
temporary working directory so nothing is written into the repository. Any error in
any cell fails the test.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("0*.ipynb"))
KERNEL = "python3"


def test_notebooks_are_there_without_outputs():
    assert NOTEBOOKS == [
        "01_discover_circle_dynamics.ipynb",
        "02_compare_model_families.ipynb",
        "03_reproduce_survival_of_the_fittest.ipynb",
        "04_synthetic_lotka_volterra.ipynb",
    ]
    for name in NOTEBOOKS:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        assert "DYNAFIT_NOTEBOOK_SCALE" in code[0].source, f"{name}: no scale switch on top"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_matches_its_paired_source(name):
    jupytext = pytest.importorskip("jupytext")
    source = EXAMPLES / name.replace(".ipynb", ".py")
    assert source.exists(), f"{name} has no paired source {source.name}"
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", name
    paired = jupytext.read(source)
    cells = [(c.cell_type, c.source) for c in nb.cells]
    assert cells == [(c.cell_type, c.source) for c in paired.cells], (
        f"{name} differs from {source.name}: run `jupytext --sync examples/{source.name}`"
    )


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A JUPYTER_PATH whose ``python3`` kernel is this interpreter (the venv's python)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (dynafit tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return str(root)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path, kernel_env, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", kernel_env + os.pathsep + os.environ.get("JUPYTER_PATH", ""))
    monkeypatch.setenv("DYNAFIT_NOTEBOOK_SCALE", "small")
    monkeypatch.delenv("DYNAFIT_REPRODUCE_OUT", raising=False)
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable

    nb = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=900,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    wall = time.perf_counter() - start
    print(f"{name}: {wall:.1f} s")
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert not list(EXAMPLES.glob("reproduce_*")), "a notebook wrote into the repository"
