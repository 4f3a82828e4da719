"""What one step hands from the scheduler to the model runner, and back. Plain data, no torch.

    batch = scheduler.schedule()      # who feeds what, each feeder's view, who samples
    drawn = runner.run(batch)         # one forward, one read-back: the sampled tokens
    scheduler.postprocess(batch, drawn)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .result import Result
from .views import View


@dataclass(slots=True)
class Feed:
    """Tokens one writer feeds this step, already given slots in its block."""

    worker: int  # -1 for the prompt
    block: int
    tokens: list[int]
    pages: list[int]
    offsets: list[int]
    positions: list[int]  # block-local positions


@dataclass(frozen=True, slots=True)
class Move:
    """Copy K/V between arena slots, keys rotated by `delta` positions (a finished reasoning step
    moving into the shared history). Executed in order, before the step's forward."""

    src_pages: list[int]
    src_offsets: list[int]
    dst_pages: list[int]
    dst_offsets: list[int]
    delta: int


PROMPT_ROW = -1  # the key of the prompt's last logits row among the rows a runner keeps


@dataclass(slots=True)
class Batch:
    """One step, chosen once: it does not change after `schedule` returns it."""

    step: int
    feeds: list[Feed] = field(default_factory=list)
    views: dict[int, View] = field(default_factory=dict)  # each feeder's (and drawer's) view before the step
    sample: list[int] = field(default_factory=list)  # workers that sample from the logits at their feed's end
    draws: dict[int, int] = field(default_factory=dict)  # worker -> kept row it samples its first token from
    keep: list[int] = field(default_factory=list)  # workers (feeding, not sampling) whose logits row the runner keeps
    moves: list[Move] = field(default_factory=list)  # executed before the forward
    drop: list[int] = field(default_factory=list)  # kept rows no longer needed
    contexts: dict[int, list[int]] | None = None  # worker -> prompt + its own tokens, for logits processors


@dataclass(slots=True)
class Drawn:
    """What the runner sampled: a token per sampling worker and, with `output_logits`, the fp32
    logits row it was drawn from (opaque to the scheduler: it only files them)."""

    tokens: dict[int, int]
    rows: dict[int, Any] | None = None


@dataclass(slots=True)
class StepUpdate:
    """Passed to `callback` after every step: the tokens each worker sampled in it."""

    step: int
    tokens: dict[int, int]  # worker index -> sampled token id
    result: Result
