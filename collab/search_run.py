"""Search rounds on a run: pause workers at step ends, score the steps, fork and prune.

The runtime's loop runs until every branch has paused (or ended); then, between steps, this
driver scores the new nodes (a user callable on the path text, or the model judging itself),
asks the search (`collab.search`) for expansions and prunings, applies them (forks share the
node's blocks; pruned branches are retired and their blocks freed) and lets the loop run again.
It drives the scheduler through its public calls (`pause`, `fork`, `probe`, `retire`,
`collect`, `release`) and reads kept logits rows from the runner; it writes no worker's fields.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from . import answers
from .detokenize import Detokenizer
from .result import Event
from .search import Expand, Prune, Search
from .steps import ends_at_break
from .workers import Phase


class SelfJudge:
    """The model scores a step itself: a short evaluation prompt is fed after the node's path in
    a worker of its own (attended to, never part of a branch) and the value is
    P(yes) / (P(yes) + P(no)) for the next token."""

    def __init__(self, tokenizer, prompt: str):
        self.prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        self.yes = _first_ids(tokenizer, ("Yes", " Yes", "yes", " yes"))
        self.no = _first_ids(tokenizer, ("No", " No", "no", " no"))
        if not self.yes or not self.no or set(self.yes) & set(self.no):
            raise ValueError("the tokenizer cannot tell 'Yes' from 'No' in one token: pass scorer=callable(text) -> float")

    def values(self, rows: torch.Tensor) -> list[float]:
        """rows: [n, vocab] logits after the evaluation prompt; one host sync for all n."""
        margin = torch.logsumexp(rows[:, self.yes], 1) - torch.logsumexp(rows[:, self.no], 1)
        return torch.sigmoid(margin).tolist()


def _first_ids(tokenizer, words) -> list[int]:
    return sorted({ids[0] for w in words if (ids := tokenizer(w, add_special_tokens=False).input_ids)})


class SearchRun:
    def __init__(self, run, search: Search, scorer: Callable[[str], float] | SelfJudge):
        self.run, self.search, self.options = run, search, search.options
        self.scheduler = run.scheduler
        self.tree = run.result.search = search.tree
        self.scorer = scorer
        self.unscored: list[int] = []  # nodes whose step ended, waiting for a value

    # -- hooks called by the runtime -----------------------------------------------------------
    def start(self) -> None:
        """The root worker is the root node: it pauses after its header (or the prompt)."""
        root = self.scheduler.slots[0]
        self.tree.add(root.index, None)
        self.scheduler.pause(root)
        if not root.pending:
            self.scheduler.keep_prompt_row(root)

    def ends_step(self, s) -> bool:
        """A running node stops at a step end, after `step_tokens` tokens, or when a budget ends."""
        ids = s.worker.token_ids
        if len(ids) >= self.options.step_tokens or not self.budget_left():
            return self._finished(s, terminal=False)
        if s.reader is None:
            s.reader = Detokenizer(self.scheduler.decode)
        if ends_at_break(s.reader.sync(ids), s.steps.is_end):
            return self._finished(s, terminal=False)
        return False

    def retired(self, s, reason: str) -> None:
        node = self.tree.nodes.get(s.worker.index)
        if node is not None and node.state == "running":  # an end of text, or the context ran out
            self._finished(s, terminal=True)

    def budget_left(self) -> bool:
        stats, opt = self.run.result.stats, self.options
        if stats.generated_tokens >= opt.max_tokens:
            return False
        return opt.max_forward_passes is None or stats.forward_passes < opt.max_forward_passes

    # -- rounds ----------------------------------------------------------------------------------
    def rounds(self) -> Iterator:
        scheduler = self.scheduler
        while True:
            yield from self._score()
            decisions = self.search.decide(self.budget_left())
            if not decisions:
                break
            self._prune([d for d in decisions if isinstance(d, Prune)])
            scheduler.collect()
            self._record_memory()  # after pruning, before the new forks: what the live tree holds
            yield from self._expand([d for d in decisions if isinstance(d, Expand)])
            yield from self.run.loop()
        chosen = set(self.tree.chosen)
        for s in scheduler.slots:
            scheduler.retire(s, "chosen" if s.index in chosen else "search ended")
        scheduler.collect()
        self._record_memory()

    def _prune(self, decisions: list[Prune]) -> None:
        scheduler = self.scheduler
        for d in decisions:
            scheduler.result.events.append(Event("prune", scheduler.step, d.node, {"score": self.tree.nodes[d.node].score}))
            scheduler.retire(scheduler.slots[d.node], "pruned")

    def _expand(self, decisions: list[Expand]) -> Iterator:
        scheduler = self.scheduler
        for d in decisions:
            batch = scheduler.fork(d.node, d.children)
            ids = list(batch.draws)
            for i in ids:
                self.tree.add(i, d.node)
            self.search.started(ids)
            yield from self.run.step(batch)
            if self.search.expands_once:  # its block lives on in its children's views
                scheduler.retire(scheduler.slots[d.node], "expanded")

    def _score(self) -> Iterator:
        """Value every node whose step ended: the callable now, or one batched judge step."""
        todo, self.unscored = self.unscored, []
        if not todo:
            return
        if not isinstance(self.scorer, SelfJudge):
            for i in todo:
                self._set(i, self.scorer, self.tree.text(i))
            return
        scheduler = self.scheduler
        judges = [scheduler.probe(i, self.scorer.prompt_ids, f"judge({scheduler.slots[i].worker.name})", "judge").index
                  for i in todo]  # each sees the node's whole path, then the evaluation prompt
        yield from self.run.loop()
        values = self.scorer.values(torch.stack([self.run.runner.kept[j] for j in judges]))
        for i, judge, value in zip(todo, judges, values):
            self._set(i, float, value)
            scheduler.release(judge)

    def _set(self, index: int, fn, arg) -> None:
        """Score a node; a failing or non-numeric scorer marks it unscored, with an event."""
        node = self.tree.nodes[index]
        try:
            value = answers.score(fn, arg)
        except Exception as exc:  # the tree is kept; the node ranks last
            node.error = f"{type(exc).__name__}: {exc}"
            self.scheduler.result.events.append(Event("unscored", self.scheduler.step, index, {"reason": node.error}))
            value = None
        self.search.scored(index, value)
        if value is not None:
            self.scheduler.result.events.append(Event("scored", self.scheduler.step, index, {"score": value}))

    def _finished(self, s, terminal: bool) -> bool:
        node = self.tree.nodes[s.worker.index]
        node.text = self.run.text_of(s.worker.token_ids)
        self.search.finished(node.id, terminal)
        self.unscored.append(node.id)
        return True

    def _record_memory(self) -> None:
        table, live = self.scheduler.table, [s.index for s in self.scheduler.slots if s.phase is not Phase.DONE]
        self.tree.memory.append((live, table.tokens, table.pages_in_use))
