"""The decode loop: one prefill, then one batched forward per step for all active workers.

Each step: (1) every worker with pending tokens (its header, the token it sampled last step, or
a last token to flush) feeds them into its current block; (2) the visibility policy gives each
worker's view from the block lengths before the step; (3) one plan is built and one
`model(...)` call runs it; (4) each feeding worker samples its next token from the logits at its
last fed token; (5) with a protocol, the controller reads the new text and spawns, pauses,
joins or retires workers. The result is updated as the run goes, so an interrupt or a failing
callback loses nothing already generated.
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from bisect import bisect_left
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch

from . import controller as ctl
from .attention import NAME as ATTENTION
from .blocks import BlockTable
from .cache import SharedKVCache
from .config import RunOptions
from .detokenize import Detokenizer
from .plan import Feed, build_plan
from .result import Event, Result, Worker
from .sampling import WorkerSampler
from .steps import StepDetector
from .support import rope_inv_freq
from .template import Encoded
from .views import Segment, View, WorkerState, end


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
    block: int  # current block
    base: tuple[Segment, ...]
    group: int
    sampler: WorkerSampler
    own: list[int]  # every token fed into the worker's own blocks, for logits processors
    pending: list[int]
    trail: tuple[Segment, ...] = ()
    state: str = "active"  # "active", "waiting", "paused" (a search node between rounds), "done"
    flush: bool = False  # pending tokens are fed without sampling
    ready_step: int = 0
    budget: int = 0  # tokens it may sample
    join: tuple | None = None  # (children, head) to join once their last tokens are fed
    controlled: bool = True  # read by the controller (the finisher is not)
    absorbed: bool = False  # joined into its parent's view
    steps: StepDetector = field(default_factory=StepDetector)  # ends of reasoning steps in its text
    reader: Detokenizer | None = None  # its text, decoded a few tokens at a time
    gen_start: int = 0  # index in worker.token_ids of the current block's first sampled token
    head_len: int = 0  # tokens before it in the current block (the header of a first block)
    stop_at: tuple[int, str] | None = None  # (tokens sampled, reason): it stops once it has sampled that many
    keep_row: bool = False  # keep the logits at its last fed token (a search node that may fork)
    last_row: torch.Tensor | None = None  # [vocab] fp32: what its forks sample their first token from

    def span(self, table: BlockTable) -> tuple[Segment, ...]:
        """Trail plus current block, offsets from 0: what a joining parent places."""
        current = Segment(self.block, table.blocks[self.block].length, end(self.trail))
        return self.trail + (current,)


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
    batch_order = None  # None: feeds in worker order; tests set a permutation to prove it does not matter

    def __init__(self, model, tokenizer, encoded: Encoded, options: RunOptions, generation, processors, seed,
                 adaptive: Adaptive | None = None, search=None):
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.generation, self.processors, self.seed = generation, processors, seed
        self.adaptive = adaptive
        self.policy = options.policy
        self.inv_freq = rope_inv_freq(model)
        self.cache_keyword = cache_keyword(model)
        self.eos = options.eos_ids if options.eos_ids is not None else _eos_ids(model, tokenizer)
        self.decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False)  # what markers are read in
        self.text_of = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # `Worker.text`
        self.table = BlockTable(options.page_size, limit=options.kv_cap_pages)
        budget = [len(h) + options.max_new_tokens for h in encoded.headers]
        pages = self.table.pages_for(len(encoded.prompt_ids)) + sum(self.table.pages_for(b) for b in budget)
        self.table.reserve(pages if options.kv_cap_pages is None else min(pages, options.kv_cap_pages))
        self.cache = SharedKVCache(self.table, model.config.num_hidden_layers)
        self.prompt = list(encoded.prompt_ids)
        self.prompt_block = self.table.new_block(None).id
        self.tokens: dict[int, list[int]] = {self.prompt_block: []}  # block -> its fed tokens
        self.fed_at: dict[int, list[int]] = {self.prompt_block: []}  # block -> feed step of each token
        self.history = self.table.new_block(None).id if self.policy.history else None
        if self.history is not None:
            self.tokens[self.history], self.fed_at[self.history] = [], []
        self.result = Result(list(encoded.prompt_ids), [], seed=seed, visibility=str(self.policy))
        self.result.trace = [] if options.output_logits else None
        self.slots: list[_Slot] = []
        self.step = 0
        self.ended: str | None = None  # why the run stopped early, once it has
        self.capped = False  # the KV cap was reached
        self.freed: dict[int, list[int]] = {}  # block -> its tokens, for blocks freed during the run
        self.cuts: list[int] | None = None  # cuts decided while a step samples, carried out at its end
        self.search = search(self) if search is not None else None  # a SearchRun (collab.search_run)
        for name, header in zip(encoded.names, encoded.headers):
            self._add_worker(name, header, None)
        self.t0 = time.perf_counter()

    # -- workers -------------------------------------------------------------------------------
    def _add_worker(self, name, header, parent, base=None, group=-1, budget=None, controlled=True) -> _Slot:
        index = len(self.slots)
        depth = 0 if parent is None else self.slots[parent].worker.depth + 1
        worker = Worker(index, name, header_ids=list(header), parent=parent, depth=depth, spawn_step=self.step)
        worker.logits = [] if self.options.output_logits else None
        worker.views = [] if self.options.output_logits else None
        block = self._open_block(index)
        worker.blocks.append(block)
        base = (Segment(self.prompt_block, len(self.prompt), 0),) if base is None else base
        sampler = WorkerSampler.create(self.generation, self.processors, self.seed, index)
        slot = _Slot(worker, block, base, group, sampler, [], list(header), ready_step=self.step + 1, head_len=len(header))
        slot.budget = budget or self.options.max_new_tokens
        if self.options.step_end is not None:
            slot.steps = StepDetector(is_end=self.options.step_end)
        self.slots.append(slot)
        self.result.workers.append(worker)
        controlled = controlled and self.adaptive is not None and self.adaptive.controller is not None
        slot.controlled = controlled
        if controlled:
            self.adaptive.controller.add(index, parent)
        return slot

    def _open_block(self, owner: int | None) -> int:
        block = self.table.new_block(owner).id
        self.tokens[block], self.fed_at[block] = [], []
        return block

    # -- the loop ------------------------------------------------------------------------------
    def steps(self) -> Iterator[StepUpdate]:
        """The run as a generator: a `StepUpdate` after every step that sampled tokens.

        The caller holds `self.computing()` around each resumption (for the whole loop in
        `generate`, per step in `collab.stream`, so an abandoned stream leaves the model as it
        was). Closing the generator stops the run between steps; `finish()` then keeps it all."""
        logits = self._prefill()
        self._start_paths()
        if self.search is not None:
            self.search.start(logits[0])
        first = [s for s in self.slots if not s.pending and s.state == "active"]
        prompt = View((Segment(self.prompt_block, len(self.prompt), 0),), len(self.prompt))  # what the prompt's last logits saw
        yield self._sample(first, logits.expand(len(first), -1), {s.worker.index: prompt for s in first})
        yield from self._loop()
        if self.search is not None:
            yield from self.search.rounds()
        if self.adaptive is not None and self.adaptive.finisher is not None:
            self._add_finisher()
            yield from self._loop()

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

    def _loop(self) -> Iterator[StepUpdate]:
        while any(s.pending or s.join for s in self.slots):
            self.step += 1
            update = self._decode_step()
            if update is not None:
                yield update

    def _prefill(self) -> torch.Tensor:
        pages, offsets, positions = self.table.append(self.prompt_block, len(self.prompt))
        self.tokens[self.prompt_block] += self.prompt
        self.fed_at[self.prompt_block] += [0] * len(self.prompt)
        feed = Feed(-1, self.prompt_block, self.prompt, pages, offsets, positions)
        if self.result.trace is not None:
            self.result.trace.append((0, -1, self.prompt_block, 0, list(self.prompt), (), 0, True))
        logits = self._forward([feed], {-1: View((), 0)})
        self.result.stats.prefill_time_s = time.perf_counter() - self.t0
        self.result.events.append(Event("prefill", 0, info={"tokens": len(self.prompt)}))
        return logits

    def _start_paths(self) -> None:
        """Protocols with fixed paths (ParaThinker) spawn them before any token is sampled."""
        if self.adaptive is None or not self.adaptive.roots_spawn:
            return
        for root in list(self.slots):
            self._apply(self.adaptive.controller.spawn(root.worker.index, self.adaptive.roots_spawn, wait=True))

    def _views(self, feeding: list[_Slot] = ()) -> dict[int, View]:
        """Each worker's view before this step's tokens are fed; under same-step timing peers
        also see what the workers in `feeding` feed in this step."""
        lag, now = self.policy.lag, {s.worker.index: len(s.pending) for s in feeding} if self.policy.same_step else {}
        states = []
        for s in self.slots:
            if s.block not in self.table.blocks:  # freed: a pruned branch
                continue
            length = self.table.blocks[s.block].length
            shown = bisect_left(self.fed_at[s.block], self.step - lag) if lag else None
            if now:
                shown = length + now.get(s.worker.index, 0)
            states.append(WorkerState(s.worker.index, s.block, length, s.base, s.trail, s.group, shown))
        shared = Segment(self.history, self.table.blocks[self.history].length, 0) if self.history is not None else None
        return self.policy(states, shared, self.step)

    def _decode_step(self) -> StepUpdate | None:
        for s in self.slots:
            if s.join and not s.pending and not any(self.slots[c].pending for c in s.join[0]):
                self._join(s)
        feeding = [s for s in self.slots if s.pending and s.ready_step <= self.step]
        if self.batch_order is not None:  # tests: the rows of the batch in another order
            feeding = self.batch_order(feeding)
        if not feeding:
            return None
        views = self._views(feeding)
        feeding = self._within_cap(self._within_context(feeding, views))
        if not feeding:
            return None
        if self.policy.same_step:  # who feeds may have changed: a view shows only tokens fed
            views = self._views(feeding)
        feeds = []
        for s in feeding:
            if not s.worker.feed_steps:
                self.result.events.append(Event("start", self.step, s.worker.index))
            pages, offsets, positions = self.table.append(s.block, len(s.pending))
            feeds.append(Feed(s.worker.index, s.block, s.pending, pages, offsets, positions))
            if self.result.trace is not None:
                view = views[s.worker.index]
                self.result.trace.append((self.step, s.worker.index, s.block, positions[0], list(s.pending), view.segments, view.own_offset, not s.flush))
            s.worker.feed_steps.extend([self.step] * len(s.pending))
            self.tokens[s.block] += s.pending
            self.fed_at[s.block] += [self.step] * len(s.pending)
            s.own.extend(s.pending)
            s.pending = []
        logits = self._forward(feeds, views)
        rows = [i for i, s in enumerate(feeding) if not s.flush]
        for i, s in enumerate(feeding):
            if s.keep_row:
                s.last_row, s.keep_row = logits[i].clone(), False
            s.flush = False
        return self._sample([feeding[i] for i in rows], logits[rows], views) if rows else None

    def _within_context(self, feeding: list[_Slot], views: dict[int, View]) -> list[_Slot]:
        """Workers whose view would pass the model's context end with an event, not an error."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is None:
            return feeding
        keep = []
        for s in feeding:
            end = views[s.worker.index].own_offset + self.table.blocks[s.block].length + len(s.pending)
            if end > limit:
                s.pending, s.flush = [], False
                self._retire(s, "context")
            else:
                keep.append(s)
        return keep

    def _within_cap(self, feeding: list[_Slot]) -> list[_Slot]:
        """Under a KV cap, the youngest workers whose tokens would need pages past it end
        (reason "kv_cap"): the arena never holds more pages than the cap."""
        cap = self.options.kv_cap_pages
        if cap is None:
            return feeding
        table = self.table
        new = {s.worker.index: table.pages_for(table.blocks[s.block].length + len(s.pending)) - len(table.blocks[s.block].pages)
               for s in feeding}
        total = table.pages_in_use + sum(new.values())
        keep = list(feeding)
        while keep and total > cap:
            s = max(keep, key=lambda s: s.worker.index)  # the youngest
            keep.remove(s)
            total -= new[s.worker.index]
            s.pending, s.flush = [], False
            if not self.capped:
                self.capped = True
                self.result.events.append(Event("kv_cap", self.step, None, {"kv_pages": table.pages_in_use, "cap_pages": cap}))
            self._retire(s, "kv_cap")
        return keep

    def _forward(self, feeds: list[Feed], views: dict[int, View]) -> torch.Tensor:
        """One model call over all fed tokens; returns fp32 logits [F, vocab] at each feed's end."""
        plan = build_plan(feeds, views, self.table, self.inv_freq, self.options.attention)
        self.cache.plan = plan
        device = self.model.get_input_embeddings().weight.device
        out = self.model(
            input_ids=plan.input_ids.to(device),
            position_ids=plan.position_ids.to(device),
            **{self.cache_keyword: self.cache},
            use_cache=True,
            logits_to_keep=plan.logits_index.to(device),
            collab_plan=plan,
        )
        stats = self.result.stats
        stats.forward_passes += 1
        stats.tokens_fed += plan.input_ids.shape[1]
        stats.steps = self.step
        return out.logits[0].float()

    def _sample(self, slots: list[_Slot], logits: torch.Tensor, views=None) -> StepUpdate:
        sampled = {}
        self.cuts = []  # workers a sibling's end cuts (ParaThinker): cut once everyone has sampled
        for s, row in zip(slots, logits):
            w = s.worker
            if w.logits is not None:
                w.logits.append(row.detach().cpu().clone())
                view = views[w.index] if views else View((), 0)
                w.views.append((view.segments, s.block, view.own_offset))
            ids = torch.tensor([self.prompt + s.own]) if s.sampler.processors else None  # read by processors only
            token = s.sampler(ids, row[None])
            w.token_ids.append(token)
            w.sample_steps.append(self.step)
            sampled[w.index] = token
            s.pending = [token]
            if s.stop_at is not None and len(w.token_ids) >= s.stop_at[0]:  # the token(s) kept after a done marker
                if token in self.eos and not self.options.ignore_eos:
                    s.pending = []
                self._retire(s, s.stop_at[1])
            elif token in self.eos and not self.options.ignore_eos:
                s.pending = []
                self._end(s, "eos")
            elif self.search is not None and self.search.ends_step(s):
                self.pause(s)
            elif len(w.token_ids) >= s.budget:
                self._retire(s, "max_new_tokens")
        self.result.stats.generated_tokens += len(sampled)
        if self.adaptive is not None and self.adaptive.controller is not None or self.history is not None:
            self._read_text(sampled)
        cuts, self.cuts = self.cuts, None
        for index in cuts:  # whoever ended by itself in this step keeps its own reason
            self._retire(self.slots[index], "cut")
        return StepUpdate(self.step, sampled, self.result)

    # -- forks (search) ------------------------------------------------------------------------
    def pause(self, s: _Slot) -> None:
        """Stop a worker at the end of a step: its last token is fed, its logits there are kept
        (its forks sample from them), and it waits for a fork or a retire."""
        s.state, s.flush, s.keep_row = "paused", bool(s.pending), True

    def fork_base(self, s: _Slot, extra: int = 0, views: dict[int, View] | None = None) -> tuple[Segment, ...]:
        """What a child forked from worker `s` starts from: its view plus its whole current block
        (and `extra` tokens about to be fed into it)."""
        views = self._views() if views is None else views
        return views[s.worker.index].with_prefix(s.block, self.table.blocks[s.block].length + extra)

    def fork(self, index: int, k: int) -> list[_Slot]:
        """k children of a paused worker, each seeing the worker's view plus its whole block
        (stored once, zero copy) in a view of its own (no peers). `sample_forks` then draws
        their first tokens; forks nest."""
        parent = self.slots[index]
        if parent.state != "paused" or parent.last_row is None or parent.pending:
            raise RuntimeError(f"worker {index} can be forked only while paused at a fed step end")
        base = self.fork_base(parent)
        source = (index, parent.worker.feed_steps[-1]) if parent.worker.feed_steps else (-1, 0)
        children = []
        for _ in range(k):
            name = f"{parent.worker.name}.{len(parent.worker.children) + 1}"
            child = self._add_worker(name, [], index, base, -(len(self.slots) + 2), controlled=False)
            child.own = list(parent.own)  # the path so far, for logits processors
            child.worker.fork_of = source
            parent.worker.children.append(child.worker.index)
            children.append(child)
        ids = [c.worker.index for c in children]
        self.result.events.append(Event("spawn", self.step, index, {"children": ids, "heads": [""] * k, "fork": True}))
        return children

    def sample_forks(self, index: int, children: list[_Slot]) -> StepUpdate:
        """Each fork samples its first token from the parent's kept logits, with its own seed."""
        row = self.slots[index].last_row
        views = {c.worker.index: View(c.base, end(c.base)) for c in children}
        return self._sample(children, row.expand(len(children), -1), views)

    def collect(self) -> None:
        """Free every block no live worker needs (its own, its base, its trail); pages return
        to the free list and are reused first. The tokens stay in the result."""
        live = {self.prompt_block, self.history}
        for s in self.slots:
            if s.state != "done" or s.pending:
                live.add(s.block)
                live.update(seg.block for seg in s.base + s.trail)
        for block in [b for b in self.table.blocks if b not in live]:
            self.table.free_block(block)
            self.freed[block] = self.tokens.pop(block)
            del self.fed_at[block]

    # -- control -------------------------------------------------------------------------------
    def _read_text(self, sampled: dict[int, int]) -> None:
        """Step ends (moved into the shared history under step-wise visibility), then markers."""
        adaptive = self.adaptive
        for index in sampled:
            s = self.slots[index]
            if not (s.controlled or self.history is not None) or s.worker.role == "finisher":
                continue
            if s.reader is None:
                s.reader = Detokenizer(self.decode)
            text = s.reader.sync(s.worker.token_ids)
            for at in s.steps.feed(text):
                s.worker.step_ends = len(s.steps.ends)
                self.result.events.append(Event("step_end", self.step, index, {"steps": len(s.steps.ends)}))
                if self.history is not None:
                    self._close_step(s, at)
            if s.controlled and s.state == "active":
                self._apply(adaptive.controller.observe(index, text))
        if adaptive is None or adaptive.controller is None:
            return
        cap = adaptive.controller.limits.max_total_tokens
        if cap is not None and self.result.stats.generated_tokens >= cap:
            for s in self.slots:
                if s.worker.role != "finisher":  # the finisher still writes the answer
                    self._retire(s, "max_total_tokens")

    def _close_step(self, s: _Slot, end: int) -> None:
        """Move the worker's finished step into the shared history (keys re-rotated once, cost
        proportional to the step); the tokens after it start the worker's next block."""
        ids = s.worker.token_ids
        k = len(ids) - 1
        while k > s.gen_start and len(self.decode(ids[:k])) > end:
            k -= 1
        n = s.head_len + k - s.gen_start  # the step's tokens in the current block, all fed
        fed = self.table.blocks[s.block].length
        if n <= 0 or n > fed:
            return
        old = s.block
        new = self._open_block(s.worker.index)
        self._move(old, 0, n, self.history)
        self._move(old, n, fed - n, new)
        self.table.free_block(old)
        del self.tokens[old], self.fed_at[old]
        s.block, s.gen_start, s.head_len = new, k, 0
        s.worker.blocks.append(new)

    def _move(self, src: int, start: int, n: int, dst: int) -> None:
        if n <= 0:
            return
        block = self.table.blocks[src]
        P = self.table.page_size
        src_slots = [divmod(p, P) for p in range(start, start + n)]
        src_pages = [block.pages[i] for i, _ in src_slots]
        src_offsets = [o for _, o in src_slots]
        first = self.table.blocks[dst].length
        pages, offsets, _ = self.table.append(dst, n)
        self.cache.move(src_pages, src_offsets, pages, offsets, first - start, self.inv_freq)
        self.tokens[dst] += self.tokens[src][start : start + n]
        self.fed_at[dst] += self.fed_at[src][start : start + n]
        if self.result.trace is not None:
            self.result.trace.append(("move", src, start, n, dst, first))

    def _apply(self, decisions) -> None:
        for d in decisions:
            if isinstance(d, ctl.StartChildren):
                self._spawn(d)
            elif isinstance(d, ctl.Pause):
                s = self.slots[d.worker]
                s.state, s.flush = "waiting", bool(s.pending)
                self.result.events.append(Event("wait", self.step, d.worker))
            elif isinstance(d, ctl.Retire) and d.reason == "cut" and self.cuts is not None:
                self.cuts.append(d.worker)
            elif isinstance(d, ctl.Retire) and d.after:
                s = self.slots[d.worker]
                s.stop_at = (len(s.worker.token_ids) + d.after, d.reason)
            elif isinstance(d, ctl.Retire):
                self._retire(self.slots[d.worker], d.reason)
            elif isinstance(d, ctl.Resume):
                s = self.slots[d.parent]
                s.join = (d.children, d.retire)
                if s.state == "active":  # joined at once (<wait> after its helpers finished)
                    s.state, s.flush = "waiting", bool(s.pending)
            elif isinstance(d, ctl.Note):
                self.result.events.append(Event(d.kind, self.step, d.worker, {"reason": d.reason}))

    def _spawn(self, d: ctl.StartChildren) -> None:
        parent = self.slots[d.parent]
        protocol = self.adaptive.controller.protocol
        base, ready = self._fresh_base(), self.step + 1
        if not d.fresh:  # the parent's view up to and including the spawning marker
            base = self.fork_base(parent, extra=len(parent.pending))
            ready += 1 if parent.pending else 0
        children = []
        for head in d.heads:
            index = len(self.slots)
            group = d.parent if protocol.siblings_visible else -(index + 2)
            name = f"{parent.worker.name}.{len(parent.worker.children) + 1}"
            child = self._add_worker(name, self.adaptive.encode(head), d.parent, base, group)
            child.ready_step = ready
            child.worker.head = head
            parent.worker.children.append(index)
            children.append(index)
        self.result.events.append(Event("spawn", self.step, d.parent, {"children": children, "heads": list(d.heads)}))

    def _fresh_base(self) -> tuple[Segment, ...]:
        """A fresh context: the prompt's BOS (its K/V are the same in any sequence), if it has one."""
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return (Segment(self.prompt_block, 1, 0),) if bos is not None and self.prompt[:1] == [bos] else ()

    def _end(self, s: _Slot, reason: str) -> None:
        """A worker ended its own text: a controlled one goes through the controller, so helpers
        it spawned end (and are joined) before it retires."""
        controller = self.adaptive.controller if self.adaptive is not None else None
        if controller is not None and s.controlled and s.state == "active":
            self._apply(controller.end(s.worker.index, reason))
        else:
            self._retire(s, reason)

    def _retire(self, s: _Slot, reason: str) -> None:
        if s.state == "done":
            return
        waiting, s.state, s.join = s.state == "waiting", "done", None
        s.last_row = None  # a retired worker is never forked: its logits row ([vocab]) goes
        s.worker.finish_reason, s.worker.retire_step = reason, self.step
        if not waiting:  # a waiting worker's last token is already being flushed
            keep = self.adaptive is not None and bool(s.pending)  # a later reader needs it fed
            s.flush = keep
            if not keep:
                s.pending = []
        self.result.events.append(Event("done", self.step, s.worker.index, {"reason": reason}))
        if self.search is not None:
            self.search.retired(s, reason)
        if s.controlled:
            self._apply(self.adaptive.controller.retired(s.worker.index))

    def _join(self, parent: _Slot) -> None:
        """Take in the joined children as the protocol's engine does (`Join`): the kept part of
        the parent's block, then the shown children's blocks, go into its trail (views only);
        only the join's new text is fed, at the head of its next block. A worker that wrote its
        done marker before its helpers ended takes them in whole and retires."""
        children, retire = parent.join
        controller = self.adaptive.controller
        texts = [self.decode([t for seg in self.slots[c].span(self.table) for t in self.tokens[seg.block][: seg.length]]) for c in children]
        join = controller.join(parent.worker.index, self.decode(self.tokens[parent.block]), texts)
        kept, rest = self._kept(parent.block, join.keep)
        trail = [*parent.trail, Segment(parent.block, kept, end(parent.trail))]
        overlap, start = controller.protocol.layout == "overlap", end(trail)
        shown = [c for i, c in enumerate(children) if join.show is None or join.show[i]]
        for c in children:
            self.slots[c].absorbed = c in shown
        for i, c in enumerate(children):
            if c not in shown:
                continue
            span = self.slots[c].span(self.table)
            skip = self._kept(span[0].block, join.skip[i])[0] if join.skip and join.skip[i] else 0
            skip = min(skip, span[0].length)
            # skipped tokens keep their place when paths overlap (their positions are the ones
            # written); contiguous layouts pack what is shown
            shift = 0 if overlap else skip
            for seg in span:
                first = skip if seg is span[0] else 0
                trail.append(Segment(seg.block, seg.length - first, start + seg.offset + first - shift, seg.start + first))
            if not overlap:
                start += end(span) - skip
        parent.trail = tuple(seg for seg in trail if seg.length > 0)
        parent.block = self._open_block(parent.worker.index)
        parent.worker.blocks.append(parent.block)
        parent.worker.join_steps.append(self.step)
        self.result.events.append(Event("join", self.step, parent.worker.index, {"children": list(children), "shown": shown}))
        if retire is not None:
            self._retire(parent, retire)
            return
        head = self.adaptive.encode(rest + join.text) if rest or join.text else []
        parent.gen_start, parent.head_len = len(parent.worker.token_ids), len(head)
        parent.pending, parent.state, parent.join = head, "active", None
        parent.ready_step = self.step

    def _kept(self, block: int, keep: int | None) -> tuple[int, str]:
        """The tokens of `block` whose text lies within its first `keep` characters, and the
        characters of those `keep` that a token cut in two leaves over (fed again as text)."""
        tokens = self.tokens[block]
        if keep is None:
            return len(tokens), ""
        text, k = self.decode(tokens)[:keep], len(tokens)
        while k and not text.startswith(self.decode(tokens[:k])):
            k -= 1
        return k, text[len(self.decode(tokens[:k])) :]

    def _add_finisher(self) -> None:
        """A last worker that sees every block (prompt, then each worker's blocks not already
        joined into another's, in worker order) and writes the final answer."""
        live = [seg for s in self.slots if not s.absorbed for seg in s.span(self.table)]
        if self.history is not None:
            live.insert(0, Segment(self.history, self.table.blocks[self.history].length, 0))
        base, offset = [Segment(self.prompt_block, len(self.prompt), 0)], len(self.prompt)
        for seg in live:
            if seg.length > 0:
                base.append(Segment(seg.block, seg.length, offset, seg.start))
                offset += seg.length
        finisher = self._add_worker(
            "Finisher", self.adaptive.finisher, None, tuple(base), _FINISHER_GROUP, budget=self.adaptive.finisher_tokens,
            controlled=False,
        )
        finisher.ready_step = self.step + 1
        finisher.worker.role = "finisher"

    # -- the result ----------------------------------------------------------------------------
    def finish(self, reason: str | None = None) -> Result:
        """Fill text and stats; with `reason` ("interrupted", "error", "stopped"), mark the result
        partial. The first reason stands: finishing again with another is a no-op."""
        result, stats = self.result, self.result.stats
        if reason and self.ended:
            return result
        self.ended = reason
        for s in self.slots:
            w = s.worker
            if reason and w.finish_reason is None:
                w.finish_reason = reason
            if self.tokenizer is not None:
                w.text = self.text_of(w.token_ids)
        if reason:
            result.events.append(Event(reason, self.step))
        result.complete = reason is None
        result.blocks = {b: list(t) for b, t in sorted({**self.freed, **self.tokens}.items())}
        stats.attention = self.options.attention
        stats.kv_tokens = self.table.tokens
        stats.kv_bytes = self.cache.kv_bytes()
        stats.kv_reserved_bytes = self.cache.reserved_bytes()
        stats.wall_time_s = time.perf_counter() - self.t0
        stats.tokens_per_s = stats.generated_tokens / max(stats.wall_time_s, 1e-9)
        return result


_FINISHER_GROUP = -(10**9)  # a group of its own: it sees its base, no live peers


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
