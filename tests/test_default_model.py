"""The embedded default model (SmolLM2-135M-Instruct): exactness, templates, CLI, caching."""

import os
import subprocess
import sys

import pytest
import torch
from oracle import replay

import collab

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    return collab.load()


def test_default_model_matches_plain_model(smol):
    model, tokenizer = smol
    prompt = tokenizer("The three primary colors are", add_special_tokens=False).input_ids
    result = collab.generate(
        model, prompt, template=None, workers=3, max_new_tokens=5, do_sample=True, seed=0,
        ignore_eos=True, output_logits=True,
    )
    expected = replay(model, result)
    error = max((expected[(w.index, k)] - l).abs().max().item() for w in result.workers for k, l in enumerate(w.logits))
    assert error <= 1e-3


def test_none_equals_hf_generate_on_default_model(smol):
    model, tokenizer = smol
    prompt = tokenizer("Write a haiku about the sea.", add_special_tokens=False).input_ids
    result = collab.generate(model, prompt, template=None, workers=2, visibility="none", max_new_tokens=12, do_sample=False, ignore_eos=True)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=12, min_new_tokens=12, do_sample=False)
    expected = out[0, len(prompt):].tolist()
    assert all(w.token_ids == expected for w in result.workers)


def test_default_template_gives_named_workers(smol):
    model, tokenizer = smol
    result = collab.generate(model, "What is 12 + 30?", tokenizer=tokenizer, workers=2, max_new_tokens=16, seed=1)
    names = [w.name for w in result.workers]
    assert names == ["Alice", "Bob"]
    headers = [tokenizer.decode(w.header_ids) for w in result.workers]
    assert headers[0] != headers[1] and "Alice" in headers[0] and "Bob" in headers[1]
    prompt_text = tokenizer.decode(result.prompt_ids)
    assert "solving the same task together" in prompt_text and "What is 12 + 30?" in prompt_text
    assert all(w.text for w in result.workers)
    assert "[Alice]" in result.text and result.stats.tokens_per_s > 0


def test_chat_messages_and_model_none():
    result = collab.generate(None, [{"role": "user", "content": "Name a fruit."}], workers=1, max_new_tokens=4)
    assert len(result.workers[0].token_ids) >= 1


def test_cli_prints_workers_and_stats():
    out = subprocess.run(
        [sys.executable, "-m", "collab", "What is 2 + 2?", "--max-new-tokens", "8", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "=== Alice" in out.stdout and "=== Bob" in out.stdout and "forward passes" in out.stdout


def test_cli_bad_flag_is_a_clear_error():
    out = subprocess.run(
        [sys.executable, "-m", "collab", "hi", "--workers", "0"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2 and "workers=0 is out of range: give an int from 1 to 64" in out.stderr


def test_conversion_cache_honours_env_and_two_first_uses_at_once(tmp_path):
    # Two processes on a fresh cache (two evaluations started side by side) both convert; the one
    # that finishes second uses the first one's copy instead of failing.
    env = dict(os.environ, COLLAB_CACHE=str(tmp_path), OMP_NUM_THREADS="1")
    code = "import collab.models as m; print(m.default_model_path())"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert out.strip() == str(tmp_path / "SmolLM2-135M-Instruct")
    assert (tmp_path / "SmolLM2-135M-Instruct" / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".convert-")]


@pytest.mark.parametrize("strategy", list(collab.STRATEGIES))
def test_every_preset_runs_end_to_end(smol, strategy):
    model, tokenizer = smol
    kw = {"scorer": lambda text: -len(text)} if strategy == "best_of_n" else {}
    if strategy in ("tree_of_thoughts", "mcts"):  # the model judges its own steps
        kw["search"] = {"branching": 2, "beam": 2, "max_depth": 2, "step_tokens": 8, "max_tokens": 48}
    r = collab.generate(model, "What is 6 times 7?", tokenizer=tokenizer, strategy=strategy, workers=2,
                        max_new_tokens=16, finisher_tokens=8, seed=0, **kw)
    assert r.complete and r.strategy == strategy
    assert all(w.finish_reason for w in r.workers)
    assert r.stats.tokens_fed == sum(len(t) for t in r.blocks.values())  # each stored token fed once
    if strategy not in ("tree_of_thoughts", "mcts"):  # (searches free pruned branches)
        assert r.stats.kv_tokens == r.stats.tokens_fed
    if strategy in ("self_consistency", "best_of_n"):
        assert len(r.answers or r.scores) == 2
    if strategy in ("hogwild", "adaptive"):
        assert r.finisher is not None and r.answer is not None
    if strategy == "parathinker":
        assert [w.head for w in r.workers[1:]] == ["<think1>", "<think2>"] and r.workers[0].join_steps


def test_a_pathlib_path_loads_like_its_string(smol):
    from pathlib import Path

    from collab.models import default_model_path

    model, _ = collab.load(Path(default_model_path()), dtype="float32")
    assert model is smol[0]  # the same cached load as the string form
    with pytest.raises(ValueError, match="no model folder at"):
        collab.load(Path("/no/such/dir"))
