"""Sampling goes through transformers' processors, per worker, reproducibly."""

import pytest
import torch

import collab
from conftest import tiny_model

PROMPT = list(range(3, 20))


def gen(model, **kw):
    kw = {"template": None, "workers": 3, "max_new_tokens": 8, "ignore_eos": True, **kw}
    return collab.generate(model, PROMPT, **kw)


def tokens(result):
    return [w.token_ids for w in result.workers]


def test_same_seed_same_tokens_different_seed_different():
    model = tiny_model()
    a = gen(model, do_sample=True, seed=1)
    b = gen(model, do_sample=True, seed=1)
    c = gen(model, do_sample=True, seed=2)
    assert tokens(a) == tokens(b) and a.seed == 1
    assert tokens(a) != tokens(c)
    assert len({tuple(t) for t in tokens(a)}) > 1  # workers draw from their own generators


def test_seed_is_recorded_when_drawn():
    model = tiny_model()
    r = gen(model, do_sample=True)
    assert isinstance(r.seed, int)
    assert tokens(gen(model, do_sample=True, seed=r.seed)) == tokens(r)


def test_worker_stream_independent_of_batch_size_under_none():
    model = tiny_model()
    three = gen(model, do_sample=True, seed=5, visibility="none")
    one = gen(model, do_sample=True, seed=5, visibility="none", workers=1)
    assert three.workers[0].token_ids == one.workers[0].token_ids


@pytest.mark.parametrize("kw", [{"top_k": 1}, {"top_p": 1e-6}, {"temperature": 1e-4}])
def test_warpers_that_collapse_to_greedy(kw):
    model = tiny_model()
    assert tokens(gen(model, do_sample=True, seed=3, **kw)) == tokens(gen(model, do_sample=False))


def test_repetition_penalty_changes_greedy_output():
    model = tiny_model()
    assert tokens(gen(model, repetition_penalty=5.0, max_new_tokens=16)) != tokens(gen(model, max_new_tokens=16))


def test_user_logits_processor_runs_per_worker_on_prompt_plus_own_tokens():
    model = tiny_model()
    seen = []

    def ban_and_record(input_ids, scores):
        seen.append(input_ids[0].tolist())
        scores = scores.clone()
        scores[:, 7] = -float("inf")
        return scores

    r = gen(model, logits_processor=[ban_and_record], output_logits=True)
    assert len(seen) == 3 * 8  # one call per worker per sampled token
    assert all(7 not in t for t in tokens(r))
    w = r.workers[1]
    assert PROMPT + w.token_ids[:3] in seen


@pytest.mark.parametrize("bad", [{"temperature": -1.0}, {"top_p": 1.5}, {"top_k": -2}])
def test_bad_sampling_values_are_refused_before_compute(bad):
    model = tiny_model()
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError):
        gen(model, do_sample=True, **bad)
    assert calls == []


class InPlace:
    """Edits the scores it is given in place (as `scores /= t` or `scores[:, i] = -inf` do) and
    records what each call saw first."""

    def __init__(self):
        self.seen = []

    def __call__(self, input_ids, scores):
        self.seen.append(scores.clone())
        scores[0, scores.argmax()] = float("-inf")
        scores /= 2
        return scores


def test_a_processor_that_edits_in_place_never_reaches_another_worker():
    model = tiny_model()
    edit = InPlace()
    # raw mode: three roots draw their first token from the prompt's one last row
    result = collab.generate(model, list(range(3, 20)), template=None, workers=3, max_new_tokens=3, logits_processor=[edit],
                             output_logits=True, seed=0)
    first = edit.seen[:3]
    assert all(torch.equal(first[0], s) for s in first[1:])  # each worker got the row as the model gave it
    assert all(torch.equal(w.logits[0], result.workers[0].logits[0]) for w in result.workers)
    assert len({w.token_ids[0] for w in result.workers}) == 1  # greedy on identical rows: one choice


@pytest.mark.parametrize("bad, match", [
    (lambda ids, s: None, "returned NoneType, not the scores"),
    (lambda ids, s: s[:, :10], "returned scores of shape \\(1, 10\\)"),
    (lambda ids, s: s * float("nan"), "left no token to draw"),
    (lambda ids, s: torch.full_like(s, float("-inf")), "left no token to draw"),
])
def test_a_processor_returning_no_usable_scores_is_named_and_keeps_the_partial_result(bad, match):
    calls = []

    def processor(ids, scores):
        calls.append(1)
        return scores if len(calls) < 4 else bad(ids, scores)

    with pytest.raises(ValueError, match=f"logits processor processor {match}") as info:
        collab.generate(tiny_model(), list(range(3, 20)), template=None, workers=2, max_new_tokens=8,
                        logits_processor=[processor], seed=0)
    assert info.value.result is not None and any(w.token_ids for w in info.value.result.workers)
