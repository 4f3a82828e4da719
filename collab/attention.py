"""collab's attention function, registered with transformers' `AttentionInterface`.

transformers calls it from every attention layer with the layer's query (RoPE at block-local
positions) and whatever `SharedKVCache.update` returned. It reads the step plan, passed to
`model(...)` as the `collab_plan` keyword, and dispatches to a kernel.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface

from .kernels import causal_attention, paged_attention

NAME = "collab"


def collab_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """query [1, H, T, D]; key/value: the layer's arena [N, KVH, P, D] (or [1, KVH, T, D] when
    the plan is dense). Returns ([1, T, H, D], None)."""
    plan = kwargs.get("collab_plan")
    if plan is None:
        raise RuntimeError(
            "the 'collab' attention implementation runs only inside collab.generate; "
            "call model.set_attn_implementation('sdpa') to use the model on its own"
        )
    plan = plan.on(query.device)
    q = query[0].transpose(0, 1)  # [T, H, D]
    if plan.dense:
        out = causal_attention(q, key[0].transpose(0, 1), value[0].transpose(0, 1), scaling)
    else:
        out = paged_attention(
            q, key, value, plan.page_ids, plan.num_pages, plan.bias, plan.cos, plan.sin, scaling
        )
    return out[None], None


AttentionInterface.register(NAME, collab_attention)
