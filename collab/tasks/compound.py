"""Compound questions: 2 to 6 independent single-step parts (`parts.py`) asked as one question
whose answer combines theirs: their sum, the largest, or the list of answers in order. The
parallel trace hands each part to a helper and combines their answers; the sequential one works
the parts in turn. Question, plan and conclusion each come in several phrasings. Pure Python, no
torch.

    >>> from collab.tasks import make
    >>> p = make("compound", 1, seed=3)[0]
    >>> p.info["combine"], p.info["parts"], p.answer
    ('list', ('2', '6', '2'), '2, 6, 2')
"""

from __future__ import annotations

import random

from .parts import draw
from .problem import Problem, split_of
from .trace import Fork, Text, Trace

COMBINES = ("sum", "max", "list")
COUNTS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}

ASK = {
    "sum": ("Find {nouns}. What is the sum of the results?", "What is the total of {nouns}?", "Add up {nouns}.",
            "Answer each question, then add the answers together. {questions}", "Work out {nouns}, and give their sum."),
    "max": ("Which is largest: {nouns_or}? Give its value.", "Find {nouns}, and report the largest of them.",
            "Answer each question and give the largest answer. {questions}"),
    "list": ("Find {nouns}. Give the answers in order, separated by commas.",
             "Answer each question, in order, as a comma-separated list. {questions}", "Give {nouns}, as a comma-separated list."),
}
PLAN_SEQUENTIAL = ("There are {k} parts; I work them in turn.", "{K} separate questions here; one at a time.",
                   "I answer the {k} parts one after another.")
PLAN_PARALLEL = ("There are {k} independent parts; one helper each.", "The {k} parts do not depend on each other, so I split them.",
                 "{K} independent questions: I hand each to a helper.")
CONCLUDE = {
    "sum": ("Results: {answers}. Sum: {expr} = {answer}.", "Adding the results: {expr} = {answer}.", "Together: {expr} = {answer}."),
    "max": ("Results: {answers}. The largest is {answer}.", "Comparing {answers}: the largest is {answer}."),
    "list": ("In order: {answer}.", "The answers in order: {answer}."),
}


def combine(how: str, answers: list[str]) -> str:
    """The compound answer from the parts' answers."""
    if how == "sum":
        return str(sum(int(a) for a in answers))
    if how == "max":
        return str(max(int(a) for a in answers))
    if how == "list":
        return ", ".join(answers)
    raise ValueError(f"combine={how!r}: choose one of {', '.join(map(repr, COMBINES))}")


def generate(rng: random.Random, split: str) -> Problem | None:
    """One compound problem of `split`, or None (the other split, or a part drawn twice)."""
    parts = [draw(rng) for _ in range(rng.randint(2, 6))]
    how = rng.choice(COMBINES if all(p.value is not None for p in parts) else ("list",))
    key = f"compound:{how}:" + "|".join(p.key for p in parts)
    if split_of(key) != split or len({p.key for p in parts}) < len(parts):
        return None
    answers = [p.answer for p in parts]
    answer = combine(how, answers)
    nouns = [p.noun for p in parts]
    question = rng.choice(ASK[how]).format(
        nouns=_and(nouns), nouns_or=_and(nouns, "or"), questions=" ".join(f"({i}) {p.question}" for i, p in enumerate(parts, 1)))
    k = {"k": COUNTS[len(parts)], "K": COUNTS[len(parts)].capitalize()}
    conclusion = rng.choice(CONCLUDE[how]).format(answers=", ".join(answers), expr=" + ".join(answers), answer=answer)
    boxed = f"\\boxed{{{answer}}}"
    lines = [f"Part {i}: {p.work}" for i, p in enumerate(parts, 1)]
    sequential = Trace.of("\n".join([rng.choice(PLAN_SEQUENTIAL).format(**k), *lines, conclusion, boxed]))
    fork = Fork(tuple(p.task for p in parts), tuple(Trace.of(p.work) for p in parts), conclusion)
    parallel = Trace((Text(rng.choice(PLAN_PARALLEL).format(**k)), fork, Text(boxed)))
    info = {"combine": how, "parts": tuple(answers), "keys": tuple(p.key for p in parts)}
    return Problem("compound", key, question, answer, sequential, parallel, info)


def _and(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]

