"""The loop stop rule (`stop_repeats`): a worker ends once its newest tokens are one span written
N times in a row; checked against a plain reference, and in a run where a helper loops."""

import random

import pytest
from scripted import CharTokenizer

import collab
from collab.repeats import LEAST, LONGEST, Repeats
from collab.tasks import render
from collab.tasks.trace import Fork, Text, Trace
from collab.train.views import Force
from conftest import tiny_model


def reference(tokens: list[int], times: int) -> bool:
    """Plainly: some span of p <= LONGEST tokens fills the newest max(times * p, LEAST) tokens."""
    for p in range(1, LONGEST + 1):
        need = max(times * p, LEAST)
        if need <= len(tokens):
            tail = tokens[-need:]
            if all(tail[i] == tail[i - p] for i in range(p, need)):
                return True
    return False


@pytest.mark.parametrize("times", [2, 3, 5])
@pytest.mark.parametrize("alphabet", [2, 3, 8])
def test_the_rule_matches_the_reference_token_by_token(times, alphabet):
    rng = random.Random(times * 100 + alphabet)
    for _ in range(20):
        guard, tokens = Repeats(times), []
        span = [rng.randrange(alphabet) for _ in range(rng.randint(1, 12))]
        stream = [rng.randrange(alphabet) for _ in range(rng.randint(0, 40))] + span * rng.randint(1, 8)
        stream += [rng.randrange(alphabet) for _ in range(rng.randint(0, 40))]
        for token in stream:
            tokens.append(token)
            assert guard.feed(token) == reference(tokens, times), (times, tokens)


@pytest.mark.parametrize("span, times, fires_at", [
    (1, 3, LEAST),  # one token: the stretch must reach LEAST tokens, not 3
    (4, 3, LEAST),  # 4 tokens x 4 = 16: LEAST again
    (6, 3, 18),  # 6 tokens x 3
    (20, 2, 40),
    (LONGEST, 2, 2 * LONGEST),
])
def test_a_span_repeated_ends_the_worker_when_the_rule_says(span, times, fires_at):
    guard = Repeats(times)
    pattern = list(range(100, 100 + span))
    fired = [i + 1 for i, t in enumerate((pattern * (fires_at // span + 2))[: fires_at + 5]) if guard.feed(t)]
    assert fired[0] == fires_at


def test_longer_spans_and_distinct_text_never_fire_and_memory_stays_bounded():
    guard = Repeats(2)
    assert not any(guard.feed(t) for t in list(range(LONGEST + 1)) * 2)  # a span longer than LONGEST, twice
    guard = Repeats(3)
    assert not any(guard.feed(t) for t in range(50_000))
    assert len(guard.tokens) <= 4 * LONGEST * 3


@pytest.mark.parametrize("bad", [1, 0, True, "3", 2.5])
def test_a_bad_count_is_refused_before_any_compute(bad):
    with pytest.raises((TypeError, ValueError), match="stop_repeats"):
        collab.generate("no/such-model", "Hi", stop_repeats=bad)


class Chars(CharTokenizer):
    vocab_size = 128

    def __len__(self):
        return 128


def test_a_looping_helper_ends_with_reason_repeats_and_is_joined():
    loop = "x = 1\n"
    trace = Trace((Text("Two."), Fork(("a", "b"), (Trace.of(loop * 30 + "end"), Trace.of("fine")), "ok"), Text("fin")))
    streams = [w.text for w in render(trace, "markers").workers]
    tok = Chars()
    prompt = [ord(c) for c in "Q?\n"]
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=4096, seed=3)

    def run(stop_repeats):
        return collab.generate(model, prompt, tokenizer=tok, protocol="markers", template=None, workers=1, max_new_tokens=300,
                               seed=0, stop_repeats=stop_repeats, progress=False,
                               logits_processor=[Force(tok, len(prompt), streams, 3)])

    plain, stopped = run(None), run(3)
    assert [w.finish_reason for w in plain.workers] == ["done marker '<done>'"] * 3
    root, looping, other = stopped.workers
    assert looping.finish_reason == "repeats" and tok.decode(looping.token_ids) == loop * 3
    assert looping.token_ids == plain.workers[1].token_ids[: len(looping.token_ids)]
    assert other.finish_reason == root.finish_reason == "done marker '<done>'"
    assert tok.decode(root.token_ids).endswith("ok\nfin\n<done>")  # joined, then the root went on
    assert any(e.kind == "join" for e in stopped.events)
    assert len(root.token_ids) == len(plain.workers[0].token_ids)  # the root's own text is the same, sooner
    assert max(root.sample_steps) < max(plain.workers[0].sample_steps)
