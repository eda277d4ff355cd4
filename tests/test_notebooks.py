"""Every notebook runs top to bottom (nbclient), on a very small tiny-preset checkpoint with little work.

The notebooks read ``ISTVT_NOTEBOOK_WEIGHTS`` and ``ISTVT_NOTEBOOK_LEVEL``; CI points
them at a 64 x 64 tiny checkpoint and the ``smoke`` level so that all four run in
about a minute on a shared CPU.  The committed notebooks carry their outputs (executed by
``python notebooks/build_notebooks.py --execute``), so that they read where people browse them:
complete, without errors, and light.
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


def test_the_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_explorer.ipynb", "03_hard_samples.ipynb",
                                           "04_paper_figures.ipynb", "05_your_own_method.ipynb"]


MAX_NOTEBOOK_BYTES = 1_500_000  # figures shown small: a notebook stays quick to load on a code host


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_executed_with_light_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert None not in counts and counts == sorted(counts), f"{path.name}: run build_notebooks.py --execute"
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name}: committed with an error"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no figure in the outputs"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name}: {path.stat().st_size} bytes; show figures smaller"
    setup = code[0].source
    assert "import istvt_explain as ie" in setup and "istvt_explain.analysis" not in setup, \
        f"{path.name}: the setup cell should use the public ie. API"


def test_notebooks_match_their_builder(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS[0].parent / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for built in module.build(tmp_path):
        committed = nbformat.read(NOTEBOOKS[0].parent / built.name, as_version=4)
        fresh = nbformat.read(built, as_version=4)
        assert [(c.cell_type, c.id, c.source) for c in committed.cells] == \
            [(c.cell_type, c.id, c.source) for c in fresh.cells], \
            f"{built.name}: run notebooks/build_notebooks.py --execute"


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
    for cell in nb.cells:  # from scratch: the committed outputs must not stand in for this run's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no figure was shown"
