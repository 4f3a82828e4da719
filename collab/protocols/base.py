"""What a protocol is: a parser from a worker's text to actions, plus how children are laid out.
Pure Python, no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpawnMark:
    heads: tuple[str, ...]  # text at the head of each child's block, in order
    wait: bool  # the parent pauses until these children are done, then joins them
    fresh: bool = False  # each child starts from a fresh context (the prompt's BOS, then its
    # head; APR's sub-searches), not from its parent's view
    key: str | None = None  # the protocol's name for a single child, so that a `Wait` can name it


@dataclass(frozen=True, slots=True)
class JoinLayout:
    """How a parent takes in its children, as its reference engine builds the parent's context.

    Text already in the cache is reached by views, never fed again: `keep` characters of the
    parent's current block stay in its view (None: all of it), the children in `show` are placed
    after it (None: every child), each without its first `skip` characters (rounded down to
    whole tokens; Multiverse and ThreadWeaver drop the newline that heads every path after the
    first), and only `text` is fed, at the head of the parent's next block.
    """

    text: str = ""
    keep: int | None = None
    show: tuple[bool, ...] | None = None
    skip: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class WaitMark:
    """The parent pauses until its children are done, then joins them: all of them, or only
    those named in `keys` (an asynchronous join: the others keep running)."""

    keys: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DoneMark:
    marker: str
    after: int = 0  # tokens the worker still samples (and keeps) after the marker (Multiverse: 1)


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


Action = SpawnMark | WaitMark | DoneMark | Malformed

MAX_OPEN_CHARS = 600  # an opened tag left unclosed this long is malformed: plain text


class Protocol:
    """A marker format. Subclasses set the class attributes and implement `scan`.

    layout: where joined children sit in the parent's view: "contiguous" (one after another) or
        "overlap" (all at the position where the first starts, as Multiverse and ParaThinker
        train them); the parent continues after the longest.
    siblings_visible: children of one parent see each other's live blocks under "full".
    join_head: text fed at the head of the parent's new block when it joins its children (the
        default `join`; protocols whose engines rebuild the parent's context override `join`).
    prompt: file in prompts/ that explains the format to an instruct model (system prompt).
    """

    name = "base"
    layout = "contiguous"
    siblings_visible = False
    join_head = "\n"
    prompt: str | None = None
    max_open: int | None = MAX_OPEN_CHARS  # characters an opened marker may stay unclosed (None: no bound)
    limits: dict = {}  # default `Limits` fields for this format (what its trained models do)

    def enough(self, ended: int, children: int) -> bool:
        """Whether `ended` of a parent's `children` ending ends the rest (they are cut)."""
        return ended >= children

    def join(self, block: str, children: list[str], memo: dict) -> JoinLayout:
        """The parent's context after a join, from the text of its current block (what it fed
        and wrote since its last join) and each joined child's whole text (head included)."""
        return JoinLayout(self.join_head)

    def start(self, workers: int) -> tuple[str, ...]:
        """Heads of children each root spawns before generating (ParaThinker's paths)."""
        return ()

    def scan(self, text: str, start: int, child: bool, memo: dict) -> tuple[list[Action], int]:
        """Actions in `text[start:]` (a worker's generated text) and the new cursor. A marker
        that may still be incomplete is left unconsumed; it is seen again next step."""
        raise NotImplementedError


def scan_tags(text: str, start: int, rules: list[tuple[re.Pattern, object]], opener: re.Pattern | None,
              max_open: int | None = MAX_OPEN_CHARS):
    """Match `rules` (pattern, handler(match) -> list[Action]) left to right from `start`.
    `opener` is the start of a multi-part marker: once seen, scanning waits for its end; a marker
    not closed within `max_open` characters of its opener is malformed (None: it may stay open)."""
    max_open = float("inf") if max_open is None else max_open
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
            if close is None and len(text) - o.start() < max_open:
                return actions, o.start()  # still open: look again when more text arrives
            if close is None or close - o.start() > max_open:
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


OUTLINE_ID = re.compile(r"<Outline>\s*([0-9]+(?:\.[0-9]+)*)\s*:")  # Multiverse's and ThreadWeaver's engines
