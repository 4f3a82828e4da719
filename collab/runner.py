"""The model runner: the model, its shared KV cache, and the one forward per step.

`run(batch)` executes the history moves the scheduler recorded, builds the step plan once, calls
the model once over every fed token, keeps the logits rows that forks and judges read later, and
samples every sampling worker's next token with one host read-back for the whole step. Under
tensor parallelism every rank runs the same steps, and the tokens rank 0 drew are the step's
tokens on every rank (`collab.tensor_parallel`).
"""

from __future__ import annotations

import torch

from .batch import Batch, Drawn, Feed
from .blocks import BlockTable
from .cache import SharedKVCache
from .config import RunOptions
from .plan import build_plan
from .sampling import WorkerSampler, draw
from .support import rope_inv_freq
from .tensor_parallel import Group
from .views import View


class ModelRunner:
    def __init__(self, model, table: BlockTable, options: RunOptions, generation, processors, seed: int, cache_keyword: str):
        self.model, self.table, self.options = model, table, options
        self.generation, self.processors, self.seed = generation, processors, seed
        self.cache_keyword = cache_keyword
        self.inv_freq = rope_inv_freq(model)
        self.cache = SharedKVCache(table, model.config.num_hidden_layers)
        self.device = model.get_input_embeddings().weight.device
        self.group = Group.of(model)  # None for a whole model
        self.kept: dict[int, torch.Tensor] = {}  # worker (or the prompt) -> [vocab] fp32 logits row
        self.samplers: dict[int, WorkerSampler] = {}
        self.partly_visible = False  # flash: some step read a page that not every token sees whole

    def run(self, batch: Batch) -> Drawn:
        for m in batch.moves:
            self.cache.move(m.src_pages, m.src_offsets, m.dst_pages, m.dst_offsets, m.delta, self.inv_freq)
        for worker in batch.drop:
            self.kept.pop(worker, None)
        rows = []
        if batch.feeds:
            logits = self.forward(batch.feeds, batch.views)
            at = {f.worker: i for i, f in enumerate(batch.feeds)}
            for worker in batch.keep:
                self.kept[worker] = logits[at[worker]].clone()
            rows = [logits[at[w]] for w in batch.sample]
        rows += [self.kept[source] for source in batch.draws.values()]
        workers = [*batch.sample, *batch.draws]
        if not workers:
            return Drawn({})
        scores = torch.stack(rows)
        contexts = [batch.contexts[w] for w in workers] if batch.contexts is not None else None
        tokens = draw([self._sampler(w) for w in workers], scores, contexts)
        if self.group is not None:  # one source of truth: rank 0's tokens, so no rank's plan can differ
            tokens = self.group.broadcast(tokens)
        kept = dict(zip(workers, scores.detach().cpu().unbind())) if self.options.output_logits else None
        return Drawn(dict(zip(workers, tokens)), kept)

    def forward(self, feeds: list[Feed], views: dict[int, View]) -> torch.Tensor:
        """One model call over all fed tokens; returns fp32 logits [F, vocab] at each feed's end."""
        plan = build_plan(feeds, views, self.table, self.inv_freq, self.options.attention)
        self.partly_visible = self.partly_visible or not all(plan.whole)
        self.cache.plan = plan
        out = self.model(
            input_ids=plan.input_ids.to(self.device),
            position_ids=plan.position_ids.to(self.device),
            **{self.cache_keyword: self.cache},
            use_cache=True,
            logits_to_keep=plan.logits_index.to(self.device),
            collab_plan=plan,
        )
        return out.logits[0].float()

    @property
    def attention(self) -> str:
        """The attention path that ran, as `stats.attention` reports it."""
        if self.partly_visible:  # those pages go through kernels/flash.py's PyTorch attention
            return f"{self.options.attention} (partly visible pages: PyTorch)"
        return self.options.attention

    def _sampler(self, worker: int) -> WorkerSampler:
        if worker not in self.samplers:  # seeded by the worker's index: the same whenever it is made
            self.samplers[worker] = WorkerSampler.create(self.generation, self.processors, self.seed, worker)
        return self.samplers[worker]
