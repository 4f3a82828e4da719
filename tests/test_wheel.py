"""The package as users install it: `python -m build` makes a wheel and an sdist whose metadata
passes `twine check`; the wheel, installed on its own (not the editable checkout), carries every
prompt, kernel, task file, adapter and the custom_generate folder, reports its version, runs the
command line on the embedded default model and the quickstart notebook. (The Space from the
wheel: tests/test_space_build.py.)"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import collab

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True)
    return out


def test_a_wheel_and_an_sdist_with_metadata_twine_accepts(dist):
    wheel, sdist = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheel) == 1 and len(sdist) == 1 and f"collab-{collab.__version__}" in wheel[0].name
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheel + sdist)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    names = set(zipfile.ZipFile(wheel[0]).namelist())
    shipped = {  # every file the package reads at run time, from the checkout
        *(f"collab/prompts/{p.name}" for p in (ROOT / "prompts").iterdir() if p.suffix in (".md", ".txt", ".py")),
        *(f"collab/kernels/{p.name}" for p in (ROOT / "kernels").glob("*.py")),
        *(f"collab/{p.relative_to(ROOT / 'collab')}" for p in (ROOT / "collab").rglob("*")
          if p.is_file() and p.suffix in (".py", ".jsonl", ".json", ".safetensors", ".txt", ".md") and "__pycache__" not in p.parts),
    }
    assert shipped - names == set()


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(next(dist.glob("*.whl")))], check=True, capture_output=True)
    return target


def test_the_installed_wheel_runs_on_its_own(installed, tmp_path):
    target = installed
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = ("import collab, importlib.metadata as m; "
             "from collab import prompts, tasks; from collab.kernels import reference; "
             "print(collab.__file__); print(collab.__version__, m.version('collab')); "
             "print(len(prompts.load('markers.md')) > 0, len(tasks.make('countdown4', 2, seed=0)) == 2); "
             "print((collab.CUSTOM_GENERATE / 'custom_generate' / 'generate.py').is_file(), "
             "collab.models.has_adapter('parallel'), collab.models.has_adapter('sequential'))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    where, versions, files, extras = out.stdout.splitlines()
    assert where.startswith(str(target))  # the wheel, not the checkout
    assert versions.split() == [collab.__version__] * 2
    assert files == "True True" and extras == "True True True"
    cli = subprocess.run([sys.executable, "-m", "collab", "What is 2 + 3?", "--workers", "2", "--max-new-tokens", "6",
                          "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "=== Alice" in cli.stdout and "forward passes" in cli.stdout


def test_the_quickstart_notebook_runs_on_the_installed_wheel(installed, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONPATH", str(installed))  # the kernel imports collab from the wheel
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import collab; print('collab from', collab.__file__)"))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    where = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert f"collab from {installed}{os.sep}collab" in where
