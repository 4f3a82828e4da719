"""The task generators by name, and `make`, which draws distinct problems of one split from a
seed. Pure Python, no torch.

    >>> [p.split for p in make("simple", 3, seed=0, split="test")]
    ['test', 'test', 'test']
"""

from __future__ import annotations

import random
from functools import partial

from . import compound, countdown, simple
from .problem import Problem, check_split

TASKS = {
    "countdown3": partial(countdown.generate, size=3),
    "countdown4": partial(countdown.generate, size=4),
    "compound": compound.generate,
    "simple": simple.generate,
}
DRAWS_PER_PROBLEM = 200  # draws `make` allows per problem asked for, before it gives up


def counts(spec: str, where: str = "tasks") -> dict[str, int]:
    """`NAME=N,...` as {name: problems}: how `python -m collab train --tasks` and an evaluation's
    `tasks:` source ask for generated problems. An item with an unknown name or a count that is
    not a whole number, or a name given twice, is an error naming the item (`where` says whose).

        >>> counts("compound=100, simple=50")
        {'compound': 100, 'simple': 50}
    """
    out = {}
    for item in spec.split(","):
        name, _, n = (s.strip() for s in item.partition("="))
        if name in out:
            raise ValueError(f"{where} item {item.strip()!r}: {name!r} given twice; give each task once")
        if name not in TASKS or not n.isdigit():
            raise ValueError(f"{where} item {item.strip()!r}: write NAME=N with NAME one of {', '.join(map(repr, TASKS))}, "
                             "e.g. 'compound=100,simple=50'")
        out[name] = int(n)
    return out


def make(name: str, n: int, seed: int = 0, split: str = "train") -> list[Problem]:
    """`n` distinct problems of task `name` in `split` ("train" or "test"), the same for the same
    seed. A problem's split comes from a hash of its content, so the splits never share one."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks are {', '.join(map(repr, TASKS))}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r}: give the number of problems, an int >= 0")
    check_split(split)
    rng, problems, seen = random.Random(seed), [], set()
    for _ in range(DRAWS_PER_PROBLEM * n):
        if len(problems) == n:
            break
        problem = TASKS[name](rng, split)
        if problem is not None and problem.key not in seen:
            seen.add(problem.key)
            problems.append(problem)
    if len(problems) < n:
        raise ValueError(f"made only {len(problems)} of {n} distinct {split!r} problems of {name!r}; ask for fewer")
    return problems


def correct(problem: Problem, answer: str | None) -> bool:
    """Whether `answer` (e.g. `collab.answers.extract(text, "boxed")`) solves `problem`: any valid
    expression for Countdown, the gold answer up to spaces and case otherwise."""
    if answer is None:
        return False
    if problem.task.startswith("countdown"):
        return countdown.valid(answer, problem.info["numbers"], problem.info["target"])
    return answer.replace(" ", "").lower() == problem.answer.replace(" ", "").lower()
