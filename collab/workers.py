"""A worker's place in a run: its phase (one explicit state machine), its blocks and what it
still has to feed. Pure Python, no torch.

    ACTIVE --wait--> WAITING --join--> ACTIVE
    ACTIVE --step end (search)--> PAUSED
    any --retire--> DONE

The controller tracks the same phases for the workers it reads (`ProtocolState.state`), in the
same vocabulary. A worker that is not ACTIVE but still holds pending tokens feeds them without sampling (its last
token, which a later reader needs in its block, or a judge's prompt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .blocks import BlockTable
from .detokenize import Detokenizer
from .repeats import Repeats
from .result import Worker
from .steps import StepDetector
from .views import Segment, end


class Phase(str, Enum):
    ACTIVE = "active"  # feeds its pending tokens and samples the next one
    WAITING = "waiting"  # waits for its children; joins them once their last tokens are fed
    PAUSED = "paused"  # a search node between rounds: fed, its logits row kept; forked or retired next
    DONE = "done"  # retired


MOVES = {
    Phase.ACTIVE: {Phase.WAITING, Phase.PAUSED, Phase.DONE},
    Phase.WAITING: {Phase.ACTIVE, Phase.DONE},
    Phase.PAUSED: {Phase.DONE},
    Phase.DONE: set(),
}

# Groups: workers of one group see each other's live blocks (as the visibility allows).
ROOTS = "roots"
FINISHER = "finisher"


def children_of(parent: int) -> str:
    """Siblings that see each other: the helpers of one parent."""
    return f"children of {parent}"


def alone(index: int) -> str:
    """A group of one: a fork, a judge, or a helper blind to its siblings."""
    return f"alone {index}"


@dataclass(slots=True)
class Slot:
    """A worker's runtime state beside its public `Worker` record."""

    worker: Worker
    block: int  # current block
    base: tuple[Segment, ...]  # fixed context, absolute offsets
    group: str
    pending: list[int]  # tokens to feed next
    own: list[int] = field(default_factory=list)  # every token fed into its own blocks, for logits processors
    trail: tuple[Segment, ...] = ()  # own finished blocks and joined children, offsets from 0
    phase: Phase = Phase.ACTIVE
    ready_step: int = 0  # first step it may feed in
    budget: int = 0  # tokens it may sample
    join: tuple | None = None  # (children, retire reason or None) to join once their last tokens are fed
    controlled: bool = True  # read by the controller (the finisher, forks and judges are not)
    absorbed: bool = False  # joined into its parent's view
    steps: StepDetector = field(default_factory=StepDetector)  # ends of reasoning steps in its text
    reader: Detokenizer | None = None  # its text, decoded a few tokens at a time
    gen_start: int = 0  # index in worker.token_ids of the current block's first sampled token
    head_len: int = 0  # tokens before it in the current block (the header of a first block)
    stop_at: tuple[int, str] | None = None  # (tokens sampled, reason): it stops once it has sampled that many
    keep: bool = False  # the runner keeps the logits row of its next feed (a paused node, a judge)
    row: int | None = None  # key of its kept row in the runner, while it may be forked
    repeats: Repeats | None = None  # the loop stop rule over its sampled tokens (stop_repeats)

    @property
    def index(self) -> int:
        return self.worker.index

    @property
    def flushing(self) -> bool:
        """Feeds its pending tokens without sampling."""
        return bool(self.pending) and self.phase is not Phase.ACTIVE

    def to(self, phase: Phase) -> None:
        if phase is not self.phase and phase not in MOVES[self.phase]:
            raise RuntimeError(f"worker {self.index}: no move from {self.phase.value} to {phase.value}")
        self.phase = phase

    def span(self, table: BlockTable) -> tuple[Segment, ...]:
        """Trail plus current block, offsets from 0: what a joining parent places."""
        current = Segment(self.block, table.blocks[self.block].length, end(self.trail))
        return self.trail + (current,)
