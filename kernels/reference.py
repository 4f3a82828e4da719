"""Plain PyTorch attention over the paged shared KV store. Runs on CPU; the reference for kernels.

Layout of one layer's arena: keys and values `[num_pages, kv_heads, page_size, head_dim]`, keys
already rotated at block-local positions. A query attends to G pages; for each (query, page)
pair the plan gives an extra RoPE rotation of the query (cos/sin) and an additive mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotation_tables(delta: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of a *pure* RoPE rotation by `delta` positions (no attention scaling).

    delta: [...] integer positions; inv_freq: [D/2]. Returns two [..., D] fp32 tensors laid out
    like HF's rotate_half convention (the angle table repeated twice). Angles in fp64 so that
    large deltas keep their precision.
    """
    angle = delta.to(torch.float64)[..., None] * inv_freq.to(torch.float64)
    angle = torch.cat((angle, angle), dim=-1)
    return angle.cos().float(), angle.sin().float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each query once per page. q [T, H, D]; cos/sin [T, G, D] -> [T, G, H, D] (fp32)."""
    q = q.float()
    return q[:, None] * cos[:, :, None] + rotate_half(q)[:, None] * sin[:, :, None]


def paged_attention(
    q: torch.Tensor,
    k_pages: torch.Tensor,
    v_pages: torch.Tensor,
    page_ids: torch.Tensor | None,
    num_pages: int,
    bias: torch.Tensor,
    cos: torch.Tensor | None,
    sin: torch.Tensor | None,
    scaling: float,
) -> torch.Tensor:
    """Attention of T ragged queries over G pages with per-(query, page) rotation.

    q: [T, H, D]; k_pages, v_pages: [N, KVH, P, D]; page_ids: [G] or None (pages 0..G-1);
    bias: [G, 1, T, 1, P] additive mask; cos, sin: [T, G, D] or None. Returns [T, H, D].
    Query head h reads KV head h // (H // KVH), as in transformers.

    >>> T, H, KVH, D, P = 2, 4, 2, 8, 4
    >>> k = torch.randn(3, KVH, P, D); v = torch.randn(3, KVH, P, D)
    >>> bias = torch.zeros(3, 1, T, 1, P)
    >>> paged_attention(torch.randn(T, H, D), k, v, None, 3, bias, None, None, D**-0.5).shape
    torch.Size([2, 4, 8])
    """
    T, H, D = q.shape
    KVH, P = k_pages.shape[1], k_pages.shape[2]
    rep = H // KVH
    G = num_pages
    K = k_pages[:G] if page_ids is None else k_pages.index_select(0, page_ids)  # [G, KVH, P, D]
    V = v_pages[:G] if page_ids is None else v_pages.index_select(0, page_ids)
    if cos is not None:
        qr = rotate(q, cos, sin).to(K.dtype)  # [T, G, H, D]
        qr = qr.view(T, G, KVH, rep, D).permute(1, 2, 0, 3, 4).reshape(G, KVH, T * rep, D)
    else:
        qr = q.view(T, KVH, rep, D).transpose(0, 1).reshape(1, KVH, T * rep, D)
    s = torch.matmul(qr, K.transpose(-1, -2)).float() * scaling  # [G, KVH, T*rep, P]
    s = s.view(G, KVH, T, rep, P) + bias
    m = s.amax(dim=(0, 4), keepdim=True)
    e = torch.exp(s - m)
    denom = e.sum(dim=(0, 4))  # [KVH, T, rep]
    o = torch.matmul(e.view(G, KVH, T * rep, P).to(V.dtype), V).sum(0)  # [KVH, T*rep, D]
    o = o.view(KVH, T, rep, D) / denom[..., None].to(V.dtype)
    return o.permute(1, 0, 2, 3).reshape(T, H, D).to(q.dtype)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scaling: float) -> torch.Tensor:
    """Plain causal attention of a fresh block over itself. q [1, H, T, D]; k, v [1, KVH, T, D]
    (4-D, as the model hands them over: 3-D inputs send sdpa to its slow math kernel on CPU).
    Returns [T, H, D]."""
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=k.shape[1] != q.shape[1])
    return out[0].transpose(0, 1)
