"""transformers habits: tensor prompts, attention masks, GenerationConfig, eos and pad ids and
streamers mean in collab what they mean in `model.generate`; options that have no meaning in
collab are refused with collab's equivalent, before any compute."""

import pytest
import torch
from transformers import GenerationConfig, TextStreamer

import collab
from conftest import tiny_model
from scripted import CharTokenizer, Recorder

P = list(range(3, 20))
MODEL = tiny_model()


def tokens(result):
    return [w.token_ids for w in result.workers]


@pytest.mark.parametrize("form", [
    lambda: dict(prompt=torch.tensor(P)), lambda: dict(prompt=torch.tensor([P])),
    lambda: dict(input_ids=torch.tensor([P]), attention_mask=torch.ones(1, len(P), dtype=torch.long)),
    lambda: dict(prompt=P, pad_token_id=0),
])
def test_tensor_prompts_masks_and_pad_ids_run_as_the_ids_they_hold(form):
    want = collab.generate(MODEL, P, template=None, workers=2, max_new_tokens=5, seed=0)
    got = collab.generate(MODEL, template=None, workers=2, max_new_tokens=5, seed=0, **form())
    assert tokens(got) == tokens(want)


def test_a_generation_config_gives_sampling_the_budget_and_eos():
    config = GenerationConfig(do_sample=True, temperature=0.9, top_k=10, max_new_tokens=7)
    got = collab.generate(MODEL, P, template=None, workers=2, seed=4, generation_config=config)
    want = collab.generate(MODEL, P, template=None, workers=2, seed=4, do_sample=True, temperature=0.9, top_k=10,
                           max_new_tokens=7)
    assert tokens(got) == tokens(want) and all(len(t) == 7 for t in tokens(got))
    short = collab.generate(MODEL, P, template=None, workers=2, seed=4, generation_config=config, max_new_tokens=3)
    assert all(len(t) == 3 for t in tokens(short))  # an explicit option wins over the config
    end = want.workers[0].token_ids[3]
    stopped = collab.generate(MODEL, P, template=None, workers=2, seed=4, generation_config=config, eos_token_id=[end])
    first = stopped.workers[0]
    assert first.token_ids == want.workers[0].token_ids[:first.token_ids.index(end) + 1] and first.finish_reason == "eos"


def test_streamers_receive_the_prompt_then_each_root_workers_tokens():
    one, two = Recorder(), Recorder()
    result = collab.generate(MODEL, P, template=None, workers=2, max_new_tokens=5, seed=0, streamer=[one, two])
    for rec, worker in zip((one, two), result.workers):
        assert rec.calls[0] == [P] and rec.ended
        assert [v[0] for v in rec.calls[1:]] == worker.token_ids


def test_a_transformers_text_streamer_prints_the_first_workers_text(capsys):
    model = tiny_model(vocab_size=128, eos_token_id=3)
    tok = CharTokenizer()
    result = collab.generate(model, "Q: ", tokenizer=tok, template=None, workers=2, max_new_tokens=8, seed=1,
                             streamer=TextStreamer(tok, skip_prompt=True))
    assert capsys.readouterr().out.strip() == result.workers[0].text.strip()


@pytest.mark.parametrize("option, match", [
    (dict(max_length=30), "max_length= is a transformers generate option: .*max_new_tokens"),
    (dict(num_return_sequences=3), "pass workers=N"),
    (dict(return_dict_in_generate=True), "collab.Result"),
    (dict(num_beams=4), "tree_of_thoughts"),
    (dict(wrkers=2), "unknown option 'wrkers'; did you mean 'workers'"),
])
@pytest.mark.parametrize("call", [collab.generate, collab.stream])
def test_options_without_a_meaning_in_collab_name_its_equivalent(call, option, match):
    with pytest.raises(TypeError, match=match):
        call(MODEL, P, template=None, **option)


@pytest.mark.parametrize("bad, match", [
    (dict(prompt=torch.tensor([P, P])), "shape \\(2, 17\\): collab's workers share one prompt"),
    (dict(prompt=P, attention_mask=torch.tensor([[0] + [1] * 16])), "collab does not pad"),
    (dict(prompt=P, input_ids=torch.tensor(P)), "pass the prompt once"),
    (dict(prompt=P, generation_config={"max_new_tokens": 3}), "give a transformers GenerationConfig"),
    (dict(prompt=P, eos_token_id="eos"), "eos_token_id='eos'"),
    (dict(prompt=P, streamer=object()), "has no put\\(\\)/end\\(\\)"),
])
def test_misused_habits_are_refused_before_compute(bad, match):
    calls = []
    hook = MODEL.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises((TypeError, ValueError), match=match):
            collab.generate(MODEL, template=None, max_new_tokens=4, **bad)
    finally:
        hook.remove()
    assert calls == []


def test_a_question_in_the_models_place_is_said_so():
    with pytest.raises(TypeError, match="looks like a prompt: the model comes first"):
        collab.generate("What is 2+3?")
