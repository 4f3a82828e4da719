"""The paged reference kernel against dense attention over explicitly positioned keys."""

import pytest
import torch

from collab.kernels import paged_attention, rotate_half
from collab.plan import rotation_tables


def rope(x, pos, inv_freq):  # x [N, heads, D], pos [N]
    cos, sin = rotation_tables(pos, inv_freq)
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


@pytest.mark.parametrize("T,H,KVH,D,P", [(1, 2, 2, 8, 4), (3, 4, 2, 16, 4), (5, 6, 2, 8, 8), (2, 9, 3, 64, 32)])
def test_rotation_and_masks_match_dense(T, H, KVH, D, P):
    torch.manual_seed(T * 100 + H)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
    G = 4
    k_raw, v = torch.randn(G * P, KVH, D), torch.randn(G, KVH, P, D)
    local = torch.arange(G * P) % P + P * (torch.arange(G * P) // P % 2)  # two 2-page blocks
    block = torch.arange(G * P) // (2 * P)
    k_pages = rope(k_raw, local, inv_freq).view(G, P, KVH, D).transpose(1, 2).contiguous()
    q_raw, q_local = torch.randn(T, H, D), torch.randint(0, 2 * P, (T,))
    q = rope(q_raw, q_local, inv_freq)
    offsets = torch.randint(0, 50, (T, 2))  # per token: where each block sits in its view
    own_off = torch.randint(0, 100, (T,))
    visible = torch.rand(T, G * P) < 0.7
    visible[:, 0] = True
    delta = (own_off[:, None] - offsets)[:, torch.arange(G) // 2]  # [T, G]
    cos, sin = rotation_tables(delta, inv_freq)
    bias = torch.zeros(T, G * P).masked_fill(~visible, float("-inf")).view(T, G, P)
    bias = bias.permute(1, 0, 2)[:, None, :, None, :]
    out = paged_attention(q, k_pages, v, None, G, bias, cos, sin, D**-0.5)

    for t in range(T):
        q_pos = own_off[t] + q_local[t]
        k_pos = offsets[t][block] + local
        qt = rope(q_raw[t : t + 1], q_pos[None], inv_freq)[0]  # [H, D]
        kt = rope(k_raw, k_pos, inv_freq)  # [S, KVH, D]
        kt = kt.repeat_interleave(H // KVH, dim=1)
        vt = v.transpose(1, 2).reshape(G * P, KVH, D).repeat_interleave(H // KVH, dim=1)
        s = torch.einsum("hd,shd->hs", qt, kt) * D**-0.5
        s = s.masked_fill(~visible[t][None], float("-inf"))
        ref = torch.einsum("hs,shd->hd", torch.softmax(s, -1), vt)
        torch.testing.assert_close(out[t], ref, atol=2e-5, rtol=1e-4)


def test_page_ids_gather_equals_slice():
    torch.manual_seed(0)
    k, v = torch.randn(6, 2, 4, 8), torch.randn(6, 2, 4, 8)
    q = torch.randn(2, 4, 8)
    bias = torch.zeros(3, 1, 2, 1, 4)
    a = paged_attention(q, k, v, torch.tensor([3, 4, 5]), 3, bias, None, None, 0.3)
    b = paged_attention(q, k[3:], v[3:], None, 3, bias, None, None, 0.3)
    torch.testing.assert_close(a, b)


def test_page_major_tables_and_sink_scores():
    """The plan's page-major cos/sin (views of [G, T, D]) equal contiguous ones, and scores far
    below the max (an attention sink: exp underflows) match a plain softmax."""
    torch.manual_seed(1)
    T, H, KVH, D, P, G = 3, 6, 2, 16, 8, 3
    inv_freq = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
    k, v = torch.randn(G, KVH, P, D), torch.randn(G, KVH, P, D)
    k[0, :, 0] *= 40  # a sink key: other scores sit ~100+ below it
    q = torch.randn(T, H, D) * 3
    delta = torch.randint(0, 300, (T, G))
    cos, sin = rotation_tables(delta, inv_freq)
    cos_pm, sin_pm = (t.transpose(0, 1) for t in rotation_tables(delta.t().contiguous(), inv_freq))
    bias = torch.zeros(G, 1, T, 1, P)
    out = paged_attention(q, k, v, None, G, bias, cos, sin, D**-0.5)
    torch.testing.assert_close(paged_attention(q, k, v, None, G, bias, cos_pm, sin_pm, D**-0.5), out)
    rep = H // KVH
    qr = (q[:, None] * cos[:, :, None] + rotate_half(q)[:, None] * sin[:, :, None])  # [T, G, H, D]
    kr = k.repeat_interleave(rep, dim=1)  # [G, H, P, D]
    s = torch.einsum("tghd,ghpd->thgp", qr, kr).reshape(T, H, G * P) * D**-0.5
    ref = torch.einsum("ths,shd->thd", torch.softmax(s, -1), v.repeat_interleave(rep, dim=1).permute(0, 2, 1, 3).reshape(G * P, H, D))
    assert (s.amax(-1, keepdim=True) - s).max() > 100  # the underflow regime is exercised
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
