"""An independent reference for collab's semantics, built from the plain transformers model.

It replays a finished run's schedule (which worker fed which tokens at which step) with the
model's own attention (sdpa) and HF's `DynamicCache`: for each worker and step it materializes
the view from the README's definition, lays the stored keys of every view token out in view
order by rotating the *keys* to their view positions, and runs the plain model on the worker's
new tokens. Each token's K/V are computed once, when fed, as in collab (KV reuse). collab rotates
queries instead and never moves keys, so agreement checks the trick, the plan, the masks and the
cache against code that shares none of them.

When K/V depend only on the token and its position (one-layer models), this is the plain model
on the materialized token sequence from scratch; `materialize` gives that sequence.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from collab.kernels import rotate_half
from collab.plan import rotation_tables
from collab.support import rope_inv_freq


def view_tokens(result, worker: int, step: int) -> list[tuple]:
    """Keys (owner, index) of the tokens worker `worker` sees at `step`, before its own new ones,
    in view order, per the README: [prompt] + [others' tokens fed before the step, ascending
    worker index] (full only) + [own tokens fed before the step]."""
    keys = [("p", j) for j in range(len(result.prompt_ids))]
    me = result.workers[worker]
    if result.visibility == "full":
        for other in result.workers:
            if other.index != worker:
                keys += [(other.index, j) for j, s in enumerate(other.feed_steps) if s < step]
    keys += [(worker, j) for j, s in enumerate(me.feed_steps) if s < step]
    return keys


def materialize(result, worker: int, k: int) -> list[int]:
    """The token sequence whose last-position logits are worker's k-th sampled token's logits."""
    me = result.workers[worker]
    step = me.sample_steps[k]
    seq = [_token(result, key) for key in view_tokens(result, worker, step)]
    return seq + [t for t, s in zip(me.block_ids, me.feed_steps) if s == step]


def _token(result, key):
    owner, j = key
    return result.prompt_ids[j] if owner == "p" else result.workers[owner].block_ids[j]


def _rope(x, delta, inv_freq):  # x [..., N, D]; delta [N]
    cos, sin = rotation_tables(delta, inv_freq)
    return (x.float() * cos + rotate_half(x.float()) * sin).to(x.dtype)


@torch.no_grad()
def replay(model, result) -> dict[tuple[int, int], torch.Tensor]:
    """{(worker, k): fp32 logits} for every sampled token of `result`, by the plain model."""
    inv_freq = rope_inv_freq(model)
    store: dict[tuple, tuple[list, list, int]] = {}  # key -> (keys per layer, values per layer, pos)
    expected = {}

    def run(tokens, positions, view, new_keys):
        cache = DynamicCache(config=model.config)
        if view:
            where = torch.arange(len(view))
            for layer in range(model.config.num_hidden_layers):
                k = torch.stack([store[key][0][layer] for key in view], dim=1)  # [KVH, N, D]
                v = torch.stack([store[key][1][layer] for key in view], dim=1)
                then = torch.tensor([store[key][2] for key in view])
                cache.update(_rope(k, where - then, inv_freq)[None], v[None], layer)
        out = model(
            input_ids=torch.tensor([tokens]), position_ids=torch.tensor([positions]), past_key_values=cache
        )
        n = len(tokens)
        for i, key in enumerate(new_keys):
            ks = [cache.layers[l].keys[0, :, -n + i] for l in range(model.config.num_hidden_layers)]
            vs = [cache.layers[l].values[0, :, -n + i] for l in range(model.config.num_hidden_layers)]
            store[key] = (ks, vs, positions[i])
        return out.logits[0, -1].float()

    prompt = result.prompt_ids
    logits = run(prompt, list(range(len(prompt))), [], [("p", j) for j in range(len(prompt))])
    for w in result.workers:
        for k, s in enumerate(w.sample_steps):
            if s == 0:
                expected[(w.index, k)] = logits
    steps = sorted({s for w in result.workers for s in w.feed_steps})
    for step in steps:
        for w in result.workers:
            new = [j for j, s in enumerate(w.feed_steps) if s == step]
            if not new:
                continue
            view = view_tokens(result, w.index, step)
            positions = [len(view) + i for i in range(len(new))]
            logits = run([w.block_ids[j] for j in new], positions, view, [(w.index, j) for j in new])
            for k, s in enumerate(w.sample_steps):
                if s == step:
                    expected[(w.index, k)] = logits
    return expected


@torch.no_grad()
def fed_slots(result) -> list[tuple[int, int]]:
    """(block, position) of every token fed (moves excluded)."""
    return [(e[2], p) for e in result.trace if e[0] != "move" for p in range(e[3], e[3] + len(e[4]))]


def check_trace(model, result, tol=1e-4, replay=None) -> None:
    """Every sampled logit equals the plain model's on the recorded view (`replay`: the
    sequential reference by default); nothing fed twice."""
    expected = (replay or replay_trace)(model, result)
    for w in result.workers:
        for k, logits in enumerate(w.logits):
            err = (expected[(w.index, k)] - logits).abs().max().item()
            assert err <= tol, (w.name, k, err)
    fed = fed_slots(result)
    assert len(fed) == len(set(fed)), "a token was fed twice"
    assert result.stats.tokens_fed == len(fed)


def replay_trace(model, result) -> dict[tuple[int, int], torch.Tensor]:
    """{(worker, k): fp32 logits} by the plain model over the views collab recorded (needs
    output_logits=True). Each feed's context is its view's segments, keys rotated to the segment
    offsets; its own tokens sit at own offset + block-local position."""
    inv_freq = rope_inv_freq(model)
    layers = model.config.num_hidden_layers
    store: dict[tuple[int, int], tuple] = {}  # (block, local) -> (keys per layer, values per layer, position)
    feed_logits: dict[tuple[int, int], torch.Tensor] = {}  # (worker, step) -> logits
    for entry in result.trace:
        if entry[0] == "move":  # K/V copied to other slots (keys re-rotated there)
            _, src, start, n, dst, at = entry
            for i in range(n):
                store[(dst, at + i)] = store[(src, start + i)]
            continue
        step, worker, block, first, tokens, segments, own_offset, _ = entry
        own = [(block, j) for j in range(first)]
        keys = [(seg.block, seg.start + j) for seg in segments for j in range(seg.length)]
        where = [seg.offset + j for seg in segments for j in range(seg.length)] + [own_offset + j for j in range(first)]
        keys += own
        cache = DynamicCache(config=model.config)
        if keys:
            now = torch.tensor(where)
            then = torch.tensor([store[k][2] for k in keys])
            for layer in range(layers):
                k = torch.stack([store[key][0][layer] for key in keys], dim=1)
                v = torch.stack([store[key][1][layer] for key in keys], dim=1)
                cache.update(_rope(k, now - then, inv_freq)[None], v[None], layer)
        positions = [own_offset + first + i for i in range(len(tokens))]
        # The plain model's causal mask assumes new tokens follow all cached ones: true here,
        # since the cache holds exactly the view before the new tokens.
        out = model(input_ids=torch.tensor([tokens]), position_ids=torch.tensor([positions]), past_key_values=cache)
        n = len(tokens)
        for i in range(n):
            ks = [cache.layers[l].keys[0, :, -n + i] for l in range(layers)]
            vs = [cache.layers[l].values[0, :, -n + i] for l in range(layers)]
            store[(block, first + i)] = (ks, vs, positions[i])
        feed_logits[(worker, step)] = out.logits[0, -1].float()
    return _per_sample(result, feed_logits)


ORACLE_ATTENTION = "collab_oracle_dense"


def _dense_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, oracle=None, **kwargs):
    """Each query token attends densely to its own key list: stored keys rotated from where they
    were fed to where its view places them, and the keys fed in this very step (by anyone)."""
    layer, store, step_ids, contexts = module.layer_idx, oracle["store"], oracle["ids"], oracle["contexts"]
    new = {key_id: (key[0, :, t], value[0, :, t], oracle["positions"][t]) for t, key_id in enumerate(step_ids)}
    oracle["new"][layer] = new
    inv_freq, out = oracle["inv_freq"], []
    for t, context in enumerate(contexts):
        ks, vs, moved = [], [], []
        for key_id, where in context:
            k, v, then = new[key_id] if key_id in new else (store[key_id][0][layer], store[key_id][1][layer], store[key_id][2])
            ks.append(k), vs.append(v), moved.append(where - then)
        k = _rope(torch.stack(ks, dim=1), torch.tensor(moved), inv_freq)  # [KVH, N, D]
        v = torch.stack(vs, dim=1)
        rep = query.shape[1] // k.shape[0]
        k, v = k.repeat_interleave(rep, 0).double(), v.repeat_interleave(rep, 0).double()
        scores = (query[0, :, t, None].double() @ k.transpose(-1, -2)) * scaling  # [H, 1, N]
        out.append((scores.softmax(-1) @ v)[:, 0])  # [H, D]
    return torch.stack(out)[None].to(query.dtype), None


@torch.no_grad()
def replay_joint(model, result) -> dict[tuple[int, int], torch.Tensor]:
    """Like `replay_trace`, but every feed of a step runs in one forward, and a feed's view may
    show tokens fed in that same step (same-step timing): each query attends densely to its
    view's keys, rotated to their view positions. For runs without same-step timing it equals
    `replay_trace` (tested), which runs HF's own attention."""
    from transformers import AttentionInterface

    AttentionInterface.register(ORACLE_ATTENTION, _dense_attention)
    previous = model.config._attn_implementation
    model.set_attn_implementation(ORACLE_ATTENTION)
    inv_freq, layers = rope_inv_freq(model), model.config.num_hidden_layers
    store: dict[tuple[int, int], tuple] = {}
    feed_logits: dict[tuple[int, int], torch.Tensor] = {}
    try:
        for group in _step_groups(result.trace):
            if group[0][0] == "move":
                _, src, start, n, dst, at = group[0]
                for i in range(n):
                    store[(dst, at + i)] = store[(src, start + i)]
                continue
            tokens, ids, positions, contexts, ends = [], [], [], [], []
            for step, worker, block, first, fed, segments, own_offset, _ in group:
                seen = [((seg.block, seg.start + j), seg.offset + j) for seg in segments for j in range(seg.length)]
                for i, token in enumerate(fed):
                    own = [((block, j), own_offset + j) for j in range(first + i + 1)]
                    tokens.append(token), ids.append((block, first + i)), positions.append(own_offset + first + i)
                    contexts.append(seen + own)
                ends.append(((worker, step), len(tokens) - 1))
            oracle = {"store": store, "ids": ids, "contexts": contexts, "positions": positions, "inv_freq": inv_freq, "new": {}}
            out = model(input_ids=torch.tensor([tokens]), position_ids=torch.tensor([positions]), use_cache=False, oracle=oracle)
            for t, key_id in enumerate(ids):
                store[key_id] = ([oracle["new"][l][key_id][0] for l in range(layers)],
                                 [oracle["new"][l][key_id][1] for l in range(layers)], positions[t])
            for key, t in ends:
                feed_logits[key] = out.logits[0, t].float()
    finally:
        model.set_attn_implementation(previous)
    return _per_sample(result, feed_logits)


def _step_groups(trace):
    """Consecutive feeds of one step together; each move alone."""
    groups = []
    for entry in trace:
        if entry[0] != "move" and groups and groups[-1][0][0] != "move" and groups[-1][0][0] == entry[0]:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups


def _per_sample(result, feed_logits):
    expected = {}
    for w in result.workers:
        for k, step in enumerate(w.sample_steps):
            if k == 0 and w.fork_of is not None:  # a fork's first token: its parent's last logits
                expected[(w.index, k)] = feed_logits[w.fork_of]
            else:
                expected[(w.index, k)] = feed_logits[(w.index, step)] if (w.index, step) in feed_logits else feed_logits[(-1, 0)]
    return expected


def check_joint(model, result, tol=1e-4) -> None:
    """Every sampled logit equals the dense joint reference's (same-step timing included)."""
    check_trace(model, result, tol, replay=replay_joint)
