"""The one validation layer (`collab.options`), fuzzed over every option of `generate` and
`stream`: a badly typed or out-of-range value is a TypeError or ValueError that names the
option, raised before any forward pass; numpy and torch scalars work as the numbers they hold."""

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import collab
from collab.options import SPEC
from conftest import tiny_model

PROMPT = list(range(3, 20))
MODEL = tiny_model()
CALLS = []
MODEL.register_forward_pre_hook(lambda *a: CALLS.append(1))
BAD = {  # values no option of its kind accepts
    "int": ["3", 2.5, float("nan"), float("inf"), True, [1], -1, None],
    "float": ["0.7", float("nan"), float("inf"), -float("inf"), True, [0.5], -1.0],
    "bool": ["false", "no", 0, 1, 1.0, [True]],
    "callable": [3, "f", [print]],
    "str": [3, 2.5, True, ["auto"]],
}


def bad_values(name):
    kind, optional, low, high, _ = SPEC[name]
    values = [v for v in BAD[kind] if not (v is None and optional)]
    if kind in ("int", "float") and low is not None and low > 0:
        values.append(low - 1)
    if kind == "int" and low == 0:  # -1 is below every int option's range
        values = [v for v in values if v != -1] + [-1]
    if high is not None:
        values.append(high * 2 + 1)
    return values


def test_every_typed_option_of_generate_is_in_the_layer():
    options = set(inspect.signature(collab.generate).parameters) - {"model", "prompt", "transformers_options"}
    assert set(SPEC) <= options
    untyped = options - set(SPEC)  # checked by their own resolvers, each with a row in the README's table
    assert untyped == {"tokenizer", "visibility", "protocol", "limits", "search", "logits_processor", "kv_cap",
                       "generation_config", "eos_token_id", "streamer", "input_ids", "attention_mask"}  # collab.habits


@given(data=st.data())
def test_a_bad_value_for_any_option_names_it_before_any_compute(data):
    name = data.draw(st.sampled_from(sorted(SPEC)))
    value = data.draw(st.sampled_from(bad_values(name)))
    call = data.draw(st.sampled_from([collab.generate, collab.stream]))
    CALLS.clear()
    with pytest.raises((TypeError, ValueError)) as info:
        call(MODEL, PROMPT, template=None, max_new_tokens=2, **{name: value})
    assert name in str(info.value) and CALLS == []


@pytest.mark.parametrize("value", ["none", 3, ["max_workers"]])
def test_limits_and_search_of_the_wrong_type(value):
    with pytest.raises(TypeError, match="limits="):
        collab.generate(MODEL, PROMPT, template=None, limits=value)
    with pytest.raises(TypeError, match="search="):
        collab.generate(MODEL, PROMPT, template=None, search=value)


def test_numpy_and_torch_scalars_are_the_numbers_they_hold():
    plain = collab.generate(MODEL, PROMPT, template=None, workers=2, max_new_tokens=5, seed=3, do_sample=True,
                            temperature=0.8, top_k=20, top_p=0.9)
    for conv in (np.int64, np.float32, lambda v: torch.tensor(v)):
        ints = (lambda v: conv(v)) if conv is not np.float32 else np.int32
        got = collab.generate(MODEL, PROMPT, template=None, workers=ints(2), max_new_tokens=ints(5), seed=ints(3),
                              do_sample=True, temperature=np.float64(0.8), top_k=ints(20), top_p=torch.tensor(0.9),
                              page_size=ints(64), kv_cap=np.int64(10**8))
        assert [w.token_ids for w in got.workers] == [w.token_ids for w in plain.workers]
