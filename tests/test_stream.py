"""collab.stream: typed events that add up to the result, and a clean stop when closed early."""

import pytest
import torch
from scripted import CharTokenizer, Script

import collab
from collab import events as ev
from conftest import tiny_model

PROMPT = list(range(3, 30))


def test_token_deltas_add_up_to_generate():
    model = tiny_model()
    options = dict(template=None, workers=3, max_new_tokens=12, do_sample=True, seed=5)
    full = collab.generate(model, PROMPT, **options)
    s = collab.stream(model, PROMPT, **options)
    got = list(s)
    tokens = {i: [e.token_id for e in got if isinstance(e, ev.TokenDelta) and e.worker == i] for i in range(3)}
    assert tokens == {w.index: w.token_ids for w in full.workers}
    assert isinstance(got[-1], ev.Finished) and isinstance(got[-2], ev.Answer)
    assert got[-1].result is s.result and s.result.complete
    assert got[-1].stats.generated_tokens == 36
    done = [e for e in got if isinstance(e, ev.Done)]
    assert sorted(e.worker for e in done) == [0, 1, 2] and {e.reason for e in done} <= {"eos", "max_new_tokens"}


def test_text_deltas_join_to_each_workers_text():
    model = tiny_model(vocab_size=128, eos_token_id=3)
    tok = CharTokenizer()
    s = collab.stream(model, "Q: ", tokenizer=tok, workers=2, template=None, max_new_tokens=20,
                      logits_processor=[Script(3, ["hello world"])])
    texts = {}
    for e in s:
        if e.kind == "token":
            texts[e.worker] = texts.get(e.worker, "") + e.text
    assert texts == {0: "hello world", 1: "hello world"}  # EOS (special) is not text


def test_a_character_cut_by_the_budget_still_reaches_the_deltas():
    """The default tokenizer spells ' 日' as ' \\xe6' + two more byte tokens: a budget of two
    tokens ends mid-character. The held-back text is flushed with the worker's last token."""
    from transformers import AutoTokenizer

    from collab.models import default_model_path

    tok = AutoTokenizer.from_pretrained(default_model_path())
    ids = tok(" 日本", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids[:2]).endswith("\ufffd")  # (the premise: two tokens end mid-character)

    def force(input_ids, scores):
        forced = torch.full_like(scores, float("-inf"))
        forced[:, ids[input_ids.shape[1] - len(PROMPT)]] = 0.0
        return forced

    model = tiny_model(vocab_size=len(tok))
    s = collab.stream(model, PROMPT, tokenizer=tok, template=None, max_new_tokens=2, logits_processor=[force])
    got = list(s)
    for worker in s.result.workers:
        deltas = [e.text for e in got if isinstance(e, ev.TokenDelta) and e.worker == worker.index]
        assert worker.token_ids == ids[:2] and deltas[0] == ""
        assert "".join(deltas) == worker.text == tok.decode(ids[:2])


def test_spawn_join_done_and_answer_events_with_a_protocol():
    from test_protocols import MULTIVERSE, PROMPT as TEXT

    model = tiny_model(vocab_size=128, eos_token_id=3)
    s = collab.stream(model, TEXT, tokenizer=CharTokenizer(), strategy="multiverse", template=None,
                      max_new_tokens=200, seed=0, logits_processor=[Script(len(TEXT), MULTIVERSE)])
    kinds = [e.kind for e in s]
    spawn = next(e for e in s.result.events if e.kind == "spawn")
    assert kinds.index("spawn") < kinds.index("join") < kinds.index("answer") < kinds.index("finished")
    typed = [e for e in collab.stream(model, TEXT, tokenizer=CharTokenizer(), strategy="multiverse", template=None,
                                      max_new_tokens=200, seed=0, logits_processor=[Script(len(TEXT), MULTIVERSE)])
             if isinstance(e, ev.Spawn)]
    assert typed[0].children == tuple(spawn.info["children"]) and typed[0].heads == ("\n<Path>\n1:", "\n<Path>\n2:")
    assert typed[0].names == ("Alice.1", "Alice.2")


def test_closing_early_stops_and_keeps_the_tokens():
    model = tiny_model()
    options = dict(template=None, workers=2, max_new_tokens=30, do_sample=True, seed=2)
    full = collab.generate(model, PROMPT, **options)
    s = collab.stream(model, PROMPT, **options)
    seen = 0
    for e in s:
        seen += e.kind == "token"
        if seen == 10:
            break
    assert model.config._attn_implementation != "collab"  # between steps the model is as it was
    result = s.close()
    assert not result.complete and result.events[-1].kind == "stopped"
    assert [len(w.token_ids) for w in result.workers] == [5, 5]
    for part, whole in zip(result.workers, full.workers):
        assert part.token_ids == whole.token_ids[:5] and part.finish_reason == "stopped"
    assert list(s) == []  # a closed stream yields nothing more
    model(torch.tensor([PROMPT]))


def test_with_block_closes_and_model_is_usable_mid_stream():
    model = tiny_model()
    with collab.stream(model, PROMPT, template=None, workers=2, max_new_tokens=30) as s:
        next(iter(s))
        plain = model(torch.tensor([PROMPT])).logits  # another call while the stream is paused
        assert plain.shape[1] == len(PROMPT)
    assert not s.result.complete and s.result.stats.generated_tokens == 2


def test_errors_in_a_processor_carry_the_partial_result():
    model = tiny_model()
    calls = []

    def flaky(input_ids, scores):
        calls.append(1)
        if len(calls) == 7:
            raise ValueError("processor failed")
        return scores

    s = collab.stream(model, PROMPT, template=None, workers=2, max_new_tokens=10, logits_processor=[flaky])
    with pytest.raises(ValueError, match="processor failed") as info:
        list(s)
    assert info.value.result is s.result and not s.result.complete
    assert sum(len(w.token_ids) for w in s.result.workers) == 6
    assert model.config._attn_implementation != "collab"


def test_unknown_option_is_named_before_any_compute():
    with pytest.raises(TypeError, match="unknown option .wrkers.; did you mean .workers."):
        collab.stream(tiny_model(), PROMPT, wrkers=2)
    with pytest.raises(ValueError, match="workers"):
        collab.stream(tiny_model(), PROMPT, template=None, workers=0)


def test_a_failing_scorer_at_the_end_carries_the_result_once():
    """best_of_n scores after the last step: its error carries the whole (partial) result, marked
    once ("error", not "stopped" as well)."""
    s = collab.stream(tiny_model(), PROMPT, template=None, strategy="best_of_n", workers=2, max_new_tokens=5,
                      seed=0, ignore_eos=True, scorer=lambda text: 1 / 0)
    with pytest.raises(ZeroDivisionError) as info:
        list(s)
    result = info.value.result
    assert result is s.result and not result.complete
    assert [e.kind for e in result.events if e.kind in ("error", "stopped")] == ["error"]
    assert all(len(w.token_ids) == 5 for w in result.workers)


def test_the_callback_and_the_progress_bar_are_honoured_as_in_generate(capsys, monkeypatch):
    model = tiny_model()
    seen = []
    options = dict(template=None, workers=2, max_new_tokens=6, seed=1, callback=lambda u: seen.append(dict(u.tokens)))
    result = collab.generate(model, PROMPT, **options)
    expected, seen[:] = list(seen), []
    assert list(collab.stream(model, PROMPT, **options))[-1].result.stats.generated_tokens == 12
    assert seen == expected and sum(len(t) for t in seen) == result.stats.generated_tokens
    bars = []
    import collab.runtime as runtime

    real = runtime.progress_bar
    monkeypatch.setattr(runtime, "progress_bar", lambda o: bars.append(o.progress) or real(o))
    list(collab.stream(model, PROMPT, template=None, max_new_tokens=4, progress=True))
    list(collab.stream(model, PROMPT, template=None, max_new_tokens=4))
    assert bars == [True, False]


def test_a_failing_callback_keeps_what_the_stream_generated():
    model = tiny_model()

    def boom(update):
        if update.step == 3:
            raise RuntimeError("callback fell over")

    s = collab.stream(model, PROMPT, template=None, workers=2, max_new_tokens=8, callback=boom)
    with pytest.raises(RuntimeError, match="callback fell over") as info:
        list(s)
    assert info.value.result is s.result and not s.result.complete
    assert all(len(w.token_ids) == 4 for w in s.result.workers)  # steps 0..3 kept
