"""Single-step questions ("What is 25 + 42?", one conversion, one letter of a word): their
parallel trace is the sequential one, with no fork, so a model also learns when not to spawn.
Pure Python, no torch.

    >>> from collab.tasks import make
    >>> p = make("simple", 1, seed=0)[0]
    >>> p.parallel is p.sequential, p.parallel.forks
    (True, ())
"""

from __future__ import annotations

import random

from .parts import draw
from .problem import Problem, split_of
from .trace import Trace


def generate(rng: random.Random, split: str) -> Problem | None:
    """One single-step problem of `split`, or None (it belongs to the other split)."""
    part = draw(rng)
    key = f"simple:{part.key}"
    if split_of(key) != split:
        return None
    trace = Trace.of(f"{part.work}\n\\boxed{{{part.answer}}}")
    return Problem("simple", key, part.question, part.answer, trace, trace, {"parts": (part.answer,), "keys": (part.key,)})
