"""Search on the shared cache: forks share their parent's blocks, pruning frees them, and the
Tree-of-Thoughts and MCTS logic keeps what the scorer prefers."""

import math

import numpy as np
import pytest
import torch
from oracle import check_trace
from scripted import CharTokenizer

import collab
from collab.search import MCTS, Expand, SearchOptions, TreeOfThoughts
from conftest import tiny_model

PROMPT = "Q: think\n"


def search_run(strategy, family="llama", scorer=None, **search):
    model = tiny_model(family, vocab_size=128, eos_token_id=3)
    options = {"branching": 2, "beam": 2, "max_depth": 3, "step_tokens": 6, "max_tokens": 120, **search}
    result = collab.generate(
        model, PROMPT, tokenizer=CharTokenizer(), template=None, strategy=strategy, seed=1, output_logits=True,
        scorer=scorer or (lambda text: (sum(map(ord, text)) % 97) / 97), search=options,
    )
    return model, result


def nodes(result):
    return [w for w in result.workers if w.parent is not None and w.role == "worker"]


@pytest.mark.parametrize("strategy", ["tree_of_thoughts", "mcts"])
@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_forks_match_the_plain_model_on_the_materialized_path(strategy, family):
    """No branch sees another, so every K/V was computed on exactly its path: a fork's logits
    equal the plain model run from scratch on prompt + ancestors' steps + its own tokens."""
    model, result = search_run(strategy, family)
    forks = nodes(result)
    assert len(forks) >= 6 and any(w.depth >= 2 for w in forks)  # forks nest
    for w in forks:
        for k, logits in enumerate(w.logits):
            segments, block, own_offset = w.views[k]
            assert [s.offset for s in segments] == [sum(x.length for x in segments[:i]) for i in range(len(segments))]
            path = [t for s in segments for t in result.blocks[s.block][: s.length]]
            assert own_offset == len(path) and block == w.blocks[0]
            seq = path + w.token_ids[:k]
            with torch.no_grad():
                plain = model(torch.tensor([seq])).logits[0, -1].float()
            assert (plain - logits).abs().max().item() < 1e-4, (w.name, k)


@pytest.mark.parametrize("strategy", ["tree_of_thoughts", "mcts"])
def test_a_fork_feeds_no_parent_token_again(strategy):
    model, result = search_run(strategy)
    check_trace(model, result)  # the independent oracle, including forks' first tokens
    assert result.stats.tokens_fed == sum(len(t) for t in result.blocks.values())  # every block fed once
    for w in nodes(result):
        parent = result.workers[w.parent]
        assert w.fork_of[0] == parent.index or (w.fork_of == (-1, 0) and parent.parent is None)
        own = [e for e in result.trace if e[0] != "move" and e[1] == w.index]
        assert own and own[0][3] == 0  # its first feed opens its own block: nothing copied
        assert sum(len(e[4]) for e in own) <= len(w.token_ids)  # only its own sampled tokens


def live_blocks(result, live):
    """Blocks the live tree holds: each live node's own blocks and its ancestors'."""
    blocks = set()
    for i in live:
        w = result.workers[i]
        while w is not None:
            blocks.update(w.blocks)
            w = result.workers[w.parent] if w.parent is not None else None
    return blocks


@pytest.mark.parametrize("strategy", ["tree_of_thoughts", "mcts"])
def test_pruning_frees_blocks_and_memory_is_what_the_live_tree_holds(strategy):
    model, result = search_run(strategy, branching=3, max_depth=6, max_tokens=600)
    P, prompt = 64, len(result.prompt_ids)
    pruned = [w for w in result.workers if w.finish_reason == "pruned"]
    assert pruned, "the search pruned nothing"
    for live, tokens, pages in result.search.memory:
        held = live_blocks(result, live)
        assert tokens == prompt + sum(len(result.blocks[b]) for b in held)
        assert pages == math.ceil(prompt / P) + sum(math.ceil(len(result.blocks[b]) / P) for b in held)
    assert result.search.memory[-1] == ([], prompt, 1)  # all branches released at the end
    per_page = 2 * model.config.num_hidden_layers * 2 * 16 * 4 * P  # K and V, layers, kv heads, head dim, fp32
    written = sum(math.ceil(len(t) / P) for t in result.blocks.values())
    capacity = result.stats.kv_reserved_bytes // per_page
    if strategy == "tree_of_thoughts":  # (MCTS keeps every open node: it may grow it again)
        assert capacity < written, (capacity, written)  # pages were reused, not all kept


def test_tree_of_thoughts_keeps_the_beam_the_scorer_prefers():
    scores = {}

    def scorer(text):
        scores[text] = (sum(map(ord, text)) * 7919 % 101) / 101
        return scores[text]

    _, result = search_run("tree_of_thoughts", scorer=scorer, beam=2, branching=3, max_tokens=400)
    tree = result.search
    by_parent = {}
    for node in tree.nodes.values():
        if node.parent is not None:
            assert node.score == scores[tree.text(node.id)]
            by_parent.setdefault(tree.nodes[node.parent].depth, []).append(node)
    for depth, level in sorted(by_parent.items()):
        grown = {n.parent for n in tree.nodes.values() if n.parent is not None and tree.nodes[n.parent].depth == depth + 1}
        expected = sorted(level, key=lambda n: (-n.score, n.id))
        survivors = {n.id for n in level if n.state != "pruned"}
        assert survivors <= {n.id for n in expected[:2]}  # only the beam survives a level
        assert grown <= survivors
    leaves = [n for n in tree.nodes.values() if n.state in ("open", "terminal")]  # kept to the end
    assert 0 < len(leaves) <= 2
    assert tree.chosen[-1] == min(leaves, key=lambda n: (-n.score, n.id)).id
    assert tree.chosen == tree.path(tree.chosen[-1])


def test_mcts_visits_add_up_and_the_chosen_path_is_most_visited():
    _, result = search_run("mcts", branching=2, max_tokens=200)
    tree = result.search
    scored = [n for n in tree.nodes.values() if n.parent is not None]
    assert tree.root.visits == len(scored)
    for n in scored:
        assert n.visits == 1 + sum(tree.nodes[c].visits for c in n.children)
    for a, b in zip(tree.chosen, tree.chosen[1:]):
        siblings = tree.nodes[a].children
        assert tree.nodes[b].visits == max(tree.nodes[c].visits for c in siblings)
    assert result.answer is not None


# -- the search logic alone, with scripted values ---------------------------------------------

def drive(search, values, rounds=20):
    """Run a search's decisions with scripted values: children get ids in order."""
    tree, next_id = search.tree, [1]
    tree.add(0, None)
    for _ in range(rounds):
        decisions = search.decide(True)
        if not decisions:
            break
        for d in decisions:
            if isinstance(d, Expand):
                ids = list(range(next_id[0], next_id[0] + d.children))
                next_id[0] += d.children
                for i in ids:
                    tree.add(i, d.node)
                search.started(ids)
                for i in ids:
                    search.finished(i, terminal=False)
                    search.scored(i, values(tree, i))
    return tree


def test_tot_logic_follows_the_preferred_branch():
    # the scorer likes the first child of every node and dislikes the rest
    values = lambda tree, i: 1.0 if tree.nodes[tree.nodes[i].parent].children[0] == i else 0.1  # noqa: E731
    tree = drive(TreeOfThoughts(SearchOptions(branching=3, beam=1, max_depth=3)), values)
    assert tree.chosen == [0, 1, 4, 7]
    assert {n.id for n in tree.nodes.values() if n.state == "pruned"} == {2, 3, 5, 6, 8, 9}


def test_an_unscored_step_ranks_below_every_scored_one():
    """A scorer that failed leaves the node unscored (None): the beam keeps scored nodes first,
    even one scored below zero."""
    values = lambda tree, i: None if i == 1 else -5.0  # noqa: E731  (node 1: the scorer failed)
    tree = drive(TreeOfThoughts(SearchOptions(branching=2, beam=1, max_depth=1)), values)
    assert tree.chosen == [0, 2] and tree.nodes[1].state == "pruned"


def test_mcts_logic_spends_its_visits_on_the_preferred_branch():
    values = lambda tree, i: 1.0 if tree.path(i)[1] == 1 else 0.0  # noqa: E731  (everything under node 1 is good)
    tree = drive(MCTS(SearchOptions(branching=2, max_depth=4, iterations=12, exploration=0.5)), values, rounds=30)
    assert tree.chosen[1] == 1
    assert tree.nodes[1].visits > 2 * tree.nodes[2].visits


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    ({"branching": 0}, "branching must be an int >= 1, got 0"),
    ({"beam": 0}, "beam must be an int >= 1"),
    ({"max_tokens": 0}, "max_tokens must be an int >= 1"),
    ({"max_forward_passes": -1}, "max_forward_passes must be an int >= 1"),
    ({"step_tokens": 2.5}, "step_tokens must be an int"),
    ({"exploration": -1}, "exploration must be a number >= 0"),
])
def test_bad_search_options_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        collab.generate(tiny_model(), PROMPT, tokenizer=CharTokenizer(), template=None, strategy="mcts", search=bad)


def test_search_option_misuse():
    with pytest.raises(TypeError, match="unknown search option.*brnaching"):
        SearchOptions.of({"brnaching": 2})
    with pytest.raises(ValueError, match="apply to strategy='tree_of_thoughts'"):
        collab.generate(tiny_model(), PROMPT, tokenizer=CharTokenizer(), template=None, search={"beam": 2})
    with pytest.raises(ValueError, match="pass tokenizer"):
        collab.generate(tiny_model(), [5, 6, 7], template=None, strategy="tree_of_thoughts")
    with pytest.raises(ValueError, match="use 'none' or 'full'"):
        collab.generate(tiny_model(), PROMPT, tokenizer=CharTokenizer(), template=None, strategy="mcts", visibility="step")


@pytest.mark.parametrize("scorer", [lambda t: 1 / 0, lambda t: "high", lambda t: float("nan"), lambda t: float("inf"),
                                    lambda t: -float("inf"), lambda t: np.float64("nan")])
def test_a_failing_scorer_marks_branches_unscored_and_keeps_the_tree(scorer):
    _, result = search_run("tree_of_thoughts", scorer=scorer)
    unscored = [e for e in result.events if e.kind == "unscored"]
    assert unscored and all(result.search.nodes[e.worker].score is None for e in unscored)
    assert all(result.search.nodes[e.worker].error for e in unscored)
    assert len(result.search.nodes) > 3 and result.search.chosen and result.complete


@pytest.mark.parametrize("kind", [np.float32, np.int64, torch.tensor])
def test_a_scorer_may_return_numpy_and_torch_scalars(kind):
    _, plain = search_run("mcts", scorer=lambda t: float(len(t) % 7))
    _, scalar = search_run("mcts", scorer=lambda t: kind(len(t) % 7))
    assert not [e for e in scalar.events if e.kind == "unscored"]
    assert [n.score for n in scalar.search.nodes.values()] == [n.score for n in plain.search.nodes.values()]


def test_search_streams_forks_and_renders_its_tree():
    model = tiny_model(vocab_size=128, eos_token_id=3)
    s = collab.stream(model, PROMPT, tokenizer=CharTokenizer(), template=None, strategy="tree_of_thoughts", seed=0,
                      scorer=len, search=dict(branching=2, beam=1, max_depth=2, step_tokens=4))
    events = list(s)
    spawns = [e for e in events if e.kind == "spawn"]
    assert spawns[0].worker == 0 and len(spawns[0].children) == 2
    text = s.result.search.render()
    assert text.count("\n") == len(s.result.search.nodes) - 1 and "*" in text
    assert "<pre" in s.result.search._repr_html_()
    assert "Search tree" in s.result._repr_html_() and "score=" in s.result._repr_html_()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["tree_of_thoughts", "mcts"])
def test_search_on_the_default_model_with_self_judging(strategy, default_model):
    model, tokenizer = default_model
    result = collab.generate(model, "What is 6 * 7?", tokenizer=tokenizer, strategy=strategy, seed=0, progress=False,
                             search=dict(branching=2, beam=2, max_depth=2, step_tokens=16, max_tokens=96))
    scored = [n for n in result.search.nodes.values() if n.parent is not None]
    assert scored and all(0.0 < n.score < 1.0 for n in scored)  # P(yes) from the judge
    assert any(w.role == "judge" for w in result.workers) and result.search.chosen
    assert result.search.memory[-1][1] == len(result.prompt_ids)  # only the prompt's KV is left
    assert result.answer


@pytest.mark.parametrize("strategy", ["tree_of_thoughts", "mcts"])
@pytest.mark.parametrize("budget", [{"max_forward_passes": 12}, {"max_tokens": 30}])
def test_budgets_end_the_search(strategy, budget):
    """Expansion stops at a budget; running branches stop at their next token (one more pass
    feeds their last tokens), are scored, and the search ends with a chosen path. Tokens
    overshoot by at most two per branch of the last round (its first token, then one more)."""
    _, result = search_run(strategy, **{"max_depth": 8, "max_tokens": 10_000, **budget})
    stats = result.stats
    if "max_forward_passes" in budget:
        assert 12 <= stats.forward_passes <= 12 + 1
    else:
        branches = 2 * 2 if strategy == "tree_of_thoughts" else 2  # beam x branching, or MCTS's width
        assert 30 <= stats.generated_tokens <= 30 + 2 * branches
    assert result.search.chosen and result.complete


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["tree_of_thoughts", "mcts"])
def test_a_self_judged_search_overshoots_the_pass_budget_by_a_judge_step_at_most(strategy, default_model):
    model, tokenizer = default_model
    result = collab.generate(model, "What is 6 * 7?", tokenizer=tokenizer, strategy=strategy, seed=0, progress=False,
                             search=dict(branching=2, beam=2, max_depth=8, step_tokens=8, max_tokens=10_000,
                                         max_forward_passes=12))
    assert any(w.role == "judge" for w in result.workers)
    assert 12 <= result.stats.forward_passes <= 12 + 1 + 1  # one pass feeds the last tokens, one judges them
    assert result.search.chosen and result.complete


def test_uct_counts_the_parents_visits_including_finished_children():
    """N_parent in UCT is the parent's own visit count: it includes the visits of children
    already finished and pruned. Counting only the live children (7 here, not 10) would make
    exploration weaker and pick the well-visited child instead of the barely tried one."""
    mcts = MCTS(SearchOptions(branching=2, exploration=0.5, max_depth=3))
    tree = mcts.tree
    root = tree.add(0, None)
    root.state, root.visits = "expanded", 10
    for id, visits, value, state in ((1, 1, 0.5, "open"), (2, 5, 4.5, "open"), (3, 4, 1.0, "pruned")):
        node = tree.add(id, 0)
        node.visits, node.value, node.state = visits, value, state
    # A: 0.5 + 0.5 * sqrt(ln 10 / 1) = 1.259 beats B: 0.9 + 0.5 * sqrt(ln 10 / 5) = 1.239
    # (with N = 7: 1.198 against 1.212, B would win)
    assert mcts._select(1) == [1]
