"""Attention per block, merged by log-sum-exp: the flash-attn path.

Each query token attends to each of its visible blocks apart (its query rotated by that block's
delta), getting an output and the log-sum-exp of its scores; the partial results are merged as
softmax over blocks of their LSEs. With flash-attn installed and a CUDA device, each block's
attention is `flash_attn_func(..., return_attn_probs=True)`; the PyTorch `attend` below does the
same on CPU and is what the tests merge with. flash-attn is optional (`pip install collab[flash]`).
"""

from __future__ import annotations

import torch
from einops import rearrange

from .reference import rotate

try:  # optional: only builds with CUDA
    from flash_attn import flash_attn_func
except ImportError:  # pragma: no cover - depends on the machine
    flash_attn_func = None


def available() -> bool:
    return flash_attn_func is not None and torch.cuda.is_available()


def attend(q, k, v, scale: float, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain attention with LSE. q [T, H, D]; k, v [S, KVH, D]; mask [T, S] (True: visible) or
    None. Returns out [T, H, D] and lse [T, H] (fp32; -inf where a token sees no key)."""
    grouped = rearrange(q.float(), "t (k r) d -> t k r d", k=k.shape[1])  # query heads over their KV head
    s = torch.einsum("tkrd,skd->tkrs", grouped, k.float()) * scale
    if mask is not None:
        s = s.masked_fill(rearrange(~mask, "t s -> t 1 1 s"), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    out = torch.einsum("tkrs,skd->tkrd", p, v.float())
    return rearrange(out, "t k r d -> t (k r) d"), rearrange(lse, "t k r -> t (k r)")


def attend_flash(q, k, v, scale, mask=None):  # pragma: no cover - needs CUDA and flash-attn
    """flash-attn for a page every token sees whole (`mask` None); a partly visible page uses
    `attend` (the plan says which, once per step: no host sync here)."""
    if mask is not None:
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
    """Attention over each visible page apart, merged by LSE. Same inputs as the reference, read
    from the step plan: the pages and which of them every token sees whole are host lists built
    once per step (`plan.page_list`, `plan.whole`), the query rotations its cos/sin tables, so
    the per-layer loop launches work without reading anything back. Returns [T, H, D]."""
    attend_fn = attend_fn or (attend_flash if available() else attend)
    P = k_pages.shape[2]
    rotated = rotate(q, plan.cos, plan.sin).to(q.dtype) if plan.cos is not None else None  # [T, G, H, D]
    keys = torch.arange(P, device=q.device)[None, :]
    outs, lses = [], []
    for g, (page, whole) in enumerate(zip(plan.page_list, plan.whole)):
        qr = rotated[:, g] if rotated is not None else q
        mask = None if whole else (keys >= plan.firsts[:, g, None]) & (keys < plan.counts[:, g, None])  # [T, P]
        out, lse = attend_fn(qr, k_pages[page].transpose(0, 1), v_pages[page].transpose(0, 1), scale, mask)
        outs.append(out)
        lses.append(lse)
    return merge_states(torch.stack(outs), torch.stack(lses)).to(q.dtype)
