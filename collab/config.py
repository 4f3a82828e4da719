"""Run options, validated before any compute. Pure Python, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .repeats import Repeats
from .views import resolve_visibility

MAX_WORKERS = 64  # concurrent workers in one run; each is a row of the batch and a block


def check_workers(workers) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int, got {workers!r}")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")


MAX_PAGE_SIZE = 4096  # tokens per KV page: past this a page is mostly empty for any block


@dataclass(slots=True)
class RunOptions:
    workers: int = 2
    visibility: Any = "full"  # a name, "lag:K", a boolean matrix or a callable
    max_new_tokens: int = 256
    ignore_eos: bool = False
    output_logits: bool = False
    page_size: int = 64
    progress: bool = False
    attention: str = "reference"  # resolved attention path (see collab.attention.resolve_backend)
    callback: Callable[[Any], None] | None = None
    step_end: Callable[[str], bool] | None = None  # custom end-of-step rule (collab.steps)
    kv_cap_pages: int | None = None  # KV pages the arena may hold (from kv_cap); None: no cap
    stop_repeats: int | None = None  # end a worker whose newest tokens are a span repeated this often (collab.repeats)
    eos_ids: set | None = None  # end-of-sequence ids the caller named; None: the model's and the tokenizer's
    policy: Any = field(init=False, default=None)  # the resolved visibility policy

    def __post_init__(self):
        check_workers(self.workers)
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise TypeError(f"max_new_tokens must be an int, got {self.max_new_tokens!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive number of tokens, got {self.max_new_tokens}")
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int) or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be an int from 1 to {MAX_PAGE_SIZE} (tokens per KV page; 64 suits most runs), "
                             f"got {self.page_size!r}")
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable, got {self.callback!r}")
        if self.step_end is not None and not callable(self.step_end):
            raise TypeError(f"step_end must be a callable(text_before_break) -> bool, got {self.step_end!r}")
        if self.stop_repeats is not None:
            Repeats(self.stop_repeats)  # refuses anything but an int >= 2
        self.policy = resolve_visibility(self.visibility, self.workers)

    def longest_view(self, prompt_tokens: int, header_tokens: list[int]) -> int:
        """The most tokens any view of this run can hold (positions the model must support)."""
        budgets = [h + self.max_new_tokens for h in header_tokens]
        if self.visibility == "none":
            return prompt_tokens + max(budgets)
        return prompt_tokens + sum(budgets)
