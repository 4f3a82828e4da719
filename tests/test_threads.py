"""One model, several threads: runs take turns on the model (a Space serving several visitors,
a notebook with a background thread), give what they give alone, and leave the model as it was."""

import threading

import torch

import collab
from conftest import tiny_model

PROMPT = list(range(3, 30))


def test_two_threads_on_one_model_give_what_each_gives_alone_and_restore_it():
    model = tiny_model()
    before = model.config._attn_implementation
    options = [dict(workers=3, max_new_tokens=40, seed=1, do_sample=True), dict(workers=2, max_new_tokens=50, seed=2)]
    alone = [collab.generate(model, PROMPT, template=None, **o) for o in options]
    results, errors, started = [None, None], [], threading.Barrier(2)

    def run(i):
        try:
            started.wait()
            if i == 0:
                results[i] = collab.generate(model, PROMPT, template=None, **options[i])
            else:  # a stream, step by step, interleaved with the other thread's run
                with collab.stream(model, PROMPT, template=None, **options[i]) as s:
                    list(s)
                results[i] = s.result
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got, want in zip(results, alone):
        assert [w.token_ids for w in got.workers] == [w.token_ids for w in want.workers]
    assert model.config._attn_implementation == before
    out = model.generate(torch.tensor([PROMPT]), max_new_tokens=3, do_sample=False)  # plain generate still works
    assert out.shape == (1, len(PROMPT) + 3)
