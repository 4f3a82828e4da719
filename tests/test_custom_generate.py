"""transformers' entry point: `model.generate(..., custom_generate=collab.CUSTOM_GENERATE,
trust_remote_code=True, workers=...)` runs collab and returns what `model.generate` returns,
token for token what `collab.generate` gives."""

import pytest
import torch
from transformers import GenerationConfig
from transformers.generation.utils import GenerateDecoderOnlyOutput

import collab
from conftest import tiny_model
from scripted import Recorder

P = torch.tensor([list(range(3, 20))])


def hf(model, **kw):
    return model.generate(P, attention_mask=torch.ones_like(P), custom_generate=str(collab.CUSTOM_GENERATE),
                          trust_remote_code=True, **kw)


def test_the_folder_is_shipped_with_the_package():
    assert (collab.CUSTOM_GENERATE / "custom_generate" / "generate.py").is_file()
    assert (collab.CUSTOM_GENERATE / "custom_generate" / "requirements.txt").read_text().strip() == "collab"


def test_model_generate_runs_collab_token_for_token():
    model = tiny_model()
    out = hf(model, workers=3, max_new_tokens=6, do_sample=False, visibility="full")
    want = collab.generate(model, P[0].tolist(), template=None, workers=3, max_new_tokens=6, do_sample=False)
    assert out.shape == (3, P.shape[1] + 6)
    for row, worker in zip(out.tolist(), want.workers):
        assert row == P[0].tolist() + worker.token_ids
    assert model.config._attn_implementation != "collab"


def test_a_generation_config_sampling_and_a_dict_output():
    model = tiny_model()
    config = GenerationConfig(do_sample=True, temperature=0.8, top_k=20, max_new_tokens=5, return_dict_in_generate=True,
                              output_logits=True, pad_token_id=0)
    out = hf(model, generation_config=config, workers=2, seed=7)
    want = collab.generate(model, P[0].tolist(), template=None, workers=2, seed=7, do_sample=True, temperature=0.8,
                           top_k=20, max_new_tokens=5, output_logits=True)
    assert isinstance(out, GenerateDecoderOnlyOutput)
    assert [r[P.shape[1]:] for r in out.sequences.tolist()] == [w.token_ids for w in want.workers]
    assert len(out.logits) == 5 and out.logits[0].shape == (2, model.config.vocab_size)
    assert torch.equal(out.logits[2][1], want.workers[1].logits[2])


def test_finished_workers_are_padded_as_transformers_pads():
    model = tiny_model(eos_token_id=20)
    out = hf(model, workers=2, max_new_tokens=8, do_sample=False, pad_token_id=0)
    want = collab.generate(model, P[0].tolist(), template=None, workers=2, max_new_tokens=8, do_sample=False)
    longest = max(len(w.token_ids) for w in want.workers)
    for row, worker in zip(out.tolist(), want.workers):
        tail = row[P.shape[1]:]
        assert tail == worker.token_ids + [0] * (longest - len(worker.token_ids))


def test_max_length_counts_the_prompt_and_options_without_a_meaning_are_refused():
    out = hf(tiny_model(), workers=2, max_length=P.shape[1] + 4, do_sample=False)
    assert out.shape == (2, P.shape[1] + 4)
    with pytest.raises(TypeError, match="stopping_criteria= has no meaning"):
        hf(tiny_model(), workers=2, max_new_tokens=3, stopping_criteria=[lambda *a, **k: False])


def test_a_streamer_sees_the_prompt_then_the_first_workers_tokens():
    rec = Recorder()
    out = hf(tiny_model(), workers=2, max_new_tokens=4, do_sample=False, streamer=rec)
    assert rec.calls[0] == P.tolist() and rec.ended
    assert [c[0] for c in rec.calls[1:]] == out[0, P.shape[1]:].tolist()
