"""Training examples are the views collab gives each worker: rendered traces of the task
generators, run with forced text, become examples whose tokens equal what a real run materializes
for that worker at each sampled token, with the loss on its sampled tokens only."""

import pytest
from scripted import CharTokenizer

import collab
from collab.tasks import make, render
from collab.tasks.trace import spawn_first
from collab.train import IGNORE, examples, from_result
from collab.train.views import Force
from conftest import tiny_model


class Chars(CharTokenizer):
    vocab_size = 128

    def __len__(self):
        return 128


def materialize(result, worker, k):
    """The tokens worker `worker` saw at its k-th sample, in view order, from the run's trace."""
    w = result.workers[worker]
    step = w.sample_steps[k]
    if step == 0:  # from the prefill
        return list(result.prompt_ids)
    entry = next(e for e in result.trace if e[0] == step and e[1] == worker)
    _, _, block, first, tokens, segments, _, _ = entry
    ids = [t for s in segments for t in result.blocks[s.block][s.start : s.start + s.length]]
    return ids + result.blocks[block][: first + len(tokens)]


CASES = [("compound", "markers", False, False), ("compound", "markers", True, False), ("compound", "markers", True, True),
         ("countdown3", "markers", True, False), ("compound", "multiverse", False, False),
         ("compound", "threadweaver", False, False), ("countdown3", "apr", False, False)]


@pytest.mark.parametrize("task, protocol, fanout, first", CASES)
def test_examples_equal_the_views_of_a_real_run_and_train_only_sampled_tokens(task, protocol, fanout, first):
    problem = min(make(task, 6, seed=1), key=lambda p: len(p.question))
    trace = spawn_first(problem.parallel) if first else problem.parallel
    rendering = render(trace, protocol, fanout)
    if first:  # the root's first token opens the spawn tag
        assert rendering.root.text.startswith("<spawn>")
    if fanout:  # one tag: every helper of the fork starts at the same step, from the same parent prefix
        assert rendering.root.text.count("<spawn>") == len(rendering.forks) < len(rendering.workers) - 1
    tok = Chars()
    prompt = [ord(c) for c in problem.question + "\n"]
    got = examples(rendering, tok, prompt)
    # a real run of another model on the same forced text
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=4096, seed=3)
    result = collab.generate(model, prompt, tokenizer=tok, protocol=protocol, template=None, workers=1,
                             max_new_tokens=1024, output_logits=True, seed=0,
                             logits_processor=[Force(tok, len(prompt), [w.text for w in rendering.workers], 3)])
    streams = [tok.decode([t for b in w.blocks for t in result.blocks[b]]) for w in result.workers]
    assert streams == [w.text for w in rendering.workers]  # each worker wrote (and was fed) its rendered stream
    if fanout:
        assert len({w.spawn_step for w in result.workers[1:]}) == len(rendering.forks)
    for w in result.workers:
        mine = [e for e in got if e.worker == w.index]
        labelled = [(e, i) for e in mine for i, label in enumerate(e.labels) if label != IGNORE]
        assert [e.labels[i] for e, i in labelled] == w.token_ids  # every sampled token once, nothing else
        for k, (e, i) in enumerate(labelled):
            assert e.input_ids[:i] == materialize(result, w.index, k), (w.name, k)
            assert e.input_ids[i] == w.token_ids[k]
            assert len(e.position_ids) == len(e.input_ids) and e.position_ids[i - 1] + 1 == e.position_ids[i]
    heads = {w.index: w.header_ids for w in result.workers}
    for e in got:  # a child's head and the join texts are fed by collab: never a label
        for i, label in enumerate(e.labels):
            if label != IGNORE:
                assert i >= len(heads[e.worker]) or e.worker == 0


def test_examples_of_a_simple_problem_have_one_worker_and_no_markers():
    problem = make("simple", 1, seed=0)[0]
    rendering = render(problem.parallel, "markers")
    got = examples(rendering, Chars(), [ord(c) for c in problem.question + "\n"])
    assert {e.worker for e in got} == {0} and "<spawn>" not in "".join(chr(t) for e in got for t in e.input_ids if t != 3)


def test_from_result_groups_samples_whose_view_only_grew_by_the_own_tokens():
    problem = min(make("compound", 6, seed=1), key=lambda p: len(p.question))
    rendering = render(problem.parallel, "multiverse")
    got = examples(rendering, Chars(), [ord(c) for c in problem.question + "\n"])
    paths = len(rendering.workers) - 1
    # the root: before the fork, then after the join; each path: one view
    assert sorted(e.worker for e in got) == [0, 0] + list(range(1, paths + 1))
    assert from_result  # the same grouping is public for runs made elsewhere
