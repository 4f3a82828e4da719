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


LOG2E = 1.4426950408889634


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
    bias: [G, 1, T, 1, P] additive mask; cos, sin: [T, G, D] or None (fastest as transposed views
    of [G, T, D] tensors, as the plan stores them). Returns [T, H, D]. Query head h reads KV head
    h // (H // KVH), as in transformers.

    >>> T, H, KVH, D, P = 2, 4, 2, 8, 4
    >>> k = torch.randn(3, KVH, P, D); v = torch.randn(3, KVH, P, D)
    >>> bias = torch.zeros(3, 1, T, 1, P)
    >>> paged_attention(torch.randn(T, H, D), k, v, None, 3, bias, None, None, D**-0.5).shape
    torch.Size([2, 4, 8])
    """
    T, H, D = q.shape
    KVH, P = k_pages.shape[1], k_pages.shape[2]
    rep, G = H // KVH, num_pages
    K = k_pages[:G] if page_ids is None else k_pages.index_select(0, page_ids)  # [G, KVH, P, D]
    V = v_pages[:G] if page_ids is None else v_pages.index_select(0, page_ids)
    # Scores in log2 units (scaling * log2 e folded into q) for exp2: on CPU torch.exp is very
    # slow when results underflow to denormals, which attention sinks make common.
    qs = (q.float() * (scaling * LOG2E)).view(T, KVH, rep, D).transpose(0, 1)  # [KVH, T, rep, D]
    if cos is None:
        qr = qs.reshape(1, KVH, T * rep, D)
    else:  # one rotated copy of the query per page, written straight in the matmul's layout
        c = cos.transpose(0, 1).contiguous()[:, None, :, None]  # [G, 1, T, 1, D] (the plan's own layout)
        s_ = sin.transpose(0, 1).contiguous()[:, None, :, None]
        qr = torch.mul(qs, c, out=qs.new_empty(G, KVH, T, rep, D)).addcmul_(rotate_half(qs), s_)
        qr = qr.view(G, KVH, T * rep, D)
    s = torch.matmul(qr if qr.dtype == K.dtype else qr.to(K.dtype), K.transpose(-1, -2))  # [G, KVH, T*rep, P]
    s = (s if s.dtype == torch.float32 else s.float()).view(G, KVH, T, rep, P).add_(bias)
    e = s.sub_(s.amax(dim=(0, 4), keepdim=True)).exp2_()  # in place, [G, KVH, T, rep, P]
    denom = e.sum(dim=(0, 4)).view(KVH, T * rep, 1)
    e = e.view(G, KVH, T * rep, P)
    o = torch.matmul(e if e.dtype == V.dtype else e.to(V.dtype), V).sum(0).float()  # [KVH, T*rep, D]
    o = o.div_(denom).view(KVH, T, rep, D).transpose(0, 1).reshape(T, H, D)
    return o if o.dtype == q.dtype else o.to(q.dtype)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scaling: float) -> torch.Tensor:
    """Plain causal attention of a fresh block over itself. q [1, H, T, D]; k, v [1, KVH, T, D]
    (4-D, as the model hands them over: 3-D inputs send sdpa to its slow math kernel on CPU).
    Returns [T, H, D]."""
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=k.shape[1] != q.shape[1])
    return out[0].transpose(0, 1)
