"""The tutorial notebooks run top to bottom in a real Jupyter kernel from wherever they are copied to (a
downloaded notebook has nothing beside it), and are committed without outputs."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
pytestmark = pytest.mark.keras  # the notebooks train and import with Keras too


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_committed_notebook_has_no_outputs_and_says_what_to_install(path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "pip install" in notebook.cells[0].source  # the first cell says what it needs
    assert "../" not in "".join(cell.source for cell in code)  # no path out of the notebook's folder


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_alone_in_an_empty_folder(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    kinds = {key for output in outputs for key in output.get("data", {})}
    assert "text/html" in kinds  # summary and parity tables rendered as tables
    assert not [output for output in outputs if output.get("output_type") == "error"]
