"""The scheduler: which worker feeds what in each step, and what each sees. Pure Python, no torch.

It owns the workers (`workers.Slot`), the block table and every block's tokens, and the
controller. `schedule()` joins the workers whose children are done, admits the feeders (the KV
cap, the model's context), gives each its view and returns the step as a `Batch`, which does not
change afterwards; `postprocess(batch, drawn)` files the sampled tokens, applies the stop rules
and the controller's decisions (spawns, waits, joins, retirements, and those that admission
queued), and records the K/V moves of finished reasoning steps for the runner to execute before
the next forward. Search drives it through `pause`, `fork`, `probe`, `retire` and `collect`.
"""

from __future__ import annotations

from bisect import bisect_left

from . import controller as ctl
from .batch import PROMPT_ROW, Batch, Drawn, Feed, Move, StepUpdate
from .blocks import BlockTable
from .config import RunOptions
from .detokenize import Detokenizer
from .joins import Joins
from .repeats import Repeats
from .result import Event, Result, Worker
from .steps import StepDetector
from .template import Encoded
from .views import Segment, View, WorkerState, end
from .workers import FINISHER, ROOTS, Phase, Slot, alone, children_of


class Scheduler(Joins):
    batch_order = None  # None: feeds in worker order; tests set a permutation to prove it does not matter

    def __init__(self, encoded: Encoded, options: RunOptions, *, decode, eos: set[int], context: int | None,
                 adaptive=None, bos: int | None = None, contexts: bool = False):
        self.options, self.policy, self.adaptive = options, options.policy, adaptive
        self.decode, self.eos, self.context, self.bos = decode, eos, context, bos
        self.contexts = contexts  # logits processors read each worker's tokens
        self.controller = adaptive.controller if adaptive is not None else None
        self.table = BlockTable(options.page_size, limit=options.kv_cap_pages)
        budget = [len(h) + options.max_new_tokens for h in encoded.headers]
        pages = self.table.pages_for(len(encoded.prompt_ids)) + sum(self.table.pages_for(b) for b in budget)
        self.table.reserve(pages if options.kv_cap_pages is None else min(pages, options.kv_cap_pages))
        self.prompt = list(encoded.prompt_ids)
        self.tokens: dict[int, list[int]] = {}  # block -> its fed tokens
        self.fed_at: dict[int, list[int]] = {}  # block -> feed step of each token
        self.prompt_block = self._open_block(None)
        self.history = self._open_block(None) if self.policy.history else None
        self.result = Result(list(encoded.prompt_ids), [], visibility=str(self.policy))
        self.result.trace = [] if options.output_logits else None
        self.slots: list[Slot] = []
        self.step = 0
        self.capped = False  # the KV cap was reached
        self.freed: dict[int, list[int]] = {}  # block -> its tokens, for blocks freed during the run
        self.moves: list[Move] = []  # K/V moves recorded since the last batch
        self.drop: list[int] = []  # kept rows no longer needed, since the last batch
        self.queued: list = []  # the controller's reactions to admission retirements, for postprocess
        self.cuts: list[int] | None = None  # cuts decided while a step's tokens are filed, carried out at its end
        self.search = None  # a SearchRun: told of step ends and retirements
        for name, header in zip(encoded.names, encoded.headers):
            self.add(name, header, None)

    # -- workers -------------------------------------------------------------------------------
    def add(self, name, header, parent, base=None, group=ROOTS, budget=None, controlled=True) -> Slot:
        index = len(self.slots)
        depth = 0 if parent is None else self.slots[parent].worker.depth + 1
        worker = Worker(index, name, header_ids=list(header), parent=parent, depth=depth, spawn_step=self.step)
        worker.logits = [] if self.options.output_logits else None
        worker.views = [] if self.options.output_logits else None
        block = self._open_block(index)
        worker.blocks.append(block)
        base = (Segment(self.prompt_block, len(self.prompt), 0),) if base is None else base
        controlled = controlled and self.controller is not None
        slot = Slot(worker, block, base, group, list(header), ready_step=self.step + 1, head_len=len(header),
                    budget=budget or self.options.max_new_tokens, controlled=controlled)
        if self.options.step_end is not None:
            slot.steps = StepDetector(is_end=self.options.step_end)
        if self.options.stop_repeats is not None:
            slot.repeats = Repeats(self.options.stop_repeats)
        self.slots.append(slot)
        self.result.workers.append(worker)
        if controlled:
            self.controller.add(index, parent)
        return slot

    def _open_block(self, owner: int | None) -> int:
        block = self.table.new_block(owner).id
        self.tokens[block], self.fed_at[block] = [], []
        return block

    @property
    def busy(self) -> bool:
        """Someone still has tokens to feed or children to join."""
        return any(s.pending or s.join for s in self.slots)

    # -- the step ------------------------------------------------------------------------------
    def prefill(self) -> Batch:
        pages, offsets, positions = self.table.append(self.prompt_block, len(self.prompt))
        self.tokens[self.prompt_block] += self.prompt
        self.fed_at[self.prompt_block] += [0] * len(self.prompt)
        if self.result.trace is not None:
            self.result.trace.append((0, -1, self.prompt_block, 0, list(self.prompt), (), 0, True))
        self.result.events.append(Event("prefill", 0, info={"tokens": len(self.prompt)}))
        feeds = [Feed(-1, self.prompt_block, self.prompt, pages, offsets, positions)]
        return self._counted(Batch(0, feeds, {-1: View((), 0)}, keep=[PROMPT_ROW]))

    def first(self) -> Batch:
        """The first tokens of the workers that have no header, drawn from the prompt's logits."""
        first = [s for s in self.slots if not s.pending and s.phase is Phase.ACTIVE]
        prompt = View((Segment(self.prompt_block, len(self.prompt), 0),), len(self.prompt))  # what those logits saw
        return self._with_contexts(Batch(0, views={s.index: prompt for s in first}, draws={s.index: PROMPT_ROW for s in first}))

    def schedule(self) -> Batch:
        """The next step: joins due, the feeders admitted, their tokens given slots, their views."""
        self.step += 1
        batch = Batch(self.step, moves=self.moves, drop=self.drop)
        self.moves, self.drop = [], []
        for s in self.slots:
            if s.join and not s.pending and not any(self.slots[c].pending for c in s.join[0]):
                self.join(s)
        feeding = [s for s in self.slots if s.pending and s.ready_step <= self.step]
        if self.batch_order is not None:  # tests: the rows of the batch in another order
            feeding = self.batch_order(feeding)
        if not feeding:
            return batch
        views = self.views(feeding)
        admitted = self._within_cap(self._within_context(feeding, views))
        if not admitted:
            return batch
        if self.policy.same_step and len(admitted) < len(feeding):  # a same-step view shows only tokens fed
            views = self.views(admitted)
        feeding, batch.views = admitted, views
        batch.sample = [s.index for s in feeding if not s.flushing]
        batch.keep = [s.index for s in feeding if s.keep]
        batch.feeds = [self._feed(s, batch.views[s.index]) for s in feeding]
        return self._with_contexts(self._counted(batch))

    def _feed(self, s: Slot, view: View) -> Feed:
        if not s.worker.feed_steps:
            self.result.events.append(Event("start", self.step, s.index))
        pages, offsets, positions = self.table.append(s.block, len(s.pending))
        if self.result.trace is not None:
            self.result.trace.append((self.step, s.index, s.block, positions[0], list(s.pending), view.segments, view.own_offset, not s.flushing))
        s.worker.feed_steps.extend([self.step] * len(s.pending))
        self.tokens[s.block] += s.pending
        self.fed_at[s.block] += [self.step] * len(s.pending)
        s.own.extend(s.pending)
        if s.keep:
            s.keep, s.row = False, s.index
        feed, s.pending = Feed(s.index, s.block, s.pending, pages, offsets, positions), []
        return feed

    def _counted(self, batch: Batch) -> Batch:
        stats = self.result.stats
        stats.forward_passes += 1
        stats.tokens_fed += sum(len(f.tokens) for f in batch.feeds)
        stats.steps = self.step
        return batch

    def _with_contexts(self, batch: Batch) -> Batch:
        if self.contexts:
            batch.contexts = {i: self.prompt + self.slots[i].own for i in [*batch.sample, *batch.draws]}
        return batch

    def views(self, feeding: list[Slot] = ()) -> dict[int, View]:
        """Each worker's view before this step's tokens are fed; under same-step timing peers
        also see what the workers in `feeding` feed in this step."""
        lag, now = self.policy.lag, {s.index: len(s.pending) for s in feeding} if self.policy.same_step else {}
        states = []
        for s in self.slots:
            if s.block not in self.table.blocks:  # freed: a pruned branch
                continue
            length = self.table.blocks[s.block].length
            shown = bisect_left(self.fed_at[s.block], self.step - lag) if lag else None
            if now:
                shown = length + now.get(s.index, 0)
            states.append(WorkerState(s.index, s.block, length, s.base, s.trail, s.group, shown))
        shared = Segment(self.history, self.table.blocks[self.history].length, 0) if self.history is not None else None
        return self.policy(states, shared, self.step)

    def _within_context(self, feeding: list[Slot], views: dict[int, View]) -> list[Slot]:
        """Workers whose view would pass the model's context end with an event, not an error."""
        if self.context is None:
            return feeding
        keep = []
        for s in feeding:
            if views[s.index].own_offset + self.table.blocks[s.block].length + len(s.pending) > self.context:
                s.pending = []
                self.retire(s, "context", queue=True)
            else:
                keep.append(s)
        return keep

    def _within_cap(self, feeding: list[Slot]) -> list[Slot]:
        """Under a KV cap, the youngest workers whose tokens would need pages past it end
        (reason "kv_cap"): the arena never holds more pages than the cap."""
        cap, table = self.options.kv_cap_pages, self.table
        if cap is None:
            return feeding
        new = {s.index: table.pages_for(table.blocks[s.block].length + len(s.pending)) - len(table.blocks[s.block].pages)
               for s in feeding}
        total, keep = table.pages_in_use + sum(new.values()), list(feeding)
        while keep and total > cap:
            s = max(keep, key=lambda s: s.index)  # the youngest
            keep.remove(s)
            total -= new[s.index]
            s.pending = []
            if not self.capped:
                self.capped = True
                self.result.events.append(Event("kv_cap", self.step, None, {"kv_pages": table.pages_in_use, "cap_pages": cap}))
            self.retire(s, "kv_cap", queue=True)
        return keep

    def postprocess(self, batch: Batch, drawn: Drawn) -> StepUpdate | None:
        """File each sampled token, apply the stop rules and the controller's decisions."""
        if not drawn.tokens:
            self._apply(self._unqueue())
            return None
        self.cuts = []  # workers a sibling's end cuts (ParaThinker): cut once everyone has filed
        for index, token in drawn.tokens.items():
            self._file(self.slots[index], token, batch.views[index], drawn.rows)
        self.result.stats.generated_tokens += len(drawn.tokens)
        if self.controller is not None or self.history is not None:
            self._read_text(drawn.tokens)
        cuts, self.cuts = self.cuts, None
        for index in cuts:  # whoever ended by itself in this step keeps its own reason
            self.retire(self.slots[index], "cut")
        self._apply(self._unqueue())
        return StepUpdate(batch.step, dict(drawn.tokens), self.result)

    def _file(self, s: Slot, token: int, view: View, rows) -> None:
        w = s.worker
        if w.logits is not None:
            w.logits.append(rows[w.index])
            w.views.append((view.segments, s.block, view.own_offset))
        w.token_ids.append(token)
        w.sample_steps.append(self.step)
        s.pending = [token]
        eos = token in self.eos and not self.options.ignore_eos
        looping = s.repeats is not None and s.repeats.feed(token)  # every sampled token, whatever ends it
        if s.stop_at is not None and len(w.token_ids) >= s.stop_at[0]:  # the token(s) kept after a done marker
            if eos:
                s.pending = []
            self.retire(s, s.stop_at[1])
        elif eos:
            s.pending = []
            self._end(s, "eos")
        elif self.search is not None and self.search.ends_step(s):
            self.pause(s)
        elif len(w.token_ids) >= s.budget:
            self.retire(s, "max_new_tokens")
        elif looping:
            self.retire(s, "repeats")

    def _unqueue(self) -> list:
        queued, self.queued = self.queued, []
        return queued

    # -- search's API --------------------------------------------------------------------------
    def pause(self, s: Slot) -> None:
        """Stop a worker at the end of a step: its last token is fed, its logits there are kept
        (its forks sample from them), and it waits for a fork or a retire."""
        s.to(Phase.PAUSED)
        s.keep = True

    def keep_prompt_row(self, s: Slot) -> None:
        """A paused worker that has fed nothing forks from the prompt's logits."""
        s.keep, s.row = False, PROMPT_ROW

    def fork_base(self, s: Slot, extra: int = 0, views: dict[int, View] | None = None) -> tuple[Segment, ...]:
        """What a child forked from worker `s` starts from: its view plus its whole current block
        (and `extra` tokens about to be fed into it)."""
        views = self.views() if views is None else views
        return views[s.index].with_prefix(s.block, self.table.blocks[s.block].length + extra)

    def fork(self, index: int, k: int) -> Batch:
        """k children of a paused worker, each seeing the worker's view plus its whole block
        (stored once, zero copy) in a view of its own (no peers); the batch draws their first
        tokens, each with its own seed, from the worker's kept logits. Forks nest."""
        parent = self.slots[index]
        if parent.phase is not Phase.PAUSED or parent.row is None or parent.pending:
            raise RuntimeError(f"worker {index} can be forked only while paused at a fed step end")
        base = self.fork_base(parent)
        source = (index, parent.worker.feed_steps[-1]) if parent.worker.feed_steps else (-1, 0)
        children = []
        for _ in range(k):
            name = f"{parent.worker.name}.{len(parent.worker.children) + 1}"
            child = self.add(name, [], index, base, alone(len(self.slots)), controlled=False)
            child.own = list(parent.own)  # the path so far, for logits processors
            child.worker.fork_of = source
            parent.worker.children.append(child.index)
            children.append(child.index)
        self.result.events.append(Event("spawn", self.step, index, {"children": children, "heads": [""] * k, "fork": True}))
        views = {c: View(self.slots[c].base, end(self.slots[c].base)) for c in children}
        return self._with_contexts(Batch(self.step, views=views, draws={c: parent.row for c in children}))

    def probe(self, index: int, head: list[int], name: str, role: str) -> Slot:
        """A worker that sees worker `index`'s whole path, then feeds `head` and samples nothing;
        the runner keeps the logits after it (a judge's verdict)."""
        base = self.fork_base(self.slots[index])
        probe = self.add(name, head, index, base, alone(len(self.slots)), budget=1, controlled=False)
        probe.worker.role, probe.worker.finish_reason, probe.worker.retire_step = role, role, self.step
        probe.phase, probe.keep = Phase.DONE, True
        return probe

    def release(self, index: int) -> None:
        """The runner may forget worker `index`'s kept row."""
        self.slots[index].row = None
        self.drop.append(index)

    def collect(self) -> None:
        """Free every block no live worker needs (its own, its base, its trail); pages return
        to the free list and are reused first. The tokens stay in the result."""
        live = {self.prompt_block, self.history}
        for s in self.slots:
            if s.phase is not Phase.DONE or s.pending:
                live.add(s.block)
                live.update(seg.block for seg in s.base + s.trail)
        for block in [b for b in self.table.blocks if b not in live]:
            self.table.free_block(block)
            self.freed[block] = self.tokens.pop(block)
            del self.fed_at[block]

    # -- control -------------------------------------------------------------------------------
    def start_paths(self) -> None:
        """Protocols with fixed paths (ParaThinker) spawn them before any token is sampled."""
        if self.adaptive is None or not self.adaptive.roots_spawn:
            return
        for root in list(self.slots):
            self._apply(self.controller.spawn(root.index, self.adaptive.roots_spawn, wait=True))

    def _read_text(self, sampled: dict[int, int]) -> None:
        """Step ends (moved into the shared history under step-wise visibility), then markers."""
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
            if s.controlled and s.phase is Phase.ACTIVE:
                self._apply(self.controller.observe(index, text))
        if self.controller is None:
            return
        cap = self.controller.limits.max_total_tokens
        if cap is not None and self.result.stats.generated_tokens >= cap:
            for s in self.slots:
                if s.worker.role != "finisher":  # the finisher still writes the answer
                    self.retire(s, "max_total_tokens")

    def _apply(self, decisions) -> None:
        for d in decisions:
            if isinstance(d, ctl.SpawnChildren):
                self._spawn(d)
            elif isinstance(d, ctl.AwaitChildren):
                self.slots[d.worker].to(Phase.WAITING)
                self.result.events.append(Event("wait", self.step, d.worker))
            elif isinstance(d, ctl.Retire) and d.reason == "cut" and self.cuts is not None:
                self.cuts.append(d.worker)
            elif isinstance(d, ctl.Retire) and d.after:
                s = self.slots[d.worker]
                s.stop_at = (len(s.worker.token_ids) + d.after, d.reason)
            elif isinstance(d, ctl.Retire):
                self.retire(self.slots[d.worker], d.reason)
            elif isinstance(d, ctl.JoinChildren):
                s = self.slots[d.parent]
                s.join = (d.children, d.retire)
                if s.phase is Phase.ACTIVE:  # joined at once (<wait> after its helpers finished)
                    s.to(Phase.WAITING)
            elif isinstance(d, ctl.Rejected):
                self.result.events.append(Event(d.kind, self.step, d.worker, {"reason": d.reason}))

    def _spawn(self, d: ctl.SpawnChildren) -> None:
        parent = self.slots[d.parent]
        base, ready = self._fresh_base(), self.step + 1
        if not d.fresh:  # the parent's view up to and including the spawning marker
            base = self.fork_base(parent, extra=len(parent.pending))
            ready += 1 if parent.pending else 0
        children = []
        for head in d.heads:
            index = len(self.slots)
            group = children_of(d.parent) if self.controller.protocol.siblings_visible else alone(index)
            name = f"{parent.worker.name}.{len(parent.worker.children) + 1}"
            child = self.add(name, self.adaptive.encode(head), d.parent, base, group)
            child.ready_step = ready
            child.worker.head = head
            parent.worker.children.append(index)
            children.append(index)
        self.result.events.append(Event("spawn", self.step, d.parent, {"children": children, "heads": list(d.heads)}))

    def _fresh_base(self) -> tuple[Segment, ...]:
        """A fresh context: the prompt's BOS (its K/V are the same in any sequence), if it has one."""
        return (Segment(self.prompt_block, 1, 0),) if self.bos is not None and self.prompt[:1] == [self.bos] else ()

    def _end(self, s: Slot, reason: str) -> None:
        """A worker ended its own text: a controlled one goes through the controller, so helpers
        it spawned end (and are joined) before it retires."""
        if s.controlled and s.phase is Phase.ACTIVE:
            self._apply(self.controller.end(s.index, reason))
        else:
            self.retire(s, reason)

    def retire(self, s: Slot, reason: str, queue: bool = False) -> None:
        """Worker `s` stops. Its last token is still fed when a later reader needs it in its block;
        the controller hears of it at once, or (`queue`: during admission, so the batch being
        chosen does not change) when the step is filed."""
        if s.phase is Phase.DONE:
            return
        waiting = s.phase is Phase.WAITING
        s.to(Phase.DONE)
        s.join = None
        if s.row is not None and s.row != PROMPT_ROW:  # a retired worker is never forked: its row goes
            self.drop.append(s.index)
        s.row = None
        s.worker.finish_reason, s.worker.retire_step = reason, self.step
        if not waiting and self.adaptive is None:  # a waiting worker's last token is already being flushed
            s.pending = []
        self.result.events.append(Event("done", self.step, s.index, {"reason": reason}))
        if self.search is not None:
            self.search.retired(s, reason)
        if s.controlled:
            decisions = self.controller.retired(s.index)
            self.queued.extend(decisions) if queue else self._apply(decisions)

    def add_finisher(self) -> None:
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
        finisher = self.add("Finisher", self.adaptive.finisher, None, tuple(base), FINISHER,
                            budget=self.adaptive.finisher_tokens, controlled=False)
        finisher.ready_step = self.step + 1
        finisher.worker.role = "finisher"
