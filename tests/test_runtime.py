"""Counting what the runtime does: forwards, prefill, fed tokens, stored K/V."""

import pytest
import torch

import collab
from conftest import tiny_model

PROMPT = list(range(3, 40))


def counted(model):
    calls = []
    model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    return calls


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_one_forward_per_step_and_one_prefill(workers):
    model = tiny_model()
    calls = counted(model)
    n = 9
    result = collab.generate(model, PROMPT, template=None, workers=workers, max_new_tokens=n, ignore_eos=True)
    # Raw mode: the prefill gives every worker its first token, then one forward per further token.
    assert len(calls) == result.stats.forward_passes == n
    assert calls[0] == len(PROMPT) and all(c == workers for c in calls[1:])
    assert all(len(w.token_ids) == n for w in result.workers)


def test_kv_tokens_are_prompt_plus_fed_tokens_once():
    model = tiny_model()
    calls = counted(model)
    result = collab.generate(model, PROMPT, template=None, workers=3, max_new_tokens=7, ignore_eos=True)
    fed = sum(len(w.feed_steps) for w in result.workers)
    assert result.stats.kv_tokens == len(PROMPT) + fed == sum(calls) == result.stats.tokens_fed
    # The last sampled token of each worker is never fed: nothing reads it.
    assert all(len(w.feed_steps) == len(w.token_ids) - 1 for w in result.workers)
    per_token = 2 * model.config.num_hidden_layers * model.config.num_key_value_heads * 16 * 4
    assert result.stats.kv_bytes == result.stats.kv_tokens * per_token


def test_eos_stops_a_worker_and_is_not_fed():
    model = tiny_model()
    eos = model.generation_config.eos_token_id

    class ForceEos:
        def __init__(self):
            self.calls = 0

        def __call__(self, input_ids, scores):
            self.calls += 1
            if self.calls == 3:  # worker 0's third token
                scores = torch.full_like(scores, -1e9)
                scores[:, eos] = 0
            return scores

    result = collab.generate(
        model, PROMPT, template=None, workers=1, max_new_tokens=8, logits_processor=[ForceEos()]
    )
    w = result.workers[0]
    assert w.token_ids[-1] == eos and len(w.token_ids) == 3
    assert w.finish_reason == "eos" and len(w.feed_steps) == 2
    ignored = collab.generate(
        model, PROMPT, template=None, workers=1, max_new_tokens=8, logits_processor=[ForceEos()], ignore_eos=True
    )
    assert len(ignored.workers[0].token_ids) == 8 and ignored.workers[0].token_ids[2] == eos


def test_finished_worker_stays_visible():
    model = tiny_model()
    result = collab.generate(
        model, PROMPT, template=None, workers=2, max_new_tokens=6, ignore_eos=True, output_logits=True
    )
    assert [e.kind for e in result.events].count("done") == 2
    assert result.complete and result.stats.steps == 5


def test_arena_grows_by_doubling_without_losing_keys():
    from collab.blocks import BlockTable

    table = BlockTable(page_size=4, capacity=2)
    block = table.new_block(0).id
    for _ in range(5):
        table.append(block, 3)
    assert table.capacity == 4 and table.pages_in_use == 4
    other = table.new_block(1).id
    table.append(other, 1)
    assert table.capacity == 8
    table.free_block(block)
    assert table.pages_in_use == 1 and table.tokens == 1


def test_model_attention_is_restored():
    model = tiny_model()
    before = model.config._attn_implementation
    collab.generate(model, PROMPT, template=None, workers=2, max_new_tokens=3)
    assert model.config._attn_implementation == before
    model(torch.tensor([PROMPT]))  # still usable on its own
