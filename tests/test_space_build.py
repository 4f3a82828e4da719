"""`python -m collab space DIR` writes a Space folder that deploys as pushed: the app, a README
with the Space's metadata, collab as a wheel built from this checkout and requirements pointing at
it. The folder is served from a fresh virtual environment that holds the wheel (not the checkout;
the other dependencies are this environment's), and a visitor's run gets an answer."""

import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from collab.__main__ import main

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("space")
    assert main(["space", str(out), "--force"]) == 0
    return out


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory):
    """A fresh environment with the Space's wheel installed; this one's packages for the rest."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    wheel = next(built.glob("collab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the venv's own: the wheel wins
    return python


def test_the_folder_holds_what_a_space_needs(built):
    names = {p.name for p in built.iterdir()}
    wheel = next(n for n in names if n.endswith(".whl"))
    assert {"app.py", "bootstrap.py", "README.md", "requirements.txt", wheel} <= names
    meta = (built / "README.md").read_text().split("---")[1]
    assert "sdk: gradio" in meta and "app_file: app.py" in meta
    assert f"./{wheel}[default-model]" in (built / "requirements.txt").read_text().splitlines()
    assert "import bootstrap" in (built / "app.py").read_text()
    assert main(["space", str(built)]) == 2  # not empty: refused without --force


def test_the_built_space_serves_a_visitor_from_the_wheel(built, venv):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLLAB_MODEL")}
    where = subprocess.run([str(venv), "-c", "import app, collab; print(collab.__file__)"], cwd=built, env=env,
                           capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr[-2000:]
    assert "site-packages" in where.stdout and str(Path(__file__).parents[1] / "collab") not in where.stdout
    port = free_port()
    server = subprocess.Popen([str(venv), "app.py"], cwd=built, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"})
    try:
        from gradio_client import Client

        deadline, client = time.monotonic() + 120, None
        while client is None:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the Space did not start serving"
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:  # not up yet
                time.sleep(1)
        values = client.predict("What is 2 + 3?", "hogwild", 2, "full", 4, 0, api_name="/run")
        answer, stats = values[-2:]
        assert answer.strip() and "tokens from" in stats
    finally:
        server.terminate()
        server.wait(timeout=30)
