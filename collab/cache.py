"""The shared KV cache: one paged arena per layer, handed to transformers as a `Cache`.

The model applies RoPE at the block-local positions we pass as `position_ids`, then calls
`update(key, value, layer_idx)`. We write each new token's K/V into the slot the step plan gave
it and hand the layer's whole arena to the attention function, which reads it through the plan.
Each layer's arena lives on the device of that layer's keys (accelerate `device_map` works) and
takes its head count from them: under tensor parallelism, this rank's share of the KV heads.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache

from .blocks import BlockTable
from .kernels import rotate_half
from .plan import StepPlan, rotation_tables


class SharedKVCache(Cache):
    def __init__(self, table: BlockTable, num_layers: int):
        super().__init__(layers=[])
        self.table = table
        self.keys: list[torch.Tensor | None] = [None] * num_layers  # [N, KVH, P, D] each
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.plan: StepPlan | None = None

    def _arena(self, layer: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's arena, allocated or grown (doubling, amortized) to the table's capacity."""
        keys = self.keys[layer]
        need = self.table.capacity
        if keys is None or keys.shape[0] < need:
            _, kv_heads, _, head_dim = like.shape
            shape = (need, kv_heads, self.table.page_size, head_dim)
            new_k = like.new_zeros(shape)
            new_v = like.new_zeros(shape)
            if keys is not None:
                new_k[: keys.shape[0]] = keys
                new_v[: keys.shape[0]] = self.values[layer]
            self.keys[layer], self.values[layer] = new_k, new_v
        return self.keys[layer], self.values[layer]

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        """Store the step's K/V ([1, KVH, T, D]) in their slots; return what attention reads."""
        keys, values = self._arena(layer_idx, key_states)
        plan = self.plan.on(keys.device)
        pages, offsets = plan.write_pages, plan.write_offsets
        keys[pages, :, offsets] = key_states[0].transpose(0, 1)
        values[pages, :, offsets] = value_states[0].transpose(0, 1)
        if plan.dense:  # a fresh block that sees only itself: attend to the new K/V directly
            return key_states, value_states
        return keys, values

    def move(self, src_pages, src_offsets, dst_pages, dst_offsets, delta: int, inv_freq: torch.Tensor) -> None:
        """Copy tokens' K/V to other slots, rotating keys by `delta` positions (a pure rotation),
        in every layer: how a finished step joins the shared history without recompute."""
        cos, sin = rotation_tables(torch.tensor([delta]), inv_freq)  # [1, D]
        for layer, keys in enumerate(self.keys):
            if keys is None:
                continue
            keys, values = self._arena(layer, keys)  # the table may have grown for the destination
            sp, so = torch.tensor(src_pages, device=keys.device), torch.tensor(src_offsets, device=keys.device)
            dp, do = torch.tensor(dst_pages, device=keys.device), torch.tensor(dst_offsets, device=keys.device)
            k = keys[sp, :, so]  # [n, KVH, D]
            c, s = cos.to(keys.device)[:, None], sin.to(keys.device)[:, None]
            keys[dp, :, do] = (k.float() * c + rotate_half(k.float()) * s).to(keys.dtype)
            values[dp, :, do] = values[sp, :, so]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.table.tokens

    def get_max_length(self, layer_idx: int | None = None) -> int:
        return -1

    def kv_bytes(self) -> int:
        """Bytes of K/V held by tokens (over all layers), not counting free arena capacity."""
        per_token = sum(
            k.shape[1] * k.shape[3] * k.element_size() * 2 for k in self.keys if k is not None
        )
        return per_token * self.table.tokens

    def reserved_bytes(self) -> int:
        return sum(k.numel() * k.element_size() * 2 for k in self.keys if k is not None)
