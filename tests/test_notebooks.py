"""The example notebooks run top to bottom on the default model (CPU, small budgets), in a
temporary copy so the stored notebooks keep no outputs."""

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[1] / "examples"


def execute(name, tmp_path):
    path = tmp_path / name
    shutil.copy(EXAMPLES / name, path)
    nb = nbformat.read(path, as_version=4)
    # raises CellExecutionError (with the cell and its traceback) on any cell error
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # the kernel's cwd
    client.execute()
    return nb


def outputs(nb, mime):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if mime in o.get("data", {})]


@pytest.mark.parametrize("name", ["quickstart.ipynb", "visibility_ablation.ipynb"])
def test_stored_without_outputs(name):
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_quickstart_runs(tmp_path):
    nb = execute("quickstart.ipynb", tmp_path)
    html = outputs(nb, "text/html")
    assert any('class="collab-worker"' in o["data"]["text/html"] for o in html)  # the rich result
    assert len(outputs(nb, "image/png")) == 1  # result.plot(), shown once
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Alice +" in printed and "answer:" in printed  # stream deltas, the voted answer


def test_visibility_ablation_runs(tmp_path):
    nb = execute("visibility_ablation.ipynb", tmp_path)
    assert len(outputs(nb, "image/png")) == 2  # the harness's two plots
