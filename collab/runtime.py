"""The decode loop: one prefill, then one batched forward per step for all active workers.

Each step: (1) every worker with pending tokens (its header, or the token it sampled last step)
feeds them into its block; (2) the visibility policy gives each worker's view from the block
lengths before the step; (3) one plan is built and one `model(...)` call runs it; (4) each worker
samples its next token from the logits at its last fed token. The result is updated as the run
goes, so an interrupt or a failing callback loses nothing already generated.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .attention import NAME as ATTENTION
from .blocks import BlockTable
from .cache import SharedKVCache
from .config import RunOptions
from .plan import Feed, build_plan
from .result import Event, Result, Stats, Worker
from .sampling import WorkerSampler
from .support import rope_inv_freq
from .template import Encoded
from .views import Segment, View, WorkerState, resolve_visibility


@dataclass(slots=True)
class StepUpdate:
    """Passed to `callback` after every step: the tokens each worker sampled in it."""

    step: int
    tokens: dict[int, int]  # worker index -> sampled token id
    result: Result


@dataclass(slots=True)
class _Slot:
    """A worker's runtime state beside its public `Worker` record."""

    worker: Worker
    block: int
    sampler: WorkerSampler
    ids: torch.Tensor  # [1, capacity] prompt + own block, for logits processors
    pending: list[int]
    done: bool = False


@contextmanager
def attached(model):
    """Route the model's attention through collab for the duration of a run, then restore it."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


class Run:
    def __init__(self, model, tokenizer, encoded: Encoded, options: RunOptions, generation, processors, seed):
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.policy = resolve_visibility(options.visibility)
        self.inv_freq = rope_inv_freq(model)
        self.eos = _eos_ids(model, tokenizer)
        budget = [len(h) + options.max_new_tokens for h in encoded.headers]
        self.table = BlockTable(options.page_size)
        self.table.reserve(
            self.table.pages_for(len(encoded.prompt_ids)) + sum(self.table.pages_for(b) for b in budget)
        )
        self.cache = SharedKVCache(self.table, model.config.num_hidden_layers)
        self.prompt = encoded.prompt_ids
        self.prompt_block = self.table.new_block(None).id
        self.result = Result(list(encoded.prompt_ids), [], seed=seed, visibility=options.visibility)
        self.slots: list[_Slot] = []
        for i, name in enumerate(encoded.names):
            worker = Worker(i, name, header_ids=list(encoded.headers[i]))
            worker.logits = [] if options.output_logits else None
            ids = torch.zeros(1, len(self.prompt) + budget[i], dtype=torch.long)
            ids[0, : len(self.prompt) + len(worker.header_ids)] = torch.tensor(self.prompt + worker.header_ids)
            sampler = WorkerSampler.create(generation, processors, seed, i)
            block = self.table.new_block(i).id
            self.slots.append(_Slot(worker, block, sampler, ids, list(worker.header_ids)))
            self.result.workers.append(worker)
        self.step = 0
        self.t0 = time.perf_counter()

    # -- the loop ------------------------------------------------------------------------------
    def execute(self) -> Result:
        progress = _progress(self.options)
        try:
            with attached(self.model), torch.inference_mode():
                logits = self._prefill()
                self._sample([s for s in self.slots if not s.pending], logits, progress)
                while any(s.pending for s in self.slots):
                    self.step += 1
                    self._decode_step(progress)
        finally:
            progress.close()
        return self.finish()

    def _prefill(self) -> torch.Tensor:
        pages, offsets, positions = self.table.append(self.prompt_block, len(self.prompt))
        feed = Feed(-1, self.prompt_block, self.prompt, pages, offsets, positions)
        logits = self._forward([feed], {-1: View((), 0)})
        self.result.stats.prefill_time_s = time.perf_counter() - self.t0
        self.result.events.append(Event("prefill", 0, info={"tokens": len(self.prompt)}))
        # Workers without a header all start from the prompt's last logits.
        return logits.expand(len(self.slots), -1)

    def _decode_step(self, progress) -> None:
        prompt = Segment(self.prompt_block, len(self.prompt), 0)
        states = [WorkerState(s.worker.index, s.block, self.table.blocks[s.block].length) for s in self.slots]
        views = self.policy(prompt, states)
        feeding = [s for s in self.slots if s.pending]
        feeds = []
        for s in feeding:
            if not s.worker.feed_steps:
                self.result.events.append(Event("start", self.step, s.worker.index))
            pages, offsets, positions = self.table.append(s.block, len(s.pending))
            feeds.append(Feed(s.worker.index, s.block, s.pending, pages, offsets, positions))
            s.worker.feed_steps.extend([self.step] * len(s.pending))
            s.pending = []
        logits = self._forward(feeds, views)
        self._sample(feeding, logits, progress)

    def _forward(self, feeds: list[Feed], views: dict[int, View]) -> torch.Tensor:
        """One model call over all fed tokens; returns fp32 logits [F, vocab] at each feed's end."""
        plan = build_plan(feeds, views, self.table, self.inv_freq)
        self.cache.plan = plan
        device = self.model.get_input_embeddings().weight.device
        out = self.model(
            input_ids=plan.input_ids.to(device),
            position_ids=plan.position_ids.to(device),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=plan.logits_index.to(device),
            collab_plan=plan,
        )
        stats = self.result.stats
        stats.forward_passes += 1
        stats.tokens_fed += plan.input_ids.shape[1]
        stats.steps = self.step
        return out.logits[0].float()

    def _sample(self, slots: list[_Slot], logits: torch.Tensor, progress) -> None:
        sampled = {}
        for s, row in zip(slots, logits):
            w = s.worker
            ids = s.ids[:, : len(self.prompt) + len(w.feed_steps)]  # prompt + own fed tokens
            if w.logits is not None:
                w.logits.append(row.detach().cpu().clone())
            token = s.sampler(ids, row[None])
            w.token_ids.append(token)
            w.sample_steps.append(self.step)
            sampled[w.index] = token
            if token in self.eos and not self.options.ignore_eos:
                self._retire(s, "eos")
            elif len(w.token_ids) >= self.options.max_new_tokens:
                self._retire(s, "max_new_tokens")
            else:
                s.pending = [token]
            s.ids[0, len(self.prompt) + len(w.header_ids) + len(w.token_ids) - 1] = token
        self.result.stats.generated_tokens += len(sampled)
        progress.update(len(sampled))
        if self.options.callback is not None and sampled:
            self.options.callback(StepUpdate(self.step, sampled, self.result))

    def _retire(self, s: _Slot, reason: str) -> None:
        s.done = True
        s.worker.finish_reason = reason
        self.result.events.append(Event("done", self.step, s.worker.index, {"reason": reason}))

    # -- the result ----------------------------------------------------------------------------
    def finish(self, reason: str | None = None) -> Result:
        """Fill text and stats; with `reason` ("interrupted", "error"), mark the result partial."""
        result, stats = self.result, self.result.stats
        for s in self.slots:
            w = s.worker
            if reason and w.finish_reason is None:
                w.finish_reason = reason
            if self.tokenizer is not None:
                w.text = self.tokenizer.decode(w.token_ids, skip_special_tokens=True)
        if reason:
            result.events.append(Event(reason, self.step))
        result.complete = reason is None
        stats.kv_tokens = self.table.tokens
        stats.kv_bytes = self.cache.kv_bytes()
        stats.kv_reserved_bytes = self.cache.reserved_bytes()
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


def _progress(options: RunOptions):
    from tqdm.auto import tqdm

    total = options.workers * options.max_new_tokens
    return tqdm(total=total, disable=not options.progress, unit="tok", desc="collab", leave=False)
