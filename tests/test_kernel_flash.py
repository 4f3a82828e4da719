"""The per-block + log-sum-exp merge path against the reference (CPU: PyTorch per-block
attention; CUDA with flash-attn: flash_attn_func per block)."""

import pytest
import torch
from test_kernel_triton import random_step

from collab.kernels import flash, paged_attention


@pytest.mark.parametrize("workers,H,KVH,D,P", [(1, 2, 2, 8, 4), (3, 4, 2, 16, 8), (4, 9, 3, 16, 4)])
@pytest.mark.parametrize("skip", [False, True])
def test_blockwise_merge_matches_reference(workers, H, KVH, D, P, skip):
    table, plan, inv_freq = random_step(workers, KVH, D, P, seed=workers + D, skip=skip, backend="flash")
    g = torch.Generator().manual_seed(2)
    k = torch.randn(table.capacity, KVH, P, D, generator=g)
    v = torch.randn(table.capacity, KVH, P, D, generator=g)
    q = torch.randn(plan.input_ids.shape[1], H, D, generator=g)
    ref = paged_attention(q, k, v, plan.page_ids, plan.num_pages, plan.bias, plan.cos, plan.sin, D**-0.5)
    masks = []

    def attend(q, k, v, scale, mask=None):  # records which pages took the masked (PyTorch) path
        masks.append(mask)
        return flash.attend(q, k, v, scale, mask)

    out = flash.blockwise_attention(q, k, v, plan, D**-0.5, attend_fn=attend)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    # the plan, built once per step, says which pages every token sees whole: those go unmasked
    assert plan.page_list == plan.pages.tolist() and len(masks) == plan.num_pages
    whole = ((plan.firsts == 0) & (plan.counts == P)).all(0).tolist()
    assert plan.whole == whole and [m is None for m in masks] == whole
    assert not all(whole)  # the random steps hold partly visible pages (own blocks, skips)


def test_merge_states_weights_blocks_by_lse():
    outs = torch.stack([torch.ones(1, 1, 2), 3 * torch.ones(1, 1, 2)])
    lses = torch.tensor([[[0.0]], [[0.0]]])
    assert torch.allclose(flash.merge_states(outs, lses), 2 * torch.ones(1, 1, 2))
    lses = torch.tensor([[[0.0]], [[float("-inf")]]])  # a block with nothing visible weighs 0
    assert torch.allclose(flash.merge_states(outs, lses), torch.ones(1, 1, 2))


@pytest.mark.skipif(not flash.available(), reason="needs flash-attn and a CUDA device")
def test_flash_attend_matches_torch_attend():  # pragma: no cover - GPU only
    q = torch.randn(3, 8, 64, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(32, 2, 64, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(32, 2, 64, device="cuda", dtype=torch.bfloat16)
    a, la = flash.attend_flash(q, k, v, 0.125)
    b, lb = flash.attend(q, k, v, 0.125)
    torch.testing.assert_close(a.float(), b, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(la.float(), lb, atol=2e-2, rtol=2e-2)


def test_asking_for_flash_without_it_is_refused():
    import collab
    from conftest import tiny_model

    if flash.available():
        pytest.skip("flash-attn is available here")
    with pytest.raises(ValueError, match="needs the flash-attn package and a CUDA device"):
        collab.generate(tiny_model(), [1, 2, 3], template=None, attention="flash", max_new_tokens=2)


def test_triton_through_the_runtime_is_exact():
    import collab
    from conftest import tiny_model
    from oracle import replay

    pytest.importorskip("triton")
    model = tiny_model()
    r = collab.generate(model, list(range(3, 20)), template=None, workers=2, max_new_tokens=3, attention="triton",
                        output_logits=True, page_size=4, ignore_eos=True)
    assert r.stats.attention == "triton"
    expected = replay(model, r)
    assert max((expected[(w.index, k)] - l).abs().max().item() for w in r.workers for k, l in enumerate(w.logits)) <= 1e-4
