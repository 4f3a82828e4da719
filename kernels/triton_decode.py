"""Triton decode attention over the paged shared KV store, query rotation fused in.

One program per (token, KV head): the `rep` query heads that share the KV head are processed
together, so each page's keys and values are loaded once for all of them. For every page the
token may read, the query is rotated in registers by that page's position delta (a pure RoPE
rotation: cos/sin of delta * inv_freq, no attention scaling), scored against the page's
visible keys (`firsts` .. `counts` of the page), and folded into an online softmax. The result
equals `reference.paged_attention` on the same plan.

Runs on GPUs, and on CPU under TRITON_INTERPRET=1 (slow; for tests at small shapes).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _decode_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, pages_ptr, counts_ptr, firsts_ptr, delta_ptr, inv_freq_ptr,
    scale, G,
    sq_t, sq_h, sk_n, sk_h, sk_p, so_t, so_h, sc_t, sd_t,
    REP: tl.constexpr, REP_PAD: tl.constexpr, HALF: tl.constexpr, P: tl.constexpr,
):
    t = tl.program_id(0)
    kvh = tl.program_id(1)
    r = tl.arange(0, REP_PAD)
    d = tl.arange(0, HALF)
    p = tl.arange(0, P)
    heads = kvh * REP + r
    rmask = r < REP
    q_base = q_ptr + t * sq_t + heads[:, None] * sq_h
    q1 = tl.load(q_base + d[None, :], mask=rmask[:, None], other=0.0).to(tl.float32)  # [REP_PAD, HALF]
    q2 = tl.load(q_base + HALF + d[None, :], mask=rmask[:, None], other=0.0).to(tl.float32)
    inv_freq = tl.load(inv_freq_ptr + d).to(tl.float32)  # [HALF]

    m = tl.full([REP_PAD], float("-inf"), tl.float32)
    l = tl.zeros([REP_PAD], tl.float32)
    acc1 = tl.zeros([REP_PAD, HALF], tl.float32)
    acc2 = tl.zeros([REP_PAD, HALF], tl.float32)
    for g in range(0, G):
        n = tl.load(counts_ptr + t * sc_t + g)
        f = tl.load(firsts_ptr + t * sc_t + g)
        if n > f:
            page = tl.load(pages_ptr + g)
            delta = tl.load(delta_ptr + t * sd_t + g).to(tl.float32)
            angle = delta * inv_freq
            c = tl.cos(angle)[None, :]
            s = tl.sin(angle)[None, :]
            r1 = q1 * c - q2 * s  # rotate_half convention: (x1, x2) -> (x1 c - x2 s, x2 c + x1 s)
            r2 = q2 * c + q1 * s
            k_base = k_ptr + page * sk_n + kvh * sk_h + p[:, None] * sk_p
            v_base = v_ptr + page * sk_n + kvh * sk_h + p[:, None] * sk_p
            pmask = (p >= f) & (p < n)
            k1 = tl.load(k_base + d[None, :], mask=pmask[:, None], other=0.0).to(tl.float32)  # [P, HALF]
            k2 = tl.load(k_base + HALF + d[None, :], mask=pmask[:, None], other=0.0).to(tl.float32)
            scores = tl.sum(r1[:, None, :] * k1[None, :, :], axis=2) + tl.sum(r2[:, None, :] * k2[None, :, :], axis=2)
            scores = tl.where(pmask[None, :], scores * scale, float("-inf"))  # [REP_PAD, P]
            m_new = tl.maximum(m, tl.max(scores, axis=1))
            alpha = tl.exp(m - m_new)
            w = tl.exp(scores - m_new[:, None])
            l = l * alpha + tl.sum(w, axis=1)
            v1 = tl.load(v_base + d[None, :], mask=pmask[:, None], other=0.0).to(tl.float32)
            v2 = tl.load(v_base + HALF + d[None, :], mask=pmask[:, None], other=0.0).to(tl.float32)
            acc1 = acc1 * alpha[:, None] + tl.sum(w[:, :, None] * v1[None, :, :], axis=1)
            acc2 = acc2 * alpha[:, None] + tl.sum(w[:, :, None] * v2[None, :, :], axis=1)
            m = m_new
    o_base = out_ptr + t * so_t + heads[:, None] * so_h
    tl.store(o_base + d[None, :], (acc1 / l[:, None]).to(out_ptr.dtype.element_ty), mask=rmask[:, None])
    tl.store(o_base + HALF + d[None, :], (acc2 / l[:, None]).to(out_ptr.dtype.element_ty), mask=rmask[:, None])


SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check(q: torch.Tensor, k_pages: torch.Tensor, v_pages: torch.Tensor, pages, counts, firsts, delta, inv_freq) -> None:
    """Shapes, dtypes and strides the kernel needs; the error says which path to use instead."""
    instead = "use attention='reference' (the PyTorch path) for this model"
    if q.dim() != 3 or k_pages.dim() != 4 or k_pages.shape != v_pages.shape:
        raise ValueError(f"triton decode: q must be [T, H, D] and k/v pages [N, KVH, P, D] alike, got {tuple(q.shape)}, {tuple(k_pages.shape)}, {tuple(v_pages.shape)}")
    T, H, D = q.shape
    _, KVH, P, Dk = k_pages.shape
    if D != Dk or H % KVH:
        raise ValueError(f"triton decode: head_dim {D} vs {Dk}, or {H} query heads not a multiple of {KVH} KV heads")
    half = D // 2
    if D % 2 or half & (half - 1) or half < 4:
        raise ValueError(f"triton decode: head_dim {D} is not supported (needs head_dim/2 a power of two >= 4); {instead}")
    if P & (P - 1):
        raise ValueError(f"triton decode: page_size {P} is not supported (needs a power of two); {instead}")
    if q.dtype not in SUPPORTED_DTYPES or k_pages.dtype != q.dtype or v_pages.dtype != q.dtype:
        raise ValueError(f"triton decode: dtype {q.dtype}/{k_pages.dtype} is not supported (fp32, fp16, bf16, all alike); {instead}")
    if q.stride(-1) != 1 or k_pages.stride(-1) != 1 or v_pages.stride() != k_pages.stride():
        raise ValueError("triton decode: q, k and v need unit stride in head_dim and k/v the same layout")
    G = pages.shape[0]
    if counts.shape != (T, G) or firsts.shape != (T, G) or delta.shape != (T, G) or inv_freq.shape != (half,):
        raise ValueError(f"triton decode: counts/firsts/delta must be [{T}, {G}] and inv_freq [{half}]")


def decode_attention(q, k_pages, v_pages, pages, counts, firsts, delta, inv_freq, scale: float) -> torch.Tensor:
    """q [T, H, D]; k/v pages [N, KVH, P, D]; pages [G] page ids; keys firsts[t, g] ..
    counts[t, g] - 1 of each page are visible to each token ([T, G] each); delta [T, G] rotation
    per (token, page); inv_freq [D/2]. Returns [T, H, D]."""
    check(q, k_pages, v_pages, pages, counts, firsts, delta, inv_freq)
    T, H, D = q.shape
    KVH, P = k_pages.shape[1], k_pages.shape[2]
    rep = H // KVH
    out = torch.empty_like(q)
    counts = counts.to(torch.int32).contiguous()
    firsts = firsts.to(torch.int32).contiguous()
    delta = delta.to(torch.int32).contiguous()
    _decode_kernel[(T, KVH)](
        q, k_pages, v_pages, out, pages.to(torch.int32).contiguous(), counts, firsts, delta, inv_freq.float().contiguous(),
        scale, pages.shape[0],
        q.stride(0), q.stride(1), k_pages.stride(0), k_pages.stride(1), k_pages.stride(2), out.stride(0), out.stride(1),
        counts.stride(0), delta.stride(0),
        REP=rep, REP_PAD=triton.next_power_of_2(rep), HALF=D // 2, P=P,
    )
    return out
