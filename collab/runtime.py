"""The decode loop: one prefill, then one step after another, each three calls:

    batch = scheduler.schedule()           # torch-free: who feeds what, each worker's view
    drawn = runner.run(batch)              # one forward, one read-back: the sampled tokens
    scheduler.postprocess(batch, drawn)    # stop rules, the controller's spawns, waits and joins

The result is filled in as the run goes, so an interrupt or a failing callback loses nothing
already generated.
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch

from . import controller as ctl
from .attention import NAME as ATTENTION
from .batch import Batch, StepUpdate
from .config import RunOptions
from .result import Event, Result
from .runner import ModelRunner
from .sampling import build_processors
from .scheduler import Scheduler
from .template import Encoded

__all__ = ["Adaptive", "Run", "StepUpdate", "attached", "cache_keyword", "progress_bar"]


@contextmanager
def attached(model):
    """Route the model's attention through collab while a run computes, then restore it. Runs
    on one model from several threads take turns (a lock per model, re-entrant for the thread
    that holds it), so each sees the model as it left it and the last one out restores it."""
    with _lock(model):
        previous = model.config._attn_implementation
        model.set_attn_implementation(ATTENTION)
        try:
            yield
        finally:
            model.set_attn_implementation(previous)


def cache_keyword(model) -> str:
    """The name the model's forward takes its cache by: `cache` in current transformers (5.24 on),
    `past_key_values` before it (now deprecated there)."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


_LOCKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _lock(model) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@dataclass(slots=True)
class Adaptive:
    """What a protocol run needs besides the options."""

    controller: ctl.Controller | None  # None: no protocol (a finisher only)
    encode: object  # text -> token ids
    finisher: list[int] | None = None  # head of the finisher block; None: no finisher
    finisher_tokens: int = 64
    roots_spawn: tuple[str, ...] = field(default_factory=tuple)


class Run:
    def __init__(self, model, tokenizer, encoded: Encoded, options: RunOptions, generation, processors, seed,
                 adaptive: Adaptive | None = None, search=None):
        self.model, self.tokenizer, self.options, self.adaptive = model, tokenizer, options, adaptive
        decode = (lambda ids: tokenizer.decode(ids, skip_special_tokens=False)) if tokenizer is not None else None
        self.text_of = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # `Worker.text`
        self.scheduler = Scheduler(
            encoded, options, decode=decode, adaptive=adaptive, contexts=bool(build_processors(generation, processors)),
            eos=options.eos_ids if options.eos_ids is not None else _eos_ids(model, tokenizer),
            context=getattr(model.config, "max_position_embeddings", None),
            bos=getattr(tokenizer, "bos_token_id", None))
        self.runner = ModelRunner(model, self.scheduler.table, options, generation, processors, seed, cache_keyword(model))
        self.result: Result = self.scheduler.result
        self.result.seed = seed
        self.ended: str | None = None  # why the run stopped early, once it has
        self.search = self.scheduler.search = search(self) if search is not None else None  # a SearchRun
        self.t0 = time.perf_counter()

    def steps(self) -> Iterator[StepUpdate]:
        """The run as a generator: a `StepUpdate` after every step that sampled tokens.

        The caller holds `self.computing()` around each resumption (for the whole loop in
        `generate`, per step in `collab.stream`, so an abandoned stream leaves the model as it
        was). Closing the generator stops the run between steps; `finish()` then keeps it all."""
        self.runner.run(self.scheduler.prefill())
        self.result.stats.prefill_time_s = time.perf_counter() - self.t0
        self.scheduler.start_paths()
        if self.search is not None:
            self.search.start()
        yield from self.step(self.scheduler.first())
        yield from self.loop()
        if self.search is not None:
            yield from self.search.rounds()
        if self.adaptive is not None and self.adaptive.finisher is not None:
            self.scheduler.add_finisher()
            yield from self.loop()

    def loop(self) -> Iterator[StepUpdate]:
        """Steps until no worker has tokens to feed or children to join."""
        while self.scheduler.busy:
            yield from self.step(self.scheduler.schedule())

    def step(self, batch: Batch) -> Iterator[StepUpdate]:
        update = self.scheduler.postprocess(batch, self.runner.run(batch))
        if update is not None:
            yield update

    @contextmanager
    def computing(self):
        """The model routed through collab's attention, without autograd."""
        with attached(self.model), torch.inference_mode():
            yield

    def execute(self) -> Result:
        """Run to the end: the callback and the progress bar see every step."""
        progress = progress_bar(self.options)
        try:
            with self.computing():
                for update in self.steps():
                    progress.update(len(update.tokens))
                    if self.options.callback is not None and update.tokens:
                        self.options.callback(update)
        finally:
            progress.close()
        return self.finish()

    def finish(self, reason: str | None = None) -> Result:
        """Fill text and stats; with `reason` ("interrupted", "error", "stopped"), mark the result
        partial. The first reason stands: finishing again with another is a no-op."""
        result, stats, scheduler = self.result, self.result.stats, self.scheduler
        if reason and self.ended:
            return result
        self.ended = reason
        for s in scheduler.slots:
            w = s.worker
            if reason and w.finish_reason is None:
                w.finish_reason = reason
            if self.tokenizer is not None:
                w.text = self.text_of(w.token_ids)
        if reason:
            result.events.append(Event(reason, scheduler.step))
        result.complete = reason is None
        result.blocks = {b: list(t) for b, t in sorted({**scheduler.freed, **scheduler.tokens}.items())}
        stats.attention = self.runner.attention
        stats.kv_tokens = scheduler.table.tokens
        stats.kv_bytes = self.runner.cache.kv_bytes()
        stats.kv_reserved_bytes = self.runner.cache.reserved_bytes()
        stats.wall_time_s = time.perf_counter() - self.t0
        stats.tokens_per_s = stats.generated_tokens / max(stats.wall_time_s, 1e-9)
        return result


def _eos_ids(model, tokenizer) -> set[int]:
    ids = set()
    for source in (getattr(model, "generation_config", None), tokenizer):
        eos = getattr(source, "eos_token_id", None)
        if eos is not None:
            ids.update(eos if isinstance(eos, (list, tuple, set)) else [eos])
    return ids


def progress_bar(options: RunOptions):
    from tqdm.auto import tqdm

    total = options.workers * options.max_new_tokens
    # shown only for runs that last: short calls in loops and tests print nothing
    return tqdm(total=total, disable=not options.progress, unit="tok", desc="collab", leave=False, delay=2.0)
