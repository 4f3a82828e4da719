"""Training examples on the views collab gives each worker.

A rendered trace (`collab.tasks.render`) is run through the real runtime with its text forced,
on a stand-in model (views depend on the schedule, not on the weights), and every token a worker
samples becomes a label in an example whose tokens are that worker's materialized view at that
step, in view order, with the view's position ids: the parent's prefix, its own head, siblings
where visible, joined children as the join shows them, the fed join text, then its own tokens.
Consecutive samples of one worker whose view only grew by its own tokens share one example. The
loss is on the worker's sampled tokens only: never on heads, join texts or anything collab feeds.
`tests/test_train_views.py` checks every example against what a real run materializes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..views import Segment

IGNORE = -100  # the label transformers' losses skip


@dataclass(frozen=True, slots=True)
class Example:
    worker: int
    input_ids: list[int]
    labels: list[int]  # IGNORE except where the worker sampled the token at that position
    position_ids: list[int]  # positions in the worker's view (overlapping paths share them)


class Force:
    """A logits processor that makes each worker write its rendered stream: the worker whose own
    text so far is a prefix of a stream's text gets that stream's next token (the first token of
    the rest, so the tokenization is the tokenizer's own); EOS when its stream is done."""

    def __init__(self, tokenizer, prompt_len: int, streams: list[str], eos: int):
        self.tokenizer, self.prompt_len, self.streams, self.eos = tokenizer, prompt_len, list(streams), eos
        self.done: set[int] = set()  # streams some worker finished (two workers may share a prefix)

    def __call__(self, input_ids, scores):
        own = self.tokenizer.decode(input_ids[0, self.prompt_len:].tolist(), skip_special_tokens=False)
        candidates = [i for i, s in enumerate(self.streams) if s.startswith(own)]
        open_ = [i for i in candidates if i not in self.done] or candidates
        target = self.eos
        if open_:
            stream = self.streams[open_[0]]
            if len(stream) > len(own):
                target = self.tokenizer(stream[len(own):], add_special_tokens=False).input_ids[0]
            else:
                self.done.add(open_[0])
        forced = scores.new_full(scores.shape, float("-inf"))
        forced[:, target] = 0.0
        return forced


def from_result(result) -> list[Example]:
    """Examples from a run made with `output_logits=True` (its trace records every view)."""
    out: list[Example] = []
    sampled = {(w.index, step): w.token_ids[k] for w in result.workers for k, step in enumerate(w.sample_steps)}
    groups: dict[int, tuple] = {}  # worker -> (segments, block, own_offset, [(own length, target)])
    prompt = (Segment(0, len(result.prompt_ids), 0),)  # the prompt block is the first one opened
    first = [(0, w.index, w.blocks[0], 0, [], prompt, len(result.prompt_ids), True)  # sampled from the prefill
             for w in result.workers if w.parent is None and w.sample_steps[:1] == [0]]
    for entry in first + list(result.trace):
        if entry[0] == "move" or not entry[7] or entry[1] < 0:
            continue
        step, worker, block, first, tokens, segments, own_offset, _ = entry
        if (worker, step) not in sampled:
            continue
        key = (segments, block, own_offset)
        if worker in groups and groups[worker][:3] != key:
            out.append(_example(result, worker, *groups.pop(worker)))
        groups.setdefault(worker, (*key, []))[3].append((first + len(tokens), sampled[(worker, step)]))
    for worker, group in groups.items():
        out.append(_example(result, worker, *group))
    return sorted(out, key=lambda e: e.worker)


def _example(result, worker, segments, block, own_offset, samples) -> Example:
    ids, pos = [], []
    for seg in segments:
        ids += result.blocks[seg.block][seg.start : seg.start + seg.length]
        pos += range(seg.offset, seg.offset + seg.length)
    n, last = samples[-1]
    own = result.blocks[block][:n]
    ids, pos = ids + own + [last], pos + list(range(own_offset, own_offset + n + 1))
    labels = [IGNORE] * len(ids)
    base = len(ids) - len(own) - 1
    for length, target in samples:
        labels[base + length] = target
        assert base + length == len(ids) - 1 or ids[base + length] == target, "a sampled token is the next one fed"
    return Example(worker, ids, labels, pos)


def replay(rendering, tokenizer, prompt_ids: list[int], protocol=None, max_new_tokens: int = 1024, **options):
    """Run `rendering` (a `collab.tasks.Rendering`) through the runtime with its text forced on a
    stand-in model of the tokenizer's vocabulary; the `collab.Result` (views, steps, events) is
    what a model that writes exactly this trace would get."""
    from .. import api
    from .standin import standin_model

    eos = tokenizer.eos_token_id
    vocab = len(tokenizer) if hasattr(tokenizer, "__len__") else tokenizer.vocab_size
    model = standin_model(vocab, eos)
    force = Force(tokenizer, len(prompt_ids), [w.text for w in rendering.workers], eos)
    return api.generate(model, list(prompt_ids), tokenizer=tokenizer, protocol=protocol or rendering.protocol,
                        template=None, workers=1, max_new_tokens=max_new_tokens, output_logits=True, seed=0,
                        progress=False, logits_processor=[force], **options)


def examples(rendering, tokenizer, prompt_ids: list[int], protocol=None, max_new_tokens: int = 1024, **options) -> list[Example]:
    """The training examples of `rendering`: each worker's views in its `replay`."""
    return from_result(replay(rendering, tokenizer, prompt_ids, protocol, max_new_tokens, **options))
