"""Single-step questions, each with a short worked solution: arithmetic, distance and time at a
speed, unit conversions, a letter of a word, counting letters. `simple.py` asks one; `compound.py`
combines several. Several phrasings per kind, so a model learns the behaviour, not a sentence.
Pure Python (ASCII text), no torch.

    >>> import random
    >>> p = arithmetic(random.Random(1))
    >>> p.key, p.answer
    ('arith:682-74', '608')
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Part:
    key: str  # canonical content, e.g. "arith:17*24" (no phrasing)
    noun: str  # a noun phrase for it, without commas: "the product of 17 and 24"
    question: str  # a question on its own: "What is 17 times 24?"
    task: str  # a helper's task: "compute 17*24"
    work: str  # its worked solution, ending with the answer: "17*24 = 340 + 68 = 408"
    answer: str

    def __post_init__(self):
        for name in ("key", "noun", "question", "task", "work", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or "\n" in value or not value.isascii():
                raise ValueError(f"Part.{name}={value!r}: give one line of ASCII text")
        if "," in self.noun:
            raise ValueError(f"Part.noun={self.noun!r} holds a comma: lists of nouns would read wrong; rephrase it")

    @property
    def value(self) -> int | None:
        """The answer as a number, or None (a letter)."""
        return int(self.answer) if self.answer.lstrip("-").isdigit() else None


def arithmetic(rng: random.Random) -> Part:
    op = rng.choice("+-*/")
    if op == "+":
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        r, nouns, work = a + b, [f"{a} + {b}", f"the sum of {a} and {b}", f"{a} plus {b}"], f"{a} + {b} = {a + b}"
        questions = [f"What is {a} + {b}?", f"What is {a} plus {b}?", f"Compute {a} + {b}.", f"How much is {a} + {b}?"]
    elif op == "-":
        a = rng.randint(100, 999)
        b = rng.randint(10, a - 1)
        r, nouns, work = a - b, [f"{a} - {b}", f"{a} minus {b}", f"the difference between {a} and {b}"], f"{a} - {b} = {a - b}"
        questions = [f"What is {a} - {b}?", f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"How much is {a} - {b}?"]
    elif op == "*":
        a, b = rng.randint(11, 99), rng.randint(2, 29)
        r, nouns = a * b, [f"{a}*{b}", f"{a} times {b}", f"the product of {a} and {b}"]
        tens, ones = b - b % 10, b % 10
        work = f"{a}*{b} = {a}*{tens} + {a}*{ones} = {a * tens} + {a * ones} = {r}" if tens and ones else f"{a}*{b} = {r}"
        questions = [f"What is {a} * {b}?", f"What is {a} times {b}?", f"Multiply {a} by {b}.", f"Compute {a}*{b}."]
    else:
        b, r = rng.randint(2, 19), rng.randint(2, 49)
        a = b * r
        nouns = [f"{a} / {b}", f"{a} divided by {b}", f"the quotient of {a} and {b}"]
        work = f"{a} / {b} = {r}, since {b}*{r} = {a}"
        questions = [f"What is {a} / {b}?", f"What is {a} divided by {b}?", f"Divide {a} by {b}.", f"How much is {a} / {b}?"]
    return Part(f"arith:{a}{op}{b}", rng.choice(nouns), rng.choice(questions), f"compute {a} {op} {b}", work, str(r))


VEHICLES = {"train": (60, 120), "car": (40, 110), "bus": (30, 80), "cyclist": (10, 25), "runner": (8, 15), "boat": (10, 40)}


def rate(rng: random.Random) -> Part:
    vehicle = rng.choice(sorted(VEHICLES))
    speed, hours = rng.randint(*VEHICLES[vehicle]), rng.randint(2, 6)
    km = speed * hours
    if rng.random() < 0.6:  # how far
        nouns = [f"the distance in km a {vehicle} covers in {hours} hours at {speed} km/h",
                 f"how many km a {vehicle} goes in {hours} hours at {speed} km/h"]
        questions = [f"A {vehicle} travels at {speed} km/h for {hours} hours. How far does it go, in km?",
                     f"How many km does a {vehicle} cover in {hours} hours at {speed} km/h?",
                     f"At {speed} km/h, how far does a {vehicle} get in {hours} hours (in km)?"]
        how, answer, work = "far", km, f"{speed} km/h * {hours} h = {km} km"
        task = f"distance of a {vehicle} at {speed} km/h for {hours} h"
    else:  # how long
        nouns = [f"the hours a {vehicle} needs for {km} km at {speed} km/h",
                 f"how many hours a {vehicle} takes to cover {km} km at {speed} km/h"]
        questions = [f"How many hours does a {vehicle} need to cover {km} km at {speed} km/h?",
                     f"A {vehicle} goes {speed} km/h. How long, in hours, does {km} km take?",
                     f"At {speed} km/h, how many hours does a {vehicle} take for {km} km?"]
        how, answer, work = "long", hours, f"{km} km / {speed} km/h = {hours} h"
        task = f"hours for a {vehicle} to cover {km} km at {speed} km/h"
    return Part(f"rate:{how}:{vehicle}:{speed}:{hours}", rng.choice(nouns), rng.choice(questions), task, work, str(answer))


UNITS = [  # (larger unit, smaller unit, how many smaller in one larger, amounts)
    ("hours", "minutes", 60, (2, 12)), ("minutes", "seconds", 60, (2, 20)), ("days", "hours", 24, (2, 10)),
    ("weeks", "days", 7, (2, 20)), ("kilometers", "meters", 1000, (2, 15)), ("kilograms", "grams", 1000, (2, 15)),
    ("meters", "centimeters", 100, (2, 30)), ("feet", "inches", 12, (2, 20)), ("yards", "feet", 3, (2, 40)),
    ("liters", "milliliters", 1000, (2, 9)),
]


def conversion(rng: random.Random) -> Part:
    big, small, factor, amounts = rng.choice(UNITS)
    n = rng.randint(*amounts)
    nouns = [f"the number of {small} in {n} {big}", f"{n} {big} in {small}", f"{n} {big} converted to {small}"]
    questions = [f"How many {small} are in {n} {big}?", f"Convert {n} {big} to {small}.", f"What is {n} {big} in {small}?",
                 f"{n} {big} is how many {small}?"]
    work = f"{n} {big} * {factor} = {n * factor} {small}"
    return Part(f"conv:{n}:{big}:{small}", rng.choice(nouns), rng.choice(questions), f"convert {n} {big} to {small}", work, str(n * factor))


WORDS = ("planet", "garden", "window", "bridge", "silver", "market", "pocket", "thunder", "candle", "forest", "orange",
         "rocket", "winter", "button", "castle", "island", "jungle", "lantern", "meadow", "number", "pepper", "quartz",
         "ribbon", "saddle", "tunnel", "velvet", "wallet", "banana", "elephant", "kitchen", "library", "mountain")
VOWELS = "aeiou"


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def letter(rng: random.Random) -> Part:
    word = rng.choice(WORDS)
    n = rng.randint(1, len(word))
    nth = ordinal(n)
    nouns = [f"the {nth} letter of '{word}'", f"letter number {n} of the word '{word}'"]
    questions = [f"What is the {nth} letter of '{word}'?", f"Which letter comes {nth} in the word '{word}'?",
                 f"In '{word}', what is letter number {n}?"]
    work = f"'{word}' spelled out: {' '.join(word[:n])}; letter {n} is {word[n - 1]}"
    return Part(f"letter:{word}:{n}", rng.choice(nouns), rng.choice(questions), f"find the {nth} letter of '{word}'", work, word[n - 1])


def count(rng: random.Random) -> Part:
    word = rng.choice(WORDS)
    if rng.random() < 0.5:
        found = [c for c in word if c in VOWELS]
        nouns = [f"the number of vowels in '{word}'", f"how many vowels '{word}' has"]
        questions = [f"How many vowels are in '{word}'?", f"Count the vowels in '{word}'.", f"How many vowels does '{word}' have?"]
        task, key, what = f"count the vowels in '{word}'", f"vowels:{word}", "vowels"
    else:
        found = list(word)
        nouns = [f"the number of letters in '{word}'", f"the length of the word '{word}'"]
        questions = [f"How many letters are in '{word}'?", f"How long is the word '{word}', in letters?",
                     f"Count the letters of '{word}'."]
        task, key, what = f"count the letters of '{word}'", f"letters:{word}", "letters"
    work = f"'{word}' has {what} {' '.join(found)}: {len(found)}"
    return Part(f"count:{key}", rng.choice(nouns), rng.choice(questions), task, work, str(len(found)))


KINDS = {"arithmetic": arithmetic, "rate": rate, "conversion": conversion, "letter": letter, "count": count}


def draw(rng: random.Random, kinds: tuple[str, ...] = tuple(KINDS)) -> Part:
    """One question of a kind drawn from `kinds`."""
    return KINDS[rng.choice(kinds)](rng)
