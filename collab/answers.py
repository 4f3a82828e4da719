"""Final-answer extraction and comparison. Equivalence of math answers uses math-verify."""

from __future__ import annotations

import math

import re
from collections import Counter

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_CODE = re.compile(r"```[^\n]*\n(.*?)```", re.S)


def boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, braces balanced."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j].strip()
    return None


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def last_code_block(text: str) -> str | None:
    found = _CODE.findall(text)
    return found[-1] if found else None


KINDS = ("auto", "boxed", "number", "code")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; valid kinds are {', '.join(repr(k) for k in KINDS)}")


def extract(text: str | None, kind: str = "auto") -> str | None:
    """kind: "boxed", "number", "code", or "auto" (boxed, else the last number)."""
    check_kind(kind)
    if not text:
        return None
    if kind == "boxed":
        return boxed(text)
    if kind == "number":
        return last_number(text)
    if kind == "code":
        return last_code_block(text)
    return boxed(text) or last_number(text)


def equivalent(a: str | None, b: str | None) -> bool:
    """Math-aware equality (1/2 == 0.5 == \\frac{1}{2}) through math-verify, else exact text."""
    if a is None or b is None:
        return False
    if a.strip() == b.strip():
        return True
    try:
        from math_verify import parse, verify

        return bool(verify(parse(_as_math(a)), parse(_as_math(b))))
    except Exception:  # math-verify could not parse one side: they are not shown equal
        return False


def _as_math(s: str) -> str:
    return s if "\\" in s or "$" in s else f"${s}$"


def majority(answers: list[str | None]) -> str | None:
    """The most common answer up to equivalence; ties go to the earliest."""
    groups: list[list[str]] = []
    for a in answers:
        if a is None:
            continue
        for g in groups:
            if equivalent(g[0], a):
                g.append(a)
                break
        else:
            groups.append([a])
    if not groups:
        return None
    counts = Counter({i: len(g) for i, g in enumerate(groups)})
    best = max(counts.values())
    return groups[min(i for i, c in counts.items() if c == best)][0]


def score(scorer, arg) -> float:
    """`scorer(arg)` as a float (numpy and torch scalars count as the numbers they hold); a
    bool, a non-number, NaN or an infinity is refused with a TypeError."""
    from .options import _number

    value = _number(scorer(arg))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"scorer must return a finite number, got {value!r}")
    return float(value)
