"""Attention kernels over collab's paged shared KV store (installed as `collab.kernels`).

`reference` is plain PyTorch and is what runs on CPU; accelerated kernels are tested against it.
"""

if __name__ == "kernels":
    # Reached as a top-level `kernels` only when a checkout's root is on sys.path (`python -m ...` run from the
    # root). That name belongs to the Hugging Face library transformers imports: hand it over, or fail as a
    # missing module would, so transformers' availability check and imports see the real thing or nothing.
    import importlib.machinery
    import importlib.util
    import os
    import sys

    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _spec = importlib.machinery.PathFinder.find_spec(
        "kernels", [p for p in sys.path if os.path.abspath(p or os.curdir) != _root])
    if _spec is None or _spec.loader is None:
        raise ModuleNotFoundError("No module named 'kernels' (this checkout's kernels/ is collab.kernels)", name="kernels")
    _hub = importlib.util.module_from_spec(_spec)
    sys.modules["kernels"] = _hub  # the import system returns what sys.modules holds once this file has run
    _spec.loader.exec_module(_hub)
else:
    from .reference import causal_attention, paged_attention, rotate, rotate_half, rotation_tables

    __all__ = ["causal_attention", "paged_attention", "rotate", "rotate_half", "rotation_tables"]
