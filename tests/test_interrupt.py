"""Nothing generated is lost when a run is interrupted or a callback fails."""

import pytest
import torch

import collab
from conftest import tiny_model

PROMPT = list(range(3, 30))


def stop_at(step, exc):
    def callback(update):
        if update.step == step:
            raise exc

    return callback


def no_cache_attached(model):
    """No module of the model keeps a reference to a collab cache after a run."""
    from collab.cache import SharedKVCache

    return not any(isinstance(v, SharedKVCache) for m in model.modules() for v in vars(m).values())


def test_callback_exception_keeps_partial_result():
    model = tiny_model()
    with pytest.raises(RuntimeError, match="boom") as info:
        collab.generate(model, PROMPT, template=None, workers=3, max_new_tokens=20, callback=stop_at(4, RuntimeError("boom")))
    result = info.value.result
    assert not result.complete
    assert all(len(w.token_ids) == 5 for w in result.workers)  # the prefill's token + steps 1..4
    assert all(w.finish_reason == "error" for w in result.workers)
    assert result.events[-1].kind == "error"
    assert "exc.result" in "".join(info.value.__notes__)
    assert model.config._attn_implementation != "collab" and no_cache_attached(model)


def test_keyboard_interrupt_raises_interrupted_with_result():
    model = tiny_model()
    with pytest.raises(collab.Interrupted) as info:
        collab.generate(model, PROMPT, template=None, workers=2, max_new_tokens=20, callback=stop_at(2, KeyboardInterrupt()))
    assert isinstance(info.value, KeyboardInterrupt)  # scripts still stop on Ctrl-C
    result = info.value.result
    assert [len(w.token_ids) for w in result.workers] == [3, 3]
    assert result.stats.generated_tokens == 6 and result.stats.kv_tokens == len(PROMPT) + 4
    assert model.config._attn_implementation != "collab" and no_cache_attached(model)


def test_partial_tokens_match_a_full_run():
    model = tiny_model()
    full = collab.generate(model, PROMPT, template=None, workers=2, max_new_tokens=10, do_sample=True, seed=4)
    with pytest.raises(collab.Interrupted) as info:
        collab.generate(
            model, PROMPT, template=None, workers=2, max_new_tokens=10, do_sample=True, seed=4,
            callback=stop_at(5, KeyboardInterrupt()),
        )
    for part, whole in zip(info.value.result.workers, full.workers):
        assert part.token_ids == whole.token_ids[: len(part.token_ids)]


def test_failing_logits_processor_keeps_partial_result():
    model = tiny_model()
    calls = []

    def flaky(input_ids, scores):
        calls.append(1)
        if len(calls) == 5:
            raise ZeroDivisionError("processor failed")
        return scores

    with pytest.raises(ZeroDivisionError) as info:
        collab.generate(model, PROMPT, template=None, workers=2, max_new_tokens=10, logits_processor=[flaky])
    assert sum(len(w.token_ids) for w in info.value.result.workers) == 4
    model(torch.tensor([PROMPT]))  # the model is usable afterwards


def test_ctrl_c_on_the_command_line_prints_what_was_written_and_exits_130(monkeypatch, capsys):
    from scripted import CharTokenizer, Script

    import collab.__main__ as cli
    import collab.runtime as runtime

    model, tok = tiny_model(vocab_size=128, eos_token_id=3), CharTokenizer()
    monkeypatch.setattr(collab.models, "load", lambda *a, **kw: (model, tok))
    real = runtime.Run.steps

    def steps(self):  # the user presses Ctrl-C after a few steps
        for update in real(self):
            if update.step == 6:
                raise KeyboardInterrupt
            yield update

    monkeypatch.setattr(runtime.Run, "steps", steps)
    from collab import api

    forced = api.generate
    monkeypatch.setattr(api, "generate", lambda *a, **kw: forced(*a, **{**kw, "template": None},
                                                                  logits_processor=[Script(len(a[1]), ["hello there"])]))
    assert cli.main(["Q: ", "--workers", "2", "--raw", "--no-progress", "--max-new-tokens", "40"]) == 130
    out, err = capsys.readouterr()
    assert out.count("interrupted") >= 2 and "hello " in out and "partial (interrupted)" in out
    assert "interrupted" in err
