"""Views and visibility policies. Pure Python, no torch.

A *view* is what one worker's next token is conditioned on: an ordered list of *segments* (a
visible prefix of some block, placed at an offset) followed by the worker's own block. The plain
model run on the concatenation of the segments' tokens and the own tokens gives the same logits
as collab does, because keys are stored at block-local positions and every query is rotated by
(own offset - segment offset) for each segment it attends to.

A visibility policy maps the state before a step (each live block's length) to one view per
worker that feeds tokens this step. Offsets are data: two segments may even overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True, slots=True)
class Segment:
    block: int  # block id
    length: int  # tokens of the block visible (a prefix)
    offset: int  # view position of the block's token 0


@dataclass(frozen=True, slots=True)
class View:
    segments: tuple[Segment, ...]  # everything visible besides the own block, in view order
    own_offset: int  # view position of the own block's token 0

    @property
    def length(self) -> int:
        """Tokens before the own block (the own block's tokens follow from own_offset on)."""
        return max((s.offset + s.length for s in self.segments), default=0)


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What a policy needs to know of one worker before a step."""

    index: int
    block: int
    length: int  # tokens of its block fed before this step


def _stack(segments: list[tuple[int, int]], start: int) -> tuple[list[Segment], int]:
    """Place (block, length) pairs one after another from `start`; drop empty ones."""
    out, offset = [], start
    for block, length in segments:
        if length > 0:
            out.append(Segment(block, length, offset))
            offset += length
    return out, offset


def full_views(prompt: Segment, workers: list[WorkerState]) -> dict[int, View]:
    """[prompt] + [every other worker's fed tokens, ascending index] + [own]."""
    views = {}
    for w in workers:
        others = [(o.block, o.length) for o in workers if o.index != w.index]
        segments, own = _stack(others, prompt.offset + prompt.length)
        views[w.index] = View((prompt, *segments), own)
    return views


def none_views(prompt: Segment, workers: list[WorkerState]) -> dict[int, View]:
    """[prompt] + [own]: independent sampling."""
    return {w.index: View((prompt,), prompt.offset + prompt.length) for w in workers}


POLICIES: dict[str, Callable[[Segment, list[WorkerState]], dict[int, View]]] = {
    "full": full_views,
    "none": none_views,
}


def resolve_visibility(name: str) -> Callable[[Segment, list[WorkerState]], dict[int, View]]:
    if not isinstance(name, str) or name not in POLICIES:
        valid = ", ".join(repr(k) for k in POLICIES)
        raise ValueError(f"unknown visibility {name!r}; valid visibilities are {valid}")
    return POLICIES[name]
