"""What a protocol is: a parser from a worker's text to actions, plus how children are laid out.
Pure Python, no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spawn:
    heads: tuple[str, ...]  # text at the head of each child's block, in order
    wait: bool  # the parent pauses until these children are done, then joins them


@dataclass(frozen=True, slots=True)
class Wait:
    """The parent pauses until all its children are done, then joins them."""


@dataclass(frozen=True, slots=True)
class Done:
    marker: str


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


Action = Spawn | Wait | Done | Malformed

MAX_OPEN_CHARS = 600  # an opened tag left unclosed this long is malformed: plain text


class Protocol:
    """A marker format. Subclasses set the class attributes and implement `scan`.

    layout: where joined children sit in the parent's view: "contiguous" (one after another) or
        "overlap" (all at the position where the first starts, as Multiverse and ParaThinker
        train them); the parent continues after the longest.
    context: what a child sees before its own block: "fork" (its parent's view up to and
        including the spawning marker) or "prompt" (only the prompt, as APR's sub-searches).
    siblings_visible: children of one parent see each other's live blocks under "full".
    join_head: text fed at the head of the parent's new block when it joins its children.
    prompt: file in prompts/ that explains the format to an instruct model (system prompt).
    """

    name = "base"
    layout = "contiguous"
    context = "fork"
    siblings_visible = False
    join_head = "\n"
    prompt: str | None = None

    def start(self, workers: int) -> tuple[str, ...]:
        """Heads of children each root spawns before generating (ParaThinker's paths)."""
        return ()

    def scan(self, text: str, start: int, child: bool, memo: dict) -> tuple[list[Action], int]:
        """Actions in `text[start:]` (a worker's generated text) and the new cursor. A marker
        that may still be incomplete is left unconsumed; it is seen again next step."""
        raise NotImplementedError


def scan_tags(text: str, start: int, rules: list[tuple[re.Pattern, object]], opener: re.Pattern | None):
    """Match `rules` (pattern, handler(match) -> list[Action]) left to right from `start`.
    `opener` is the start of a multi-part marker: once seen, scanning waits for its end; a marker
    not closed within MAX_OPEN_CHARS of its opener is malformed."""
    actions: list[Action] = []
    pos = start
    while True:
        found = [(m, handler) for pattern, handler in rules if (m := pattern.search(text, pos))]
        first = min(found, key=lambda f: f[0].start()) if found else None
        o = opener.search(text, pos) if opener is not None else None
        if o is not None and (first is None or o.start() <= first[0].start()):
            # Judged by where the close lands, not by how the text arrived: the same text gives
            # the same actions however it is split into tokens and steps.
            close = first[0].end() if first is not None and first[0].start() == o.start() else None
            if close is None and len(text) - o.start() < MAX_OPEN_CHARS:
                return actions, o.start()  # still open: look again when more text arrives
            if close is None or close - o.start() > MAX_OPEN_CHARS:
                actions.append(Malformed(f"unclosed {o.group(0)!r} left as plain text"))
                pos = o.end()
                continue
        if first is None:
            return actions, _safe_end(text, pos)
        m, handler = first
        actions.extend(handler(m))
        pos = m.end()


def _safe_end(text: str, pos: int) -> int:
    """Do not consume a trailing '<...' that may be the start of a marker."""
    lt = text.rfind("<", pos)
    return lt if lt != -1 and ">" not in text[lt:] else len(text)


def numbered(items: list[str]) -> list[tuple[str, str]]:
    """'1: do x' -> ('1', 'do x'); unnumbered items get their position."""
    out = []
    for i, item in enumerate(items, 1):
        m = re.match(r"\s*(\d+)\s*[:.)]\s*(.*)", item, re.S)
        out.append((m.group(1), m.group(2).strip()) if m else (str(i), item.strip()))
    return out
