"""The checkout's top-level kernels/ is `collab.kernels`; run from the repository root (where `python -m` puts the
root first on sys.path) it must not take the name `kernels` from the Hugging Face library transformers imports."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _run(code, *extra_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *map(str, extra_path)])}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_hub_library_keeps_its_name_from_the_root(tmp_path):
    hub = tmp_path / "site" / "kernels"
    hub.mkdir(parents=True)
    (hub / "__init__.py").write_text("HUB = True\n")
    (hub / "layer.py").write_text("MODE = 'hub'\n")
    out = _run("import kernels, kernels.layer, collab.kernels as ck; "
               "print(kernels.HUB, kernels.layer.MODE, ck.__name__, callable(ck.paged_attention))", tmp_path / "site")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "hub", "collab.kernels", "True"]


def test_without_the_hub_library_the_name_is_missing_not_collabs():
    hide = ("import os, sys, collab.kernels\n"  # drop any installed Hub library from the path, keep the root
            f"sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') == {str(ROOT)!r} "
            "or not os.path.isfile(os.path.join(p or '.', 'kernels', '__init__.py'))]\n")
    out = _run(hide + "try:\n    import kernels\nexcept ModuleNotFoundError as e:\n    print('missing', e.name)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["missing", "kernels"]
