"""The Triton decode kernel against the PyTorch reference: under TRITON_INTERPRET=1 on CPU at
small shapes (CI), and on CUDA when a GPU is present."""

import pytest
import torch

triton = pytest.importorskip("triton")

from collab.blocks import BlockTable  # noqa: E402
from collab.kernels import paged_attention  # noqa: E402
from collab.kernels.triton_decode import check, decode_attention  # noqa: E402
from collab.plan import Feed, build_plan  # noqa: E402
from collab.views import Segment, View  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_step(T_workers, KVH, D, P, seed, skip=False, backend="reference"):
    """A realistic plan: a prompt block and worker blocks of random lengths, full views; with
    `skip`, each peer's block is seen from a random first token (a joined child's tail)."""
    g = torch.Generator().manual_seed(seed)
    table = BlockTable(P)
    prompt = table.new_block(None).id
    table.append(prompt, int(torch.randint(3, 40, (1,), generator=g)))
    blocks = [table.new_block(i).id for i in range(T_workers)]
    for b in blocks:
        table.append(b, int(torch.randint(0, 20, (1,), generator=g)))
    feeds, views = [], {}
    for i, b in enumerate(blocks):
        others = [(o, table.blocks[o].length) for o in blocks if o != b]
        segs, off = [Segment(prompt, table.blocks[prompt].length, 0)], table.blocks[prompt].length
        for o, n in others:
            start = int(torch.randint(0, n, (1,), generator=g)) if skip and n else 0
            if n - start:
                segs.append(Segment(o, n - start, off, start))
                off += n - start
        views[i] = View(tuple(segs), off)
        feeds.append(Feed(i, b, [1], *table.append(b, 1)))
    inv_freq = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
    return table, build_plan(feeds, views, table, inv_freq, backend), inv_freq


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("workers,H,KVH,D,P", [(1, 2, 2, 8, 4), (3, 4, 2, 16, 8), (4, 9, 3, 16, 4), (2, 8, 1, 32, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("skip", [False, True])
def test_triton_matches_reference(device, workers, H, KVH, D, P, dtype, skip):
    table, plan, inv_freq = random_step(workers, KVH, D, P, seed=workers * 7 + D, skip=skip)
    g = torch.Generator().manual_seed(1)
    N = table.capacity
    k = torch.randn(N, KVH, P, D, generator=g).to(dtype)
    v = torch.randn(N, KVH, P, D, generator=g).to(dtype)
    q = torch.randn(plan.input_ids.shape[1], H, D, generator=g).to(dtype)
    ref = paged_attention(q.float(), k.float(), v.float(), plan.page_ids, plan.num_pages, plan.bias, plan.cos, plan.sin, D**-0.5)
    p = plan.on(torch.device(device))
    out = decode_attention(q.to(device), k.to(device), v.to(device), p.pages, p.counts, p.firsts, p.delta, inv_freq.to(device), D**-0.5)
    tol = 2e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.float().cpu(), ref, atol=tol, rtol=tol)


@pytest.mark.parametrize(
    "shape,dtype,match",
    [
        ((2, 4, 24), torch.float32, "head_dim 24 is not supported.*attention='reference'"),
        ((2, 4, 16), torch.float64, "dtype torch.float64/torch.float64 is not supported.*attention='reference'"),
    ],
)
def test_launcher_refuses_what_it_cannot_run(shape, dtype, match):
    T, H, D = shape
    q = torch.zeros(T, H, D, dtype=dtype)
    k = torch.zeros(4, 2, 4, D, dtype=dtype)
    with pytest.raises(ValueError, match=match):
        check(q, k, k, torch.zeros(4, dtype=torch.long), torch.zeros(T, 4), torch.zeros(T, 4), torch.zeros(T, 4), torch.zeros(D // 2))
