"""A generated problem: its question, gold answer, a sequential and a parallel trace, and the
split it belongs to. Pure Python, no torch."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .trace import Trace

SPLITS = ("train", "test")
TEST_PER_MILLE = 100  # share of problems held out for "test", per thousand


def split_of(key: str) -> str:
    """"train" or "test", from a stable hash of a problem's canonical content (never Python's
    salted `hash`), so a held-out problem is held out in every run and every phrasing."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 1000 < TEST_PER_MILLE else "train"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {', '.join(map(repr, SPLITS))}")


@dataclass(frozen=True, slots=True)
class Problem:
    """A generated problem, its gold answer, and the two ways its solver writes it."""

    task: str  # the generator's name in `TASKS`
    key: str  # the problem's content in a canonical form, phrasing left out (its hash gives the split)
    question: str  # the prompt
    answer: str  # the gold answer, as the sequential trace's last \boxed{} states it (Countdown: one valid expression
    # of several; `registry.correct` accepts any)
    sequential: Trace  # one worker, no fork
    parallel: Trace  # forks where the work splits (the same as `sequential` where it does not)
    info: dict = field(default_factory=dict)  # the task's facts (Countdown: numbers, target; compound: parts)

    def __post_init__(self):
        for name in ("task", "key", "question", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Problem.{name}={value!r}: give non-empty text")
        for name in ("sequential", "parallel"):
            if not isinstance(getattr(self, name), Trace):
                raise ValueError(f"Problem.{name}={getattr(self, name)!r}: give a collab.tasks.trace.Trace")
        if self.sequential.forks:
            raise ValueError("Problem.sequential forks: a sequential trace is one worker's text (put forks in `parallel`)")

    @property
    def split(self) -> str:
        return split_of(self.key)
