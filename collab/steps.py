"""End-of-step detection: where one reasoning step of a worker's text ends. Pure Python.

By default a step ends at a paragraph break (a blank line) that follows the end of a sentence
(`.`, `!`, `?`, `:` or a closing bracket/quote after one), never inside an open code block
(```) or display math ($$ ... $$ or \\[ ... \\]). A custom `is_end(text_before_the_break) -> bool`
may replace the rule (`collab.generate(..., step_end=...)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"""[.!?:][)\]"'*_]*\s*$""")


def _open_fences(text: str) -> bool:
    """True if text ends inside a code block or display math."""
    if text.count("```") % 2:
        return True
    if text.count("$$") % 2:
        return True
    return text.count("\\[") > text.count("\\]")


def default_is_end(before: str) -> bool:
    return bool(_SENTENCE_END.search(before)) and not _open_fences(before)


@dataclass(slots=True)
class StepDetector:
    """Counts step ends in a growing text; `feed` returns the character offsets of new ones."""

    is_end: Callable[[str], bool] = default_is_end
    scanned: int = 0
    ends: list[int] = field(default_factory=list)

    def feed(self, text: str) -> list[int]:
        new = []
        for m in _BREAK.finditer(text, max(0, self.scanned - 2)):
            if m.end() <= self.scanned:
                continue
            if m.end() == len(text):  # the break may still grow; decide when more text arrives
                break
            if self.is_end(text[: m.start()]):
                new.append(m.end())
            self.scanned = m.end()
        else:
            self.scanned = max(self.scanned, len(text) - 2)
        self.ends += new
        return new


_BREAK_AT_END = re.compile(r"\n[ \t]*\n[ \t]*$")


def ends_at_break(text: str, is_end: Callable[[str], bool] = default_is_end) -> bool:
    """True if `text` ends with a paragraph break that ends a step (search nodes stop here; a
    longer break would only start the next step with blank space)."""
    m = _BREAK_AT_END.search(text)
    return m is not None and is_end(text[: m.start()])
