"""Every notebook in notebooks/ runs top to bottom.

Each notebook is kept as jupytext percent-format text (``notebooks/*.py``). The test converts it
with jupytext into a notebook in a temporary folder and executes it with nbclient in a fresh
kernel of this environment, with the kernel's working directory in notebooks/ (where the
notebooks look for ../../shared/data) and POOLWISE_NB_DRAWS set small. Any cell error fails the
test. Nothing is written into the repository.
"""

import os
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from helpers import shared_csv

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.py"))
NB_DRAWS = "200"  # with 2 chains: enough for every cell to run, small enough for CI
KERNEL = "python3"
CELL_TIMEOUT = 600  # seconds; one cell samples at most a few models


def client(notebook: nbformat.NotebookNode) -> NotebookClient:
    """An nbclient runner on the ``python3`` kernel with its working directory in notebooks/.

    jupyter_client finds ``python3`` in this environment's share/jupyter/kernels (ipykernel installs
    it there; without it, jupyter_client falls back to ipykernel's built-in spec) and replaces the
    spec's bare ``python`` with ``sys.executable``, so the kernel is this environment's Python:
    ``test_kernel_is_this_environment`` checks that.
    """
    return NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )


def test_kernel_is_this_environment():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
    client(notebook).execute()
    printed = notebook.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.prefix).resolve(), (
        f"the {KERNEL!r} kernel runs in {printed}, not in this environment ({sys.prefix}); run "
        f"`{sys.executable} -m ipykernel install --sys-prefix` so the environment has its own kernel spec"
    )


def test_every_notebook_is_percent_format_without_outputs():
    assert NOTEBOOK_FILES, f"no notebooks found in {NOTEBOOKS}"
    for path in NOTEBOOK_FILES:
        text = path.read_text()
        assert "format_name: percent" in text, f"{path.name} is not jupytext percent format"
        assert "# %%" in text, f"{path.name} has no cells"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=[path.stem for path in NOTEBOOK_FILES])
def test_notebook_runs(path, tmp_path, monkeypatch):
    text = path.read_text()
    # The chapter's data files the notebook reads (e.g. DATA / "gym.csv"): skip when they are
    # absent outside CI, fail on CI.
    folders = {shared_csv(name).parent for name in sorted(set(re.findall(r"[\"'](\w+\.csv)[\"']", text)))}
    if folders:
        monkeypatch.setenv("POOLWISE_DATA", str(folders.pop()))
    monkeypatch.setenv("POOLWISE_NB_DRAWS", NB_DRAWS)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebooks ask for the inline backend
    before = sorted(os.listdir(NOTEBOOKS))

    converted = tmp_path / f"{path.stem}.ipynb"
    jupytext.write(jupytext.read(path), converted)
    notebook = nbformat.read(converted, as_version=4)
    try:
        client(notebook).execute()
    finally:
        nbformat.write(notebook, tmp_path / f"{path.stem}.executed.ipynb")  # kept for a failing run

    assert sorted(os.listdir(NOTEBOOKS)) == before, "the notebook wrote files into notebooks/"
    if "%matplotlib inline" in text:
        figures = sum(
            "image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", [])
        )
        assert figures, f"{path.name} asks for inline figures but shows none"
