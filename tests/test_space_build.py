"""`python -m collab space DIR` writes a Space folder that deploys as pushed: the app, a README
with the Space's metadata, collab as a wheel built from this checkout and requirements pointing at
it. The folder's requirements are installed into a fresh virtual environment as a Space installs
them (collab from the wheel, not the checkout; the other dependencies are this environment's), its
app.py is served from there, and a visitor's run gets an answer. The folder, the environment and
the server are tests/deployed_space.py's, shared with tests/test_space_browser.py."""

import os
import subprocess
from pathlib import Path

import pytest

from collab.__main__ import main

pytestmark = pytest.mark.slow


def test_the_folder_holds_what_a_space_needs(space_folder):
    built = space_folder
    names = {p.name for p in built.iterdir()}
    wheel = next(n for n in names if n.endswith(".whl"))
    assert {"app.py", "bootstrap.py", "README.md", "requirements.txt", wheel} <= names
    meta = (built / "README.md").read_text().split("---")[1]
    assert "sdk: gradio" in meta and "app_file: app.py" in meta
    assert f"./{wheel}[default-model]" in (built / "requirements.txt").read_text().splitlines()
    assert "import bootstrap" in (built / "app.py").read_text()
    assert main(["space", str(built)]) == 2  # not empty: refused without --force


def test_the_requirements_install_collab_from_the_folders_wheel(space_folder, space_python):
    probe = ("import collab, importlib.metadata as m; print(collab.__file__); "
             "print(m.distribution('collab').read_text('direct_url.json'))")
    where = subprocess.run([str(space_python), "-c", probe], cwd=space_folder, capture_output=True, text=True,
                           timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert where.returncode == 0, where.stderr[-2000:]
    module, origin = where.stdout.splitlines()[:2]
    venv = space_python.parents[1]
    assert module.startswith(str(venv)) and str(Path(__file__).parents[1] / "collab") not in module
    assert next(space_folder.glob("collab-*.whl")).name in origin  # pip installed the folder's wheel


def test_the_built_space_serves_a_visitor_from_the_wheel(space_server):
    from gradio_client import Client

    client = Client(space_server.url, verbose=False)
    values = client.predict("What is 2 + 3?", "hogwild", 2, "full", 4, 0, api_name="/run")
    answer, stats = values[-2:]
    assert answer.strip() and "tokens from" in stats, space_server.tail()
