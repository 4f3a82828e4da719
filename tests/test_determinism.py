"""The same seed gives the same tokens for every strategy and visibility: across runs, and
whatever the order of the workers' rows in the batch."""

import random

import pytest
from scripted import CharTokenizer, Script

import collab
from collab.scheduler import Scheduler as Run  # the batch-order hook lives on the scheduler
from conftest import tiny_model

TEXT = "Q: add 1 and 2, then double.\n"
ORDERS = {
    "reversed": lambda rows: rows[::-1],
    "shuffled": lambda rows: random.Random(len(rows)).sample(rows, len(rows)),
}


def run(order=None, **kw):
    Run.batch_order = staticmethod(ORDERS[order]) if order else None
    try:
        return collab.generate(tiny_model(vocab_size=128, eos_token_id=3), TEXT, tokenizer=CharTokenizer(),
                               template=None, seed=7, output_logits=True, **kw)
    finally:
        Run.batch_order = None


def same(a, b, tol=1e-5):
    assert [w.token_ids for w in a.workers] == [w.token_ids for w in b.workers]
    key = lambda e: (e.step, e.kind, -1 if e.worker is None else e.worker, str(e.info))  # noqa: E731
    assert sorted(map(key, a.events)) == sorted(map(key, b.events))  # within a step, in batch order
    for x, y in zip(a.workers, b.workers):  # the rows' sums run in another order: equal up to rounding
        assert all((p - q).abs().max().item() <= tol for p, q in zip(x.logits, y.logits))


SEARCH = {"branching": 2, "beam": 2, "max_depth": 2, "step_tokens": 6, "max_tokens": 60}
CASES = [(s, v) for s in ("hogwild", "self_consistency", "best_of_n") for v in ("full", "none", "step", "combined", "lag:2")]
CASES += [(s, v) for s in ("tree_of_thoughts", "mcts") for v in ("full", "none")]
CASES += [(s, None) for s in ("skeleton", "adaptive", "multiverse", "threadweaver", "apr", "parathinker")]


@pytest.mark.parametrize("strategy, visibility", CASES)
def test_same_seed_same_tokens_in_any_batch_order(strategy, visibility):
    kw = dict(strategy=strategy, visibility=visibility, workers=3, max_new_tokens=16, do_sample=True, temperature=1.0)
    if strategy in ("best_of_n", "tree_of_thoughts", "mcts"):
        kw["scorer"] = lambda text: float(len(set(text)))
    if strategy in ("tree_of_thoughts", "mcts"):
        kw["search"] = SEARCH
    first = run(**kw)
    assert sum(len(w.token_ids) for w in first.workers) > 10
    same(first, run(**kw))
    for order in ORDERS:
        same(first, run(order, **kw))


@pytest.mark.parametrize("strategy", ["multiverse", "adaptive"])
def test_spawns_and_joins_are_the_same_in_any_batch_order(strategy):
    from test_protocols import MULTIVERSE

    scripts = MULTIVERSE if strategy == "multiverse" else [
        "<spawn>add 1 and 2</spawn><spawn>double it</spawn><wait>so 6", "1+2=3", "3*2=6"]
    kw = dict(strategy=strategy, max_new_tokens=200, finisher=False, logits_processor=[Script(len(TEXT), scripts)])
    first = run(**kw)
    assert any(e.kind == "join" for e in first.events) and len(first.workers) >= 3
    for order in ORDERS:
        same(first, run(order, **kw))
