"""Where blocks meet: a parent joining its children's blocks into its view (as each protocol's
engine does), and a finished reasoning step moving into the shared history. Both are bookkeeping
on the block table; the K/V a history move copies is recorded as a `Move` for the runner. Pure
Python, no torch: the scheduler's half that rearranges blocks.
"""

from __future__ import annotations

from .batch import Move
from .result import Event
from .views import Segment, end
from .workers import Phase, Slot


class Joins:
    """Mixed into `Scheduler` (it reads its table, tokens, slots and controller)."""

    def join(self, parent: Slot) -> None:
        """Take in the joined children as the protocol's engine does (`Join`): the kept part of
        the parent's block, then the shown children's blocks, go into its trail (views only);
        only the join's new text is fed, at the head of its next block. A worker that wrote its
        done marker before its helpers ended takes them in whole and retires."""
        children, retire = parent.join
        texts = [self.decode([t for seg in self.slots[c].span(self.table) for t in self.tokens[seg.block][: seg.length]]) for c in children]
        join = self.controller.join(parent.index, self.decode(self.tokens[parent.block]), texts)
        kept, rest = self._kept(parent.block, join.keep)
        trail = [*parent.trail, Segment(parent.block, kept, end(parent.trail))]
        shown = [c for i, c in enumerate(children) if join.show is None or join.show[i]]
        for c in children:
            self.slots[c].absorbed = c in shown
        trail += self._placed(children, shown, join.skip, end(trail))
        parent.trail = tuple(seg for seg in trail if seg.length > 0)
        parent.block = self._open_block(parent.index)
        parent.worker.blocks.append(parent.block)
        parent.worker.join_steps.append(self.step)
        self.result.events.append(Event("join", self.step, parent.index, {"children": list(children), "shown": shown}))
        if retire is not None:
            self.retire(parent, retire)
            return
        head = self.adaptive.encode(rest + join.text) if rest or join.text else []
        parent.gen_start, parent.head_len = len(parent.worker.token_ids), len(head)
        parent.pending, parent.join = head, None
        parent.to(Phase.ACTIVE)
        parent.ready_step = self.step

    def _placed(self, children, shown, skips, start: int) -> list[Segment]:
        """The shown children's spans one after another from `start`, each without its skipped
        first tokens. Skipped tokens keep their place when paths overlap (their positions are the
        ones written); contiguous layouts pack what is shown."""
        overlap, out = self.controller.protocol.layout == "overlap", []
        for i, c in enumerate(children):
            if c not in shown:
                continue
            span = self.slots[c].span(self.table)
            skip = self._kept(span[0].block, skips[i])[0] if skips and skips[i] else 0
            skip = min(skip, span[0].length)
            shift = 0 if overlap else skip
            for seg in span:
                first = skip if seg is span[0] else 0
                out.append(Segment(seg.block, seg.length - first, start + seg.offset + first - shift, seg.start + first))
            if not overlap:
                start += end(span) - skip
        return out

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

    def _close_step(self, s: Slot, end_at: int) -> None:
        """Move the worker's finished step into the shared history (keys re-rotated once, cost
        proportional to the step); the tokens after it start the worker's next block."""
        ids = s.worker.token_ids
        k = len(ids) - 1
        while k > s.gen_start and len(self.decode(ids[:k])) > end_at:
            k -= 1
        n = s.head_len + k - s.gen_start  # the step's tokens in the current block, all fed
        fed = self.table.blocks[s.block].length
        if n <= 0 or n > fed:
            return
        old = s.block
        new = self._open_block(s.index)
        self._move(old, 0, n, self.history)
        self._move(old, n, fed - n, new)
        self.table.free_block(old)
        del self.tokens[old], self.fed_at[old]
        s.block, s.gen_start, s.head_len = new, k, 0
        s.worker.blocks.append(new)

    def _move(self, src: int, start: int, n: int, dst: int) -> None:
        """Tokens `start`..`start + n` of block `src` appended to block `dst`; their K/V copy is
        recorded for the runner (executed in order before the next forward, so pages freed here
        and taken again are read before they are written)."""
        if n <= 0:
            return
        block, P = self.table.blocks[src], self.table.page_size
        src_slots = [divmod(p, P) for p in range(start, start + n)]
        first = self.table.blocks[dst].length
        pages, offsets, _ = self.table.append(dst, n)
        self.moves.append(Move([block.pages[i] for i, _ in src_slots], [o for _, o in src_slots], pages, offsets, first - start))
        self.tokens[dst] += self.tokens[src][start : start + n]
        self.fed_at[dst] += self.fed_at[src][start : start + n]
        if self.result.trace is not None:
            self.result.trace.append(("move", src, start, n, dst, first))
