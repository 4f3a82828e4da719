"""Synthetic tasks whose traces a solver writes, for supervised fine-tuning of a model that
decides when to go parallel. Pure Python, no torch.

- `trace.py`: a protocol-neutral trace (`Text`, `Fork`, `Trace`).
- `render.py`: a trace as each protocol's per-worker streams (`render`), what is written vs fed.
- `check.py`: that a rendering round-trips through collab's own protocol parser (`check`).
- `countdown.py`, `compound.py`, `simple.py` (over `parts.py`): seeded generators with solvers.
- `registry.py`: `TASKS`, `make(name, n, seed, split)`, `counts("compound=100,simple=50")`, `correct(problem, answer)`.

    >>> from collab.tasks import make, render
    >>> p = make("compound", 1, seed=0)[0]
    >>> render(p.parallel, "markers").root.text.endswith("<done>")
    True
"""

from .check import check
from .problem import SPLITS, Problem, split_of
from .registry import TASKS, correct, counts, make
from .render import FORMATS, Piece, Rendering, Stream, render, renderable
from .trace import Fork, Text, Trace

__all__ = [
    "FORMATS", "Fork", "Piece", "Problem", "Rendering", "SPLITS", "Stream", "TASKS", "Text", "Trace", "check", "correct",
    "counts", "make", "render", "renderable", "split_of",
]
