"""Visibility policies beyond full/none: step, combined, lag:K, custom; exact against the plain
model on the views they define, with finished steps moved into the shared history."""

import pytest
import torch
from oracle import check_joint, check_trace, replay_joint, replay_trace
from scripted import CharTokenizer, Script

import collab
from collab.views import Segment, resolve_visibility
from conftest import tiny_model

QUESTION = "sum 1 2 3"
SCRIPTS = [
    "\nAlice: one plus two is 3.\n\nthree more is 6.\n\nso 6.",
    "\nBob: I add 2 and 3: 5.\n\nplus 1 gives 6.\n\ndone.",
    "\nCarol: check: 1+2+3=6.\n\nagreed.",
]


def run(visibility, workers=3, **kw):
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=2048)
    tok = CharTokenizer()
    prompt_len = len(tok.apply_chat_template([{"role": "user", "content": QUESTION}]))
    result = collab.generate(
        model, QUESTION, tokenizer=tok, workers=workers, visibility=visibility, max_new_tokens=60,
        output_logits=True, seed=0, logits_processor=[Script(prompt_len, SCRIPTS)], **kw,
    )
    return model, tok, result


@pytest.mark.parametrize("visibility", ["step", "combined", "lag:0", "lag:3", "full", "none"])
def test_policies_are_exact_on_their_views(visibility):
    model, tok, r = run(visibility)
    assert [tok.decode(w.header_ids + w.token_ids, skip_special_tokens=True).strip() for w in r.workers] == [s.strip() for s in SCRIPTS]
    check_trace(model, r)
    assert r.stats.kv_tokens == sum(len(t) for t in r.blocks.values())


def test_step_views_hold_the_shared_history_then_the_own_step():
    model, tok, r = run("step")
    history = 1  # the block opened right after the prompt
    moves = [e for e in r.trace if e[0] == "move" and e[4] == history]
    assert len(moves) == 5  # every finished step, once
    finished = "".join(tok.decode(r.blocks[history][e[5] : e[5] + e[3]]) for e in moves)
    assert "one plus two is 3.\n\n" in finished and "agreed" not in finished  # unfinished steps stay out
    for w in r.workers:
        for segments, block, own_offset in w.views:
            assert segments[0] == Segment(0, len(r.prompt_ids), 0)
            assert all(s.block == history for s in segments[1:]) and block not in {s.block for s in segments}
            assert own_offset == len(r.prompt_ids) + (segments[1].length if len(segments) > 1 else 0)


def test_combined_adds_the_peers_steps_in_progress():
    model, tok, r = run("combined")
    later = r.workers[0].views[-1][0]
    blocks = [s.block for s in later]
    assert blocks[0] == 0 and blocks[1] == 1 and len(blocks) >= 3  # prompt, history, live peer steps


def test_lag_hides_the_last_k_steps_of_peers():
    _, _, lag = run("lag:3")
    _, _, full = run("full")
    for k in range(6, 20):
        seen_lag = sum(s.length for s in lag.workers[0].views[k][0][1:])
        seen_full = sum(s.length for s in full.workers[0].views[k][0][1:])
        assert seen_full - seen_lag == 2 * 3  # two peers, three tokens each


def test_custom_matrix_and_callable():
    model, tok, r = run([[True, True, False], [False, True, False], [True, True, True]])
    views = [w.views[10][0] for w in r.workers]
    owners = [{r.workers[w].blocks[0] for w in range(3)} & {s.block for s in v} for v in views]
    assert owners == [{r.workers[1].blocks[0]}, set(), {r.workers[0].blocks[0], r.workers[1].blocks[0]}]
    check_trace(model, r)
    model, tok, r2 = run(lambda i, j, step: step > 5 and j == 0)
    assert r2.workers[1].views[2][0][1:] == () and r2.workers[1].views[10][0][1].block == r2.workers[0].blocks[0]


def test_a_finished_step_moves_once_and_memory_stays_one_copy():
    model, tok, r = run("step")
    per_token = 2 * 2 * 2 * 16 * 4  # K+V, layers, kv heads, head dim, fp32
    assert r.stats.kv_bytes == r.stats.kv_tokens * per_token


@pytest.mark.parametrize(
    "spec,match",
    [
        ("everyone", "unknown visibility 'everyone'; valid visibilities are 'full', 'none', 'step', 'combined', 'lag:K'"),
        ("lag:-1", "K must be >= 0"),
        ("lag:x", "must be an integer"),
        ([[True, False]], "1 rows for 3 workers"),
        ([[True, False, True], [True], [True, True, True]], "row 1 has 1 entries"),
        ([[1, 0, 2], [0, 1, 0], [0, 0, 1]], r"matrix\[0\]\[2\] is 2"),
    ],
)
def test_bad_visibility_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        resolve_visibility(spec, 3)


def test_step_visibility_needs_a_tokenizer():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        collab.generate(tiny_model(), [1, 2, 3], template=None, visibility="step", max_new_tokens=4)


@pytest.mark.parametrize("visibility", ["full:same_step", "combined:same_step", "step:same_step"])
def test_same_step_timing_is_exact_against_the_joint_reference(visibility):
    model, tok, r = run(visibility)
    assert r.visibility == visibility
    check_joint(model, r)
    assert r.stats.kv_tokens == sum(len(t) for t in r.blocks.values())


def test_the_joint_reference_equals_the_sequential_one_without_same_step():
    model, tok, r = run("combined")
    joint, sequential = replay_joint(model, r), replay_trace(model, r)
    assert joint.keys() == sequential.keys()
    assert max((joint[k] - sequential[k]).abs().max().item() for k in joint) < 1e-4


def test_same_step_shows_the_peers_tokens_of_this_very_step():
    model, tok, same = run("full:same_step")
    _, _, full = run("full")
    for k in range(6, 20):  # every worker feeds one token a step here
        peers_same = sum(s.length for s in same.workers[0].views[k][0][1:])
        peers_full = sum(s.length for s in full.workers[0].views[k][0][1:])
        assert peers_same - peers_full == 2  # one token of each of the two peers
    with pytest.raises(KeyError):  # the sequential reference has no K/V yet for tokens of this step
        check_trace(model, same)


def test_same_step_changes_nothing_under_step_visibility():
    """`step` shows no live tokens of peers, so the timing of live tokens cannot change it."""
    _, _, a = run("step")
    _, _, b = run("step:same_step")
    assert [w.views for w in a.workers] == [w.views for w in b.workers]
    assert all(torch.equal(x, y) for wa, wb in zip(a.workers, b.workers) for x, y in zip(wa.logits, wb.logits))
