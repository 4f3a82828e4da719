"""The step plan: every tensor the attention layers need for one forward, built once per step.

The runtime flattens the tokens that all workers feed this step into one ragged batch of T
tokens. For each token the plan holds where its K/V goes (page, offset), which arena pages it may
attend to, how many keys of each page are visible (an additive mask), and the extra RoPE rotation
of its query per page (delta = own offset - segment offset, as cos/sin). Every layer reads the
same plan; nothing is rebuilt per layer. (Its layouts are torch views: an `einops.rearrange`
here measured 0.1 ms per call, 2% of a small model's CPU step; `einops` names the shapes in the
per-page PyTorch path of `kernels/flash.py` instead, off the hot path.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .batch import Feed
from .blocks import BlockTable
from .kernels.reference import rotation_tables  # noqa: F401  (re-exported)
from .views import View


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
    page_list: list[int] = field(default_factory=list)  # flash: the pages attended to, on the host
    whole: list[bool] = field(default_factory=list)  # flash: every token sees the page whole (else: the PyTorch path)
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
    col, page_list = _columns(feeds, views, table)
    pages = [p for p, _, _ in page_list]
    G = len(pages)
    page_col, page_base = torch.tensor([(col[b], i * P) for _, b, i in page_list], dtype=torch.long).reshape(G, 2).unbind(1)
    vis, lo, delta = _per_feed(feeds, views, col)
    # Per token: its id, feed (row), block-local position, own block's column, slot (page, offset).
    per_token = torch.tensor([(t, r, p, col[f.block], pg, o) for r, f in enumerate(feeds)
                              for t, p, pg, o in zip(f.tokens, f.positions, f.pages, f.offsets)], dtype=torch.long)
    ids, row, pos, own, write_pages, write_offsets = per_token.t().contiguous().unbind(0)
    vis_t = vis[row]
    vis_t[torch.arange(len(ids)), own] = pos + 1  # causal inside the own block
    counts, firsts, bias = _visible(vis_t[:, page_col], lo[row][:, page_col], page_base, P)
    delta_tg = delta[row][:, page_col]  # [T, G]
    cos = sin = None
    if bool(delta_tg.any()):  # stored page-major ([G, T, D] memory), the reference kernel's layout
        cos, sin = (t.transpose(0, 1) for t in rotation_tables(delta_tg.t().contiguous(), inv_freq))
    ends = torch.tensor([len(f.tokens) for f in feeds]).cumsum(0) - 1
    first = feeds[0]
    return StepPlan(
        input_ids=ids[None], position_ids=pos[None], write_pages=write_pages, write_offsets=write_offsets,
        page_ids=None if pages == list(range(G)) else torch.tensor(pages), num_pages=G, pages=torch.tensor(pages),
        counts=counts, firsts=firsts, delta=delta_tg, bias=bias, cos=cos, sin=sin, logits_index=ends,
        dense=len(feeds) == 1 and first.positions[0] == 0 and not views[first.worker].segments,
        inv_freq=inv_freq, backend=backend,
        page_list=pages if backend == "flash" else [],
        whole=((firsts == 0) & (counts == P)).all(0).tolist() if backend == "flash" else [],
    )


def _columns(feeds: list[Feed], views: dict[int, View], table: BlockTable) -> tuple[dict[int, int], list[tuple[int, int, int]]]:
    """The blocks anyone reads this step, each a column, and their pages as (arena page, block,
    page index in the block), in arena order."""
    blocks = {f.block for f in feeds}
    for f in feeds:
        blocks.update(s.block for s in views[f.worker].segments)
    col = {b: i for i, b in enumerate(sorted(blocks))}
    return col, sorted((p, b, i) for b in blocks for i, p in enumerate(table.blocks[b].pages))


def _per_feed(feeds: list[Feed], views: dict[int, View], col: dict[int, int]) -> tuple[torch.Tensor, ...]:
    """Per feed (row) and block (column): end of the visible tokens, first visible token, query
    rotation delta; filled on the host, one tensor for the three."""
    C = len(col)
    tables = [[0] * (3 * C) for _ in feeds]
    for f, row in zip(feeds, tables):
        view = views[f.worker]
        for s in view.segments:
            c = col[s.block]
            row[c], row[C + c], row[2 * C + c] = s.start + s.length, s.start, view.own_offset - s.offset + s.start
    return torch.tensor(tables, dtype=torch.long).reshape(len(feeds), 3, C).unbind(1)


def _visible(vis_tg: torch.Tensor, lo_tg: torch.Tensor, page_base: torch.Tensor, P: int) -> tuple[torch.Tensor, ...]:
    """From each token's visible range per page ([T, G] ends and starts, in block positions): the
    visible keys of each page (counts, firsts) and the additive mask [G, 1, T, 1, P]."""
    counts = (vis_tg - page_base).clamp_(0, P)
    firsts = (lo_tg - page_base).clamp_(0, P)
    key_pos = page_base[None, :, None] + torch.arange(P)  # [1, G, P]
    visible = (key_pos < vis_tg[:, :, None]) & (key_pos >= lo_tg[:, :, None])  # [T, G, P]
    bias = torch.zeros(visible.shape).masked_fill_(~visible, float("-inf"))
    return counts, firsts, bias.permute(1, 0, 2)[:, None, :, None, :].contiguous()
