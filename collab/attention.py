"""collab's attention function, registered with transformers' `AttentionInterface`.

transformers calls it from every attention layer with the layer's query (RoPE at block-local
positions) and whatever `SharedKVCache.update` returned. It reads the step plan, passed to
`model(...)` as the `collab_plan` keyword, and dispatches to a kernel.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface

from .kernels import causal_attention, paged_attention
from .support import kv_shape

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
        out = causal_attention(query, key, value, scaling)
    elif plan.backend == "triton":
        from .kernels.triton_decode import decode_attention

        out = decode_attention(q, key, value, plan.pages, plan.counts, plan.firsts, plan.delta, plan.inv_freq, scaling)
    elif plan.backend == "flash":
        from .kernels.flash import blockwise_attention

        out = blockwise_attention(q, key, value, plan, scaling)
    else:
        out = paged_attention(
            q, key, value, plan.page_ids, plan.num_pages, plan.bias, plan.cos, plan.sin, scaling
        )
    return out[None], None


AttentionInterface.register(NAME, collab_attention)

BACKENDS = ("auto", "reference", "triton", "flash")


def resolve_backend(name: str, model) -> str:
    """The attention path a run uses, checked before any compute. "auto" takes Triton on CUDA
    when it is installed and supports the model, else the PyTorch reference; the choice is
    reported in `result.stats.attention`. An explicit choice that cannot run is refused."""
    if name not in BACKENDS:
        raise ValueError(f"unknown attention {name!r}; valid choices are {', '.join(repr(b) for b in BACKENDS)}")
    device = model.get_input_embeddings().weight.device
    _, head_dim = kv_shape(model.config)
    dtype = model.get_input_embeddings().weight.dtype
    if name == "reference":
        return name
    if name == "flash":
        from .kernels import flash

        if not flash.available():
            raise ValueError("attention='flash' needs the flash-attn package and a CUDA device; "
                             "attention='reference' (PyTorch) runs anywhere")
        return name
    triton_ok, why = _triton_supports(device, head_dim, dtype)
    if name == "triton":
        if not triton_ok:
            raise ValueError(f"attention='triton' cannot run here: {why}; attention='reference' (PyTorch) runs anywhere")
        return name
    return "triton" if triton_ok and device.type == "cuda" else "reference"  # auto: the interpreter is for tests


def _triton_supports(device, head_dim: int, dtype) -> tuple[bool, str]:
    import importlib.util
    import os

    if importlib.util.find_spec("triton") is None:
        return False, "triton is not installed (pip install collab[triton])"
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return False, f"the model is on {device.type}; the kernel needs CUDA (or TRITON_INTERPRET=1 for tests)"
    half = head_dim // 2
    if head_dim % 2 or half & (half - 1) or half < 4:
        return False, f"head_dim {head_dim} is not supported by the kernel (needs head_dim/2 a power of two)"
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return False, f"dtype {dtype} is not supported by the kernel"
    return True, ""
