"""Bad input gets a clear error that names the value and the fix, before any compute."""

import pytest
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

import collab
from conftest import tiny_model

PROMPT = list(range(3, 40))


def no_compute(model, match, exc=ValueError, prompt=PROMPT, **kw):
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    kw = {"template": None, "max_new_tokens": 4, **kw}
    with pytest.raises(exc, match=match):
        collab.generate(model, prompt, **kw)
    assert calls == [], "compute ran before the error"


def test_absolute_position_model_refused():
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).eval()
    no_compute(model, r"'gpt2' is not supported: it uses learned absolute position embeddings.*Supported families")


def test_encoder_model_refused():
    model = BertForMaskedLM(BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=64))
    no_compute(model.eval(), r"'bert' is not supported: it is a bidirectional encoder")


@pytest.mark.parametrize("rope", ["dynamic", "longrope"])
def test_rope_types_that_depend_on_call_length_refused(rope):
    params = {"rope_type": rope, "rope_theta": 10000.0, "factor": 2.0}
    if rope == "longrope":
        params.update(short_factor=[1.0] * 8, long_factor=[2.0] * 8, original_max_position_embeddings=64)
    model = tiny_model(rope_parameters=params)
    no_compute(model, rf"RoPE type '{rope}' is not supported: .*block-local positions")


def test_sliding_window_shorter_than_view_refused():
    model = tiny_model("mistral", sliding_window=16)
    no_compute(model, r"sliding window of 16 tokens.*lower max_new_tokens or workers")


def test_context_overflow_refused():
    model = tiny_model(max_position_embeddings=64)
    no_compute(model, r"views of up to 77 tokens, beyond the model's context of 64", workers=2, max_new_tokens=20)
    collab.generate(model, PROMPT, template=None, workers=2, max_new_tokens=2)  # fits: runs


@pytest.mark.parametrize("workers,match", [(0, "workers=0 is out of range: give an int from 1 to 64"), (65, "workers=65 is out"), (-1, "workers=-1 is out")])
def test_worker_count_out_of_range(workers, match):
    no_compute(tiny_model(), match, workers=workers)


@pytest.mark.parametrize("n", [0, -5])
def test_non_positive_budget(n):
    no_compute(tiny_model(), rf"max_new_tokens={n} is out of range: give a positive number of tokens", max_new_tokens=n)


@pytest.mark.parametrize("prompt", ["", "   ", []])
def test_empty_prompt(prompt):
    no_compute(tiny_model(), "the prompt is empty", prompt=prompt)


def test_text_without_tokenizer():
    no_compute(tiny_model(), "needs a tokenizer: pass tokenizer=", prompt="hello")
    no_compute(tiny_model(), "needs a tokenizer", template="default")


def test_unknown_visibility_lists_valid_ones():
    no_compute(tiny_model(), r"unknown visibility 'ful'; valid visibilities are 'full', 'none'", visibility="ful")


def test_unknown_template():
    no_compute(tiny_model(), r"unknown template 'chat'; valid templates are None, 'default'", template="chat")


def test_messages_in_raw_mode():
    no_compute(tiny_model(), "chat messages need a chat template", prompt=[{"role": "user", "content": "hi"}])


def test_wrong_prompt_type():
    no_compute(tiny_model(), "prompt must be a string, chat messages or token ids", exc=TypeError, prompt=3.5)
