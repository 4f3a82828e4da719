"""What a run returns: workers, events, stats. Plain data, filled in as the run goes, so a run
that is interrupted still has everything generated up to that point."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Event:
    kind: str  # "prefill", "start", "done", "interrupted", "error"
    step: int
    worker: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Stats:
    forward_passes: int = 0
    tokens_fed: int = 0  # prompt + every token fed by a worker (headers included)
    generated_tokens: int = 0  # tokens sampled by workers
    kv_tokens: int = 0  # tokens whose K/V is stored (each once)
    kv_bytes: int = 0  # bytes those tokens take over all layers
    kv_reserved_bytes: int = 0  # bytes the arenas hold (capacity)
    steps: int = 0
    prefill_time_s: float = 0.0
    wall_time_s: float = 0.0
    tokens_per_s: float = 0.0  # generated tokens / wall time
    attention: str = "reference"  # the attention path that ran ("flash (partly visible pages: PyTorch)" when some took it)


@dataclass(slots=True)
class Worker:
    index: int
    name: str
    header_ids: list[int] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)  # sampled tokens, in order
    text: str | None = None
    logits: list | None = None  # one fp32 [vocab] tensor per sampled token, with output_logits
    parent: int | None = None
    depth: int = 0
    head: str | None = None  # a spawned worker's task text, at the head of its block
    role: str = "worker"  # "worker" or "finisher"
    children: list[int] = field(default_factory=list)
    finish_reason: str | None = None  # "eos", "max_new_tokens", "done marker ...", "interrupted", "error", ...
    spawn_step: int = 0
    join_steps: list[int] = field(default_factory=list)
    retire_step: int | None = None
    blocks: list[int] = field(default_factory=list)  # its blocks in order (a new one after each join)
    step_ends: int = 0  # reasoning steps finished (counted when a protocol is active)
    feed_steps: list[int] = field(default_factory=list)  # step at which each of its tokens was fed
    sample_steps: list[int] = field(default_factory=list)  # step whose forward gave each token
    views: list | None = None  # with output_logits: (segments, own block, own offset) per sampled token
    fork_of: tuple[int, int] | None = None  # a fork's first token came from (worker, step)'s logits; -1: the prompt

    @property
    def block_ids(self) -> list[int]:
        """Header plus sampled tokens: a single-block worker's block as fed (the last may be unfed)."""
        return self.header_ids + self.token_ids


@dataclass(slots=True)
class Result:
    prompt_ids: list[int]
    workers: list[Worker]
    events: list[Event] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    seed: int | None = None
    visibility: str = "full"
    complete: bool = False  # False when interrupted or failed: what is here is partial
    blocks: dict[int, list[int]] = field(default_factory=dict)  # block id -> its fed tokens
    answer: str | None = None  # the final answer, when the strategy produces one
    answers: list[str | None] = field(default_factory=list)  # per root worker, when extracted
    scores: list[float] | None = None  # per root worker, with a scorer (best_of_n)
    strategy: str | None = None
    # with output_logits: every feed as (step, worker, block, first local position, tokens,
    # view segments, own offset, sampled); worker -1 is the prompt
    trace: list | None = None
    search: Any = None  # collab.search.SearchTree, for the search strategies

    @property
    def finisher(self) -> Worker | None:
        return next((w for w in self.workers if w.role == "finisher"), None)

    def tree_order(self) -> list[Worker]:
        """Workers depth first from each root, so children sit right under their parent."""
        order: list[Worker] = []

        def visit(w: Worker) -> None:
            order.append(w)
            for c in w.children:
                visit(self.workers[c])

        for w in self.workers:
            if w.parent is None:
                visit(w)
        seen = {w.index for w in order}
        return order + [w for w in self.workers if w.index not in seen]  # never drop a worker

    def tree(self) -> str:
        """The worker tree, one line per worker (depth first): name, steps, finish reason."""
        lines = []
        for w in self.tree_order():
            indent = "  " * w.depth
            joined = f", joined at {w.join_steps}" if w.join_steps else ""
            lines.append(
                f"{indent}{w.name} [{w.role}] spawned at step {w.spawn_step}{joined}, "
                f"retired at {w.retire_step} ({w.finish_reason}), {len(w.token_ids)} tokens"
            )
        return "\n".join(lines)

    @property
    def text(self) -> str:
        """Every worker's text under its name."""
        return "\n\n".join(f"[{w.name}]\n{(w.text or '').strip()}" for w in self.workers)

    def _repr_html_(self) -> str:
        """Jupyter's rich display: a column per worker, the spawn tree, the answer, the stats."""
        from .display import to_html

        return to_html(self)

    def plot(self, path=None):
        """A matplotlib Figure: the timeline of who wrote what when, and tokens per worker (see
        `collab.plots.plot`); saved as a PNG to `path` when given. Needs `pip install collab[plots]`."""
        from .plots import plot

        return plot(self, path)

    def __repr__(self) -> str:
        state = "" if self.complete else ", partial"
        return (
            f"Result(workers={len(self.workers)}, tokens={self.stats.generated_tokens}, "
            f"forward_passes={self.stats.forward_passes}, {self.stats.tokens_per_s:.1f} tok/s{state})"
        )
