"""The Space as it deploys: the folder `python -m collab space DIR` writes, its requirements.txt
installed into a fresh virtual environment the way a Space installs it (`pip install -r
requirements.txt` in the folder), and its app.py served from that environment on a localhost
port. tests/test_space_build.py and tests/test_space_browser.py share the folder and the
environment (session fixtures `space_folder` and `space_python` in conftest.py); each module
starts the server once (`space_server`).

The fresh environment sees this one's packages behind its own (a `.pth` file), so pip finds
torch, transformers and Gradio already installed and installs only what the folder adds: collab
from the folder's wheel. `--no-index`: nothing is downloaded; a requirement this environment
cannot meet fails the install.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

PANELS = 6  # COLLAB_PANELS for the served Space: not the default, so a test sees the variable reach the app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(out: Path) -> Path:
    """`python -m collab space OUT`, as a user runs it from a clone."""
    from collab.__main__ import main

    assert main(["space", str(out), "--force"]) == 0
    return out


def install(folder: Path, root: Path) -> Path:
    """A fresh virtual environment at `root` with the folder's requirements installed; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the venv's own: the wheel wins
    # As a Space does, in the folder (requirements.txt names the wheel by a relative path); pip
    # itself comes from this environment. It leaves this environment's (editable) collab alone:
    # that one is outside the venv.
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
                           "-r", "requirements.txt"], cwd=folder, capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return python


def _env(**extra) -> dict:
    """This environment's variables without the ones that would point the Space elsewhere (the
    checkout on PYTHONPATH, another model, other limits), the model cache kept, plus `extra`."""
    from collab.models import cache_dir

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("COLLAB_")}
    env["COLLAB_CACHE"] = str(cache_dir())  # the default model's converted copy, made once per machine
    env.update(extra)
    return env


class Server:
    """app.py running from the venv: its URL, its process, its log."""

    def __init__(self, process: subprocess.Popen, url: str, log: Path):
        self.process, self.url, self.log = process, url, log

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system, all its threads; Linux)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_rate(self, seconds: float) -> float:
        """CPU seconds per second the server uses over the next `seconds`."""
        start, t0 = self.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        return (self.cpu_seconds() - start) / (time.monotonic() - t0)


@contextmanager
def serve(python: Path, folder: Path, log: Path, timeout: float = 300):
    """`python app.py` in the folder, as the Space starts it, on a free localhost port; yields
    once the page answers, and stops the server on exit."""
    from collab.models import default_model_path

    default_model_path()  # converted here first (once per machine) if the cache lacks it: the server reuses it
    port = free_port()
    env = _env(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), COLLAB_PANELS=str(PANELS))
    url = f"http://127.0.0.1:{port}/"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: never through a proxy
    with open(log, "wb") as out:
        process = subprocess.Popen([str(python), "app.py"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, url, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"the Space exited ({process.returncode}):\n{server.tail()}"
            assert time.monotonic() < deadline, f"the Space did not answer in {timeout:.0f} s:\n{server.tail()}"
            try:
                with direct.open(url, timeout=5) as page:
                    if page.status == 200:
                        break
            except OSError:  # not up yet
                pass
            time.sleep(1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
