"""Attention per block, merged by log-sum-exp: the flash-attn path.

Each query token attends to each of its visible blocks apart (its query rotated by that block's
delta), getting an output and the log-sum-exp of its scores; the partial results are merged as
softmax over blocks of their LSEs. With flash-attn installed and a CUDA device, each block's
attention is `flash_attn_func(..., return_attn_probs=True)`; the PyTorch `attend` below does the
same on CPU and is what the tests merge with. flash-attn is optional (`pip install collab[flash]`).
"""

from __future__ import annotations

import torch

from .reference import rotate, rotation_tables

try:  # optional: only builds with CUDA
    from flash_attn import flash_attn_func
except ImportError:  # pragma: no cover - depends on the machine
    flash_attn_func = None


def available() -> bool:
    return flash_attn_func is not None and torch.cuda.is_available()


def attend(q, k, v, scale: float, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain attention with LSE. q [T, H, D]; k, v [S, KVH, D]; mask [T, S] (True: visible) or
    None. Returns out [T, H, D] and lse [T, H] (fp32; -inf where a token sees no key)."""
    T, H, D = q.shape
    KVH = k.shape[1]
    s = torch.einsum("tkrd,skd->tkrs", q.float().view(T, KVH, H // KVH, D), k.float()) * scale
    if mask is not None:
        s = s.masked_fill(~mask[:, None, None, :], float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    out = torch.einsum("tkrs,skd->tkrd", p, v.float()).reshape(T, H, D)
    return out, lse.reshape(T, H)


def attend_flash(q, k, v, scale, mask=None):  # pragma: no cover - needs CUDA and flash-attn
    """flash-attn for a page every token sees whole; partly visible pages use `attend`."""
    if mask is not None and not bool(mask.all()):
        return attend(q, k, v, scale, mask)
    T = q.shape[0]
    kt, vt = k[None].expand(T, -1, -1, -1), v[None].expand(T, -1, -1, -1)
    out, lse, _ = flash_attn_func(q[:, None], kt, vt, softmax_scale=scale, causal=False, return_attn_probs=True)
    return out[:, 0], lse[:, :, 0]


def merge_states(outs: torch.Tensor, lses: torch.Tensor) -> torch.Tensor:
    """Merge partial attention results. outs [B, T, H, D], lses [B, T, H] -> [T, H, D]."""
    weights = torch.softmax(lses, dim=0).nan_to_num(0.0)  # blocks a token cannot see weigh 0
    return (weights[..., None] * outs.float()).sum(0)


def blockwise_attention(q, k_pages, v_pages, plan, scale: float, attend_fn=None) -> torch.Tensor:
    """Attention over each visible page apart, merged by LSE. Same inputs as the reference,
    read from the step plan (pages, counts, delta); returns [T, H, D]."""
    attend_fn = attend_fn or (attend_flash if available() else attend)
    P = k_pages.shape[2]
    outs, lses = [], []
    for g in range(plan.num_pages):  # firsts .. counts: each token's visible keys of the page
        page = int(plan.pages[g])
        cos, sin = rotation_tables(plan.delta[:, g], plan.inv_freq)  # [T, D]
        qr = rotate(q, cos[:, None], sin[:, None])[:, 0].to(q.dtype)
        keys = torch.arange(P, device=q.device)[None, :]
        mask = (keys >= plan.firsts[:, g, None]) & (keys < plan.counts[:, g, None])  # [T, P]
        out, lse = attend_fn(qr, k_pages[page].transpose(0, 1), v_pages[page].transpose(0, 1), scale, mask)
        outs.append(out)
        lses.append(lse)
    return merge_states(torch.stack(outs), torch.stack(lses)).to(q.dtype)
