"""Every notebook runs top to bottom (nbclient), on a very small tiny-preset checkpoint with little work.

The notebooks read ``ISTVT_NOTEBOOK_WEIGHTS`` and ``ISTVT_NOTEBOOK_LEVEL``; CI points
them at a 64 x 64 tiny checkpoint and the ``smoke`` level so that all four run in
about a minute on a shared CPU.  The committed notebooks must carry no outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from analysis_support import small_weights

nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_explorer.ipynb", "03_hard_samples.ipynb",
                                           "04_paper_figures.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


def test_notebooks_match_their_builder(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS[0].parent / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for built in module.build(tmp_path):
        assert built.read_text() == (NOTEBOOKS[0].parent / built.name).read_text(), \
            f"{built.name}: run notebooks/build_notebooks.py"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return small_weights(tmp_path_factory.mktemp("nb") / "small.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, weights, monkeypatch, tmp_path):
    monkeypatch.setenv("ISTVT_NOTEBOOK_WEIGHTS", str(weights))
    monkeypatch.setenv("ISTVT_NOTEBOOK_LEVEL", "smoke")
    monkeypatch.setenv("ISTVT_FIGURES_OUT", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no figure was shown"
