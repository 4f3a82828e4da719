"""The step plan: every tensor the attention layers need for one forward, built once per step.

The runtime flattens the tokens that all workers feed this step into one ragged batch of T
tokens. For each token the plan holds where its K/V goes (page, offset), which arena pages it may
attend to, how many keys of each page are visible (an additive mask), and the extra RoPE rotation
of its query per page (delta = own offset - segment offset, as cos/sin). Every layer reads the
same plan; nothing is rebuilt per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .blocks import BlockTable
from .kernels.reference import rotation_tables  # noqa: F401  (re-exported)
from .views import View


@dataclass(slots=True)
class Feed:
    """Tokens one writer feeds this step, already given slots in its block."""

    worker: int  # -1 for the prompt
    block: int
    tokens: list[int]
    pages: list[int]
    offsets: list[int]
    positions: list[int]  # block-local positions


@dataclass(slots=True)
class StepPlan:
    input_ids: torch.Tensor  # [1, T]
    position_ids: torch.Tensor  # [1, T] block-local positions
    write_pages: torch.Tensor  # [T]
    write_offsets: torch.Tensor  # [T]
    page_ids: torch.Tensor | None  # [G] arena pages attended to; None: the first G pages in order
    num_pages: int  # G
    bias: torch.Tensor  # [G, 1, T, 1, P] 0 where a key is visible to a query, -inf elsewhere
    cos: torch.Tensor | None  # [T, G, D] extra query rotation per (token, page), a view of [G, T, D]; None: none
    sin: torch.Tensor | None
    pages: torch.Tensor  # [G] the arena pages attended to (what page_ids is, always as a tensor)
    counts: torch.Tensor  # [T, G] end of the visible keys of each page per token (exclusive)
    firsts: torch.Tensor  # [T, G] first visible key of each page per token (0 but where a segment starts inside it)
    delta: torch.Tensor  # [T, G] query rotation per (token, page), in positions
    logits_index: torch.Tensor  # [F] flat index of each feed's last token
    dense: bool  # one fresh block sees only itself: plain causal attention
    inv_freq: torch.Tensor  # [D/2] the model's RoPE frequencies (fp32)
    backend: str  # "reference", "triton" or "flash": the attention path for this run
    _moved: dict = field(default_factory=dict)

    def on(self, device: torch.device) -> "StepPlan":
        """This plan with its tensors on `device` (one transfer per device per step)."""
        if self.input_ids.device == device:
            return self
        if device not in self._moved:
            moved = {
                name: (value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value)
                for name, value in ((n, getattr(self, n)) for n in self.__slots__ if n != "_moved")
            }
            self._moved[device] = StepPlan(**moved)
        return self._moved[device]


def build_plan(
    feeds: list[Feed], views: dict[int, View], table: BlockTable, inv_freq: torch.Tensor, backend: str = "reference"
) -> StepPlan:
    """Flatten `feeds` into one ragged batch and derive every per-token table from `views`."""
    P = table.page_size
    tokens = [t for f in feeds for t in f.tokens]
    T = len(tokens)

    # Blocks anyone attends to this step, and their pages (the union, in arena order).
    blocks = {f.block for f in feeds}
    for f in feeds:
        blocks.update(s.block for s in views[f.worker].segments)
    col = {b: i for i, b in enumerate(sorted(blocks))}
    page_list = sorted((p, b, i) for b in blocks for i, p in enumerate(table.blocks[b].pages))
    pages = [p for p, _, _ in page_list]
    G = len(pages)
    page_col = torch.tensor([col[b] for _, b, _ in page_list])
    page_base = torch.tensor([i * P for _, _, i in page_list])

    # Per feed (row) and block (column): visible length and query rotation delta.
    vis = torch.zeros(len(feeds), len(col), dtype=torch.long)  # end of the visible tokens
    lo = torch.zeros(len(feeds), len(col), dtype=torch.long)  # first visible token
    delta = torch.zeros(len(feeds), len(col), dtype=torch.long)
    for r, f in enumerate(feeds):
        view = views[f.worker]
        for s in view.segments:
            vis[r, col[s.block]] = s.start + s.length
            lo[r, col[s.block]] = s.start
            delta[r, col[s.block]] = view.own_offset - s.offset + s.start

    row = torch.tensor([r for r, f in enumerate(feeds) for _ in f.tokens])
    pos = torch.tensor([p for f in feeds for p in f.positions])
    own = torch.tensor([col[f.block] for f in feeds for _ in f.tokens])
    vis_t = vis[row]
    vis_t[torch.arange(T), own] = pos + 1  # causal inside the own block
    vis_tg = vis_t[:, page_col]  # [T, G]
    lo_tg = lo[row][:, page_col]
    counts = (vis_tg - page_base).clamp_(0, P)
    firsts = (lo_tg - page_base).clamp_(0, P)
    key_pos = page_base[None, :, None] + torch.arange(P)  # [1, G, P]
    visible = (key_pos < vis_tg[:, :, None]) & (key_pos >= lo_tg[:, :, None])  # [T, G, P]
    bias = torch.zeros(T, G, P).masked_fill_(~visible, float("-inf"))
    bias = bias.permute(1, 0, 2)[:, None, :, None, :].contiguous()  # [G, 1, T, 1, P]

    delta_tg = delta[row][:, page_col]  # [T, G]
    cos = sin = None
    if bool(delta_tg.any()):  # stored page-major ([G, T, D] memory), the reference kernel's layout
        cos, sin = (t.transpose(0, 1) for t in rotation_tables(delta_tg.t().contiguous(), inv_freq))

    ends, n = [], 0
    for f in feeds:
        n += len(f.tokens)
        ends.append(n - 1)
    first = feeds[0]
    dense = len(feeds) == 1 and first.positions[0] == 0 and not views[first.worker].segments
    return StepPlan(
        input_ids=torch.tensor([tokens]),
        position_ids=pos[None],
        write_pages=torch.tensor([p for f in feeds for p in f.pages]),
        write_offsets=torch.tensor([o for f in feeds for o in f.offsets]),
        page_ids=None if pages == list(range(G)) else torch.tensor(pages),
        num_pages=G,
        pages=torch.tensor(pages),
        counts=counts,
        firsts=firsts,
        delta=delta_tg,
        bias=bias,
        cos=cos,
        sin=sin,
        logits_index=torch.tensor(ends),
        dense=dense,
        inv_freq=inv_freq,
        backend=backend,
    )
