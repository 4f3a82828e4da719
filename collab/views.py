"""Views and visibility policies. Pure Python, no torch.

A *view* is what one worker's next token is conditioned on: an ordered list of *segments* (a
visible prefix of some block, placed at an offset) followed by the worker's own current block.
The plain model run on the view's tokens at those positions gives the same logits as collab,
because keys are stored at block-local positions and every query is rotated by
(own offset - segment offset) for each segment it attends to.

Each worker has:
- a *base*: the context it started from, with fixed offsets (roots: the prompt; a spawned
  worker: its parent's view up to the spawn point, or only the prompt, per protocol);
- a *trail*: its own finished blocks and the blocks of children it joined, in order, with
  offsets relative to the end of its base;
- its current block, after the trail.
A visibility policy adds the *live* blocks of the worker's peers (workers of the same group:
the roots, or the children of one parent) between the base and the worker's own part.
Offsets are data: two segments may overlap (parallel paths that start at one position).
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
    segments: tuple[Segment, ...]  # everything visible besides the own current block, in view order
    own_offset: int  # view position of the own current block's token 0

    def with_prefix(self, block: int, length: int) -> tuple[Segment, ...]:
        """This view's segments plus the first `length` tokens of its own block: what a worker
        spawned from it now inherits."""
        own = (Segment(block, length, self.own_offset),) if length > 0 else ()
        return self.segments + own


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What a policy needs to know of one worker before a step."""

    index: int
    block: int  # current block
    length: int  # tokens of the current block fed before this step
    base: tuple[Segment, ...]  # fixed context, absolute offsets
    trail: tuple[Segment, ...] = ()  # own finished blocks and joined children, offsets from 0
    group: int = -1  # peers see each other's live blocks under "full"

    @property
    def base_end(self) -> int:
        return max((s.offset + s.length for s in self.base), default=0)

    @property
    def trail_span(self) -> int:
        return max((s.offset + s.length for s in self.trail), default=0)

    def live(self) -> list[tuple[int, int]]:
        """(block, length) of what peers see of this worker: its trail blocks, then its current one."""
        return [(s.block, s.length) for s in self.trail] + [(self.block, self.length)]


def _stack(segments: list[tuple[int, int]], start: int) -> tuple[list[Segment], int]:
    """Place (block, length) pairs one after another from `start`; drop empty ones."""
    out, offset = [], start
    for block, length in segments:
        if length > 0:
            out.append(Segment(block, length, offset))
            offset += length
    return out, offset


def _own(w: WorkerState, start: int) -> View:
    trail = tuple(Segment(s.block, s.length, start + s.offset) for s in w.trail if s.length > 0)
    return trail, start + w.trail_span


def _view(w: WorkerState, peers: list[WorkerState]) -> View:
    live = [pair for p in peers for pair in p.live()]
    stacked, start = _stack(live, w.base_end)
    trail, own_offset = _own(w, start)
    return View((*w.base, *stacked, *trail), own_offset)


def full_views(workers: list[WorkerState]) -> dict[int, View]:
    """[base] + [every peer's live blocks, ascending index] + [own trail] + [own current block]."""
    return {
        w.index: _view(w, [p for p in workers if p.group == w.group and p.index != w.index]) for w in workers
    }


def none_views(workers: list[WorkerState]) -> dict[int, View]:
    """[base] + [own trail] + [own current block]: independent sampling."""
    return {w.index: _view(w, []) for w in workers}


POLICIES: dict[str, Callable[[list[WorkerState]], dict[int, View]]] = {
    "full": full_views,
    "none": none_views,
}


def resolve_visibility(name: str) -> Callable[[list[WorkerState]], dict[int, View]]:
    if not isinstance(name, str) or name not in POLICIES:
        valid = ", ".join(repr(k) for k in POLICIES)
        raise ValueError(f"unknown visibility {name!r}; valid visibilities are {valid}")
    return POLICIES[name]
