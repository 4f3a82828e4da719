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


@dataclass(frozen=True, slots=True)
class Segment:
    block: int  # block id
    length: int  # tokens of the block visible: tokens start .. start + length - 1
    offset: int  # view position of the block's token `start`
    start: int = 0  # first visible token (a joining parent may skip a child's first tokens)


@dataclass(frozen=True, slots=True)
class View:
    segments: tuple[Segment, ...]  # everything visible besides the own current block, in view order
    own_offset: int  # view position of the own current block's token 0

    def with_prefix(self, block: int, length: int) -> tuple[Segment, ...]:
        """This view's segments plus the first `length` tokens of its own block: what a worker
        spawned from it now inherits."""
        own = (Segment(block, length, self.own_offset),) if length > 0 else ()
        return self.segments + own


def end(segments) -> int:
    """The first view position after `segments`."""
    return max((s.offset + s.length for s in segments), default=0)


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What a policy needs to know of one worker before a step."""

    index: int
    block: int  # current block
    length: int  # tokens of the current block fed before this step
    base: tuple[Segment, ...]  # fixed context, absolute offsets
    trail: tuple[Segment, ...] = ()  # own finished blocks and joined children, offsets from 0
    group: int = -1  # peers see each other's live blocks
    shown: int | None = None  # tokens of the current block peers may see (lag); None: all

    @property
    def base_end(self) -> int:
        return end(self.base)

    @property
    def trail_span(self) -> int:
        return end(self.trail)

    def live(self) -> list[tuple[int, int, int]]:
        """(block, length, start) of what peers see of this worker: its trail, then its current block."""
        shown = self.length if self.shown is None else self.shown
        return [(s.block, s.length, s.start) for s in self.trail] + [(self.block, shown, 0)]


def _stack(segments: list[tuple[int, int, int]], start: int) -> tuple[list[Segment], int]:
    """Place (block, length, first token) triples one after another from `start`; drop empty ones."""
    out, offset = [], start
    for block, length, first in segments:
        if length > 0:
            out.append(Segment(block, length, offset, first))
            offset += length
    return out, offset


def _view(w: WorkerState, peers: list[WorkerState], shared: Segment | None = None) -> View:
    """[base] + [shared history] + [peers' live blocks] + [own trail] + [own current block].

    A block is placed at most once: the step plan gives each block one offset per worker. A
    block the base already holds stays where the base placed it: the history in a finisher's
    base, a sibling its parent joined before this worker was spawned."""
    start = w.base_end
    head = list(w.base)
    placed = {s.block for s in head} | {s.block for s in w.trail} | {w.block}
    if shared is not None and shared.length > 0 and shared.block not in placed:
        head.append(Segment(shared.block, shared.length, start))
        start += shared.length
    stacked, start = _stack([pair for p in peers for pair in p.live() if pair[0] not in placed], start)
    trail = [Segment(s.block, s.length, start + s.offset, s.start) for s in w.trail if s.length > 0]
    return View((*head, *stacked, *trail), start + w.trail_span)


class Policy:
    """Maps the workers' states (and the shared history, for step-wise policies) to views."""

    name = "policy"
    history = False  # finished steps move into one shared history block
    lag = 0  # peers' tokens become visible this many steps after they are fed
    same_step = False  # peers' tokens are visible in the very step they are fed (Hogwild!'s timing)

    def sees(self, i: int, j: int, step: int) -> bool:
        return True

    def __call__(self, workers: list[WorkerState], shared: Segment | None = None, step: int = 0) -> dict[int, View]:
        return {
            w.index: _view(
                w, [p for p in workers if p.group == w.group and p.index != w.index and self.sees(w.index, p.index, step)]
            )
            for w in workers
        }

    def __repr__(self) -> str:
        return self.name


class Full(Policy):
    """[base] + [every peer's fed tokens, ascending index] + [own]."""

    name = "full"


class Independent(Policy):
    """[base] + [own]: independent sampling."""

    name = "none"

    def sees(self, i, j, step):
        return False


class Lagged(Policy):
    """Like full, but a peer's tokens become visible `lag` steps after they are fed."""

    def __init__(self, lag: int):
        self.lag, self.name = lag, f"lag:{lag}"


class Stepwise(Policy):
    """[prompt] + [shared history of finished steps, in finish order] + [own current step];
    with `live_peers` (combined), the peers' steps in progress come before the own step."""

    history = True

    def __init__(self, live_peers: bool):
        self.live_peers, self.name = live_peers, "combined" if live_peers else "step"

    def __call__(self, workers, shared=None, step=0):
        return {
            w.index: _view(w, [p for p in workers if self.live_peers and p.index != w.index and p.group == w.group], shared)
            for w in workers
        }


class Custom(Policy):
    """Who sees whom from a boolean matrix (`matrix[i][j]`: worker i sees worker j) or a
    callable `sees(i, j, step) -> bool`; seen workers' live blocks stack in ascending index.
    A matrix is sized for the roots: helpers a protocol spawns see their siblings as under
    "full" (whether siblings are peers at all is the protocol's choice)."""

    name = "custom"

    def __init__(self, rule):
        self.rule = rule

    def sees(self, i, j, step):
        if callable(self.rule):
            return bool(self.rule(i, j, step))
        if max(i, j) >= len(self.rule):  # helpers a protocol spawned: the matrix covers the roots
            return True
        return bool(self.rule[i][j])


NAMES = ("full", "none", "step", "combined", "lag:K", "full:same_step", "combined:same_step", "step:same_step")
SAME_STEP = ":same_step"


def same_step(policy: Policy) -> Policy:
    """`policy` with Hogwild!'s timing: each worker also sees what its visible peers feed in the
    same step (their K/V are written before anyone attends)."""
    policy.same_step, policy.name = True, policy.name + SAME_STEP
    return policy


def resolve_visibility(spec, workers: int | None = None) -> Policy:
    """A policy from a name, "lag:K", a boolean matrix [workers][workers], or a callable."""
    if isinstance(spec, Policy):
        return spec
    if callable(spec):
        return Custom(spec)
    if isinstance(spec, (list, tuple)):
        return Custom(_check_matrix(spec, workers))
    if isinstance(spec, str):
        if spec.endswith(SAME_STEP) and spec[: -len(SAME_STEP)] in ("full", "step", "combined"):
            return same_step(resolve_visibility(spec[: -len(SAME_STEP)]))
        if spec == "full":
            return Full()
        if spec == "none":
            return Independent()
        if spec in ("step", "combined"):
            return Stepwise(live_peers=spec == "combined")
        if spec.startswith("lag:"):
            k = spec[4:]
            if not k.lstrip("-").isdigit():
                raise ValueError(f"visibility {spec!r}: K in 'lag:K' must be an integer number of steps, e.g. 'lag:2'")
            if int(k) < 0:
                raise ValueError(f"visibility {spec!r}: K must be >= 0 (lag:0 is full visibility)")
            return Lagged(int(k))
    valid = ", ".join(repr(k) for k in NAMES)
    raise ValueError(
        f"unknown visibility {spec!r}; valid visibilities are {valid}, a boolean matrix [workers][workers], "
        "or a callable sees(i, j, step) -> bool"
    )


def _check_matrix(matrix, workers: int | None):
    rows = len(matrix)
    if workers is not None and rows != workers:
        raise ValueError(f"visibility matrix has {rows} rows for {workers} workers: it must be {workers} x {workers}")
    for i, row in enumerate(matrix):
        if not isinstance(row, (list, tuple)) or len(row) != rows:
            raise ValueError(f"visibility matrix row {i} has {len(row) if isinstance(row, (list, tuple)) else 'no'} entries: it must be {rows} x {rows}")
        for j, value in enumerate(row):
            if not isinstance(value, bool) and value not in (0, 1):
                raise ValueError(f"visibility matrix[{i}][{j}] is {value!r}: entries must be True/False")
    return [[bool(v) for v in row] for row in matrix]


def full_views(workers: list[WorkerState]) -> dict[int, View]:
    return Full()(workers)


def none_views(workers: list[WorkerState]) -> dict[int, View]:
    return Independent()(workers)
