"""Single-step questions, each with a worked solution written out step by step (columns with
carries and borrows, place values, letters numbered) so a small model can follow it: arithmetic, distance and time at a
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
    work: str  # its worked solution, step by step, ending with the answer: "17*24: 10*20 = 200, ...; so 408"
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


def column_add(a: int, b: int) -> str:
    """Column addition, ones first, each carry shown, the digits read off at the end:
    '289 + 573: 9+3 = 12 (2, carry 1), 8+7+1 = 16 (6, carry 1), 2+5+1 = 8; digits 8 6 2: 862'."""
    xs, ys, steps, digits, carry = str(a)[::-1], str(b)[::-1], [], [], 0
    for i in range(max(len(xs), len(ys))):
        x, y = int(xs[i]) if i < len(xs) else 0, int(ys[i]) if i < len(ys) else 0
        total = x + y + carry
        expr = f"{x}+{y}" + ("+1" if carry else "") + f" = {total}"
        carry, digit = divmod(total, 10)
        steps.append(expr + (f" ({digit}, carry 1)" if carry else ""))
        digits.append(digit)
    digits += [carry] if carry else []
    return f"{a} + {b}: {', '.join(steps)}; digits {' '.join(map(str, digits[::-1]))}: {a + b}"


def column_subtract(a: int, b: int) -> str:
    """Column subtraction (a > b), ones first, each borrow shown:
    '302 - 57: 12-7 = 5 (borrow 1), 10-5-1 = 4 (borrow 1), 3-0-1 = 2; digits 2 4 5: 245'."""
    xs, ys, steps, digits, borrow = str(a)[::-1], str(b)[::-1], [], [], 0
    for i in range(len(xs)):
        x, y = int(xs[i]), int(ys[i]) if i < len(ys) else 0
        lend = x - y - borrow < 0
        top = x + 10 * lend
        digit = top - y - borrow
        steps.append(f"{top}-{y}" + ("-1" if borrow else "") + f" = {digit}" + (" (borrow 1)" if lend else ""))
        digits.append(digit)
        borrow = int(lend)
    return f"{a} - {b}: {', '.join(steps)}; digits {' '.join(map(str, digits[::-1]))}: {a - b}"


def _places(n: int) -> list[int]:
    """n as its nonzero place values, largest first: 407 -> [400, 7]."""
    s = str(n)
    return [int(d) * 10 ** (len(s) - 1 - i) for i, d in enumerate(s) if d != "0"] or [0]


def times(a: int, b: int) -> str:
    """a*b by place values, the partial products summed one at a time:
    '87*26: 80*20 = 1600, 80*6 = 480, 7*20 = 140, 7*6 = 42; 1600 + 480 = 2080, 2080 + 140 = 2220, 2220 + 42 = 2262'."""
    products = [(x, y, x * y) for x in _places(a) for y in _places(b)]
    if len(products) == 1:
        return f"{a}*{b} = {a * b}"
    sums, total = [], products[0][2]
    for _, _, p in products[1:]:
        sums.append(f"{total} + {p} = {total + p}")
        total += p
    return f"{a}*{b}: {', '.join(f'{x}*{y} = {p}' for x, y, p in products)}; {', '.join(sums)}"


def divide(a: int, b: int) -> str:
    """a / b (exact, quotient < 100) by the tens of the quotient, then its ones:
    '338 / 13: 13*20 = 260, 338 - 260 = 78; 13*6 = 78; 20 + 6 = 26'."""
    q = a // b
    tens, ones = q - q % 10, q % 10
    if not tens or not ones:
        return f"{a} / {b}: {b}*{q} = {a}; so {q}"
    rest = a - b * tens
    return f"{a} / {b}: {b}*{tens} = {b * tens}, {a} - {b * tens} = {rest}; {b}*{ones} = {rest}; {tens} + {ones} = {q}"


def arithmetic(rng: random.Random) -> Part:
    op = rng.choice("+-*/")
    if op == "+":
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        r, nouns, work = a + b, [f"{a} + {b}", f"the sum of {a} and {b}", f"{a} plus {b}"], column_add(a, b)
        questions = [f"What is {a} + {b}?", f"What is {a} plus {b}?", f"Compute {a} + {b}.", f"How much is {a} + {b}?"]
    elif op == "-":
        a = rng.randint(100, 999)
        b = rng.randint(10, a - 1)
        r, nouns, work = a - b, [f"{a} - {b}", f"{a} minus {b}", f"the difference between {a} and {b}"], column_subtract(a, b)
        questions = [f"What is {a} - {b}?", f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"How much is {a} - {b}?"]
    elif op == "*":
        a, b = rng.randint(11, 99), rng.randint(2, 29)
        r, nouns = a * b, [f"{a}*{b}", f"{a} times {b}", f"the product of {a} and {b}"]
        work = f"{times(a, b)}; so {r}"
        questions = [f"What is {a} * {b}?", f"What is {a} times {b}?", f"Multiply {a} by {b}.", f"Compute {a}*{b}."]
    else:
        b, r = rng.randint(2, 19), rng.randint(2, 49)
        a = b * r
        nouns = [f"{a} / {b}", f"{a} divided by {b}", f"the quotient of {a} and {b}"]
        work = divide(a, b)
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
        how, answer, work = "far", km, f"{speed} km/h for {hours} h: {times(speed, hours)}; so {km} km"
        task = f"distance of a {vehicle} at {speed} km/h for {hours} h"
    else:  # how long
        nouns = [f"the hours a {vehicle} needs for {km} km at {speed} km/h",
                 f"how many hours a {vehicle} takes to cover {km} km at {speed} km/h"]
        questions = [f"How many hours does a {vehicle} need to cover {km} km at {speed} km/h?",
                     f"A {vehicle} goes {speed} km/h. How long, in hours, does {km} km take?",
                     f"At {speed} km/h, how many hours does a {vehicle} take for {km} km?"]
        how, answer = "long", hours
        work = f"{km} km at {speed} km/h: {speed}*{hours - 1} = {speed * (hours - 1)}, {speed}*{hours} = {km}; so {hours} h"
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
    work = f"1 {big[:-1]} = {factor} {small}; {times(n, factor)}; so {n * factor} {small}"
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
    work = f"'{word}': {' '.join(f'{c}={i}' for i, c in enumerate(word[:n], 1))}; letter {n} is {word[n - 1]}"
    return Part(f"letter:{word}:{n}", rng.choice(nouns), rng.choice(questions), f"find the {nth} letter of '{word}'", work, word[n - 1])


def count(rng: random.Random) -> Part:
    word = rng.choice(WORDS)
    if rng.random() < 0.5:
        found = [c for c in word if c in VOWELS]
        nouns = [f"the number of vowels in '{word}'", f"how many vowels '{word}' has"]
        questions = [f"How many vowels are in '{word}'?", f"Count the vowels in '{word}'.", f"How many vowels does '{word}' have?"]
        task, key = f"count the vowels in '{word}'", f"vowels:{word}"
        work = f"'{word}' spelled {' '.join(word)}; vowels {' '.join(f'{c}={i}' for i, c in enumerate(found, 1))}; {len(found)} vowels"
    else:
        found = list(word)
        nouns = [f"the number of letters in '{word}'", f"the length of the word '{word}'"]
        questions = [f"How many letters are in '{word}'?", f"How long is the word '{word}', in letters?",
                     f"Count the letters of '{word}'."]
        task, key = f"count the letters of '{word}'", f"letters:{word}"
        work = f"'{word}': {' '.join(f'{c}={i}' for i, c in enumerate(found, 1))}; {len(found)} letters"
    return Part(f"count:{key}", rng.choice(nouns), rng.choice(questions), task, work, str(len(found)))


KINDS = {"arithmetic": arithmetic, "rate": rate, "conversion": conversion, "letter": letter, "count": count}


def draw(rng: random.Random, kinds: tuple[str, ...] = tuple(KINDS)) -> Part:
    """One question of a kind drawn from `kinds`."""
    return KINDS[rng.choice(kinds)](rng)
