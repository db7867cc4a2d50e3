"""The walkthrough notebook: it runs top to bottom, and the copy in the repository ships with its outputs.

The run happens in a temporary copy of the folders the notebook reads (codebook/, examples/,
notebooks/), so nothing is written into the repository; the package comes from this checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from .conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
OUTPUT = "walkthrough_output"
#: A path of this machine or a temporary folder in a saved output.
MACHINE_PATH = re.compile(r"/(tmp|home|root|work|Users|private|var/folders)/")
HELD_OUT_LINE = re.compile(r"Model against coder 1: micro-F1 (\d\.\d+), macro-F1 (\d\.\d+)")

#: Appended to the copy that runs: reads the notebook's own variables.
CHECKS = """
import json
print("CHECKS " + json.dumps({
    "codes": codebook.ids,
    "evaluation_rows": list(evaluation.index),
    "evaluation_f1": [float(v) for v in evaluation["f1"]],
    "kappa_model": float(kappas.loc["mean over codes", "model vs coder 1"]),
    "kappa_humans": float(kappas.loc["mean over codes", "coder 1 vs coder 2"]),
    "tagged": len(tagged),
    "flagged": int(tagged["needs_review"].sum()),
    "sheet": len(sheet),
    "qdpx_sources": project.sources,
}))
"""


def _code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _stdout(cells) -> str:
    return "".join(o.get("text", "") for cell in cells for o in cell.outputs if o.output_type == "stream")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The notebook executed in a temporary copy: (executed notebook, folder it ran in, CHECKS values)."""
    folder = tmp_path_factory.mktemp("walkthrough")
    for name in ("codebook", "examples", "notebooks"):
        shutil.copytree(ROOT / name, folder / name)
    notebook = nbformat.read(folder / "notebooks" / NOTEBOOK.name, as_version=4)
    for cell in _code_cells(notebook):
        cell.outputs, cell.execution_count = [], None
    notebook.cells.append(nbformat.v4.new_code_cell(CHECKS))
    saved = os.environ.get("PYTHONPATH")
    # The kernel is a new process: it must import this checkout's package, whatever is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)
    try:
        # Raises CellExecutionError on the first cell that fails.
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(folder / "notebooks")}}).execute()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    line = next(o.text for o in notebook.cells[-1].outputs if o.output_type == "stream" and "CHECKS " in o.text)
    return notebook, folder, json.loads(line.split("CHECKS ", 1)[1])


def test_walkthrough_runs_top_to_bottom(run):
    notebook, _, checks = run
    outputs = [o for cell in _code_cells(notebook) for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    codes = checks["codes"]
    # held-out evaluation: one row per code, then the micro and macro averages, every F1 a number in [0, 1]
    assert checks["evaluation_rows"] == [*codes, "micro", "macro"]
    assert all(0.0 <= f1 <= 1.0 for f1 in checks["evaluation_f1"])
    # the notebook's reading of step 4: two people agree more than the model agrees with either
    assert checks["kappa_model"] < checks["kappa_humans"]
    assert checks["tagged"] == 175
    assert 0 < checks["flagged"] == checks["sheet"] < checks["tagged"]
    assert checks["qdpx_sources"] == 175


def test_walkthrough_writes_its_files_in_one_ignored_folder(run):
    _, folder, checks = run
    out = folder / OUTPUT
    assert {p.name for p in folder.iterdir()} == {"codebook", "examples", "notebooks", OUTPUT}
    assert {p.name for p in (folder / "notebooks").iterdir()} == {NOTEBOOK.name}
    assert (out / ".gitignore").read_text().strip() == "*"
    for name in ("report/report.html", "report/report.xlsx", "wave2022_tagged.csv", "wave2022.qdpx"):
        assert (out / name).stat().st_size > 0, name
    frequencies = pd.read_csv(out / "report" / "theme_frequencies.csv")
    assert frequencies["code"].tolist() == checks["codes"]
    sheet = pd.read_excel(out / "review.xlsx", sheet_name=0)
    assert len(sheet) == checks["flagged"]
    assert sheet["response_id"].is_unique


def test_shipped_notebook_has_current_outputs(run):
    shipped = nbformat.read(NOTEBOOK, as_version=4)
    cells = _code_cells(shipped)
    # executed once, top to bottom, with its outputs saved
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    outputs = [o for cell in cells for o in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    saved = json.dumps([cell.outputs for cell in cells])
    assert not MACHINE_PATH.search(saved), MACHINE_PATH.search(saved)
    assert len(saved) < 400_000
    # only the top-level public API
    source = "\n".join(cell.source for cell in cells)
    assert not re.search(r"\b(from|import)\s+opm_nlp\.", source)
    # the saved figures are the ones the code gives now (else: re-execute the notebook and save it)
    shipped_f1 = [float(v) for v in HELD_OUT_LINE.search(_stdout(cells)).groups()]
    fresh_f1 = [float(v) for v in HELD_OUT_LINE.search(_stdout(_code_cells(run[0]))).groups()]
    assert shipped_f1 == pytest.approx(fresh_f1, abs=0.02)
