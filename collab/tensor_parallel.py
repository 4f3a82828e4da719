"""Tensor-parallel models: a model transformers sharded with `tp_plan="auto"` under `torchrun`.

Every process of the model's tensor-parallel group holds its share of each layer's query and KV
heads and runs the same collab run: the same scheduler decisions, the same step plans, the same
`model(...)` calls, whose all-reduces combine the shards into the same logits on every rank.
collab adds three things, all from outside the model:

- each rank's shared KV arena holds that rank's KV heads (the arena takes its shape from the
  keys the layer hands it), and the memory budget counts those (`kv_heads`);
- one source of truth for the sampled tokens: every step, the tokens rank 0 drew are broadcast
  to the other ranks (`Group.broadcast`, one small int64 tensor), and the run's seed with them,
  so the ranks' runs cannot diverge (a rank that drew otherwise would build another plan and
  wait forever in the next all-reduce);
- only rank 0 of the group reports: the progress bar, the callback and the streamers.

>>> model = AutoModelForCausalLM.from_pretrained(path, tp_plan="auto")  # doctest: +SKIP
>>> result = collab.generate(model, prompt, tokenizer=tokenizer)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .support import UnsupportedModelError, kv_shape


def degree(model) -> int:
    """How many processes share the model's layers: transformers' `tp_size`; 1 for a whole model."""
    return getattr(model, "_tp_size", None) or 1


@dataclass(frozen=True, slots=True)
class Group:
    """The processes a tensor-parallel model is sharded over, as collab talks to them."""

    size: int
    rank: int  # this process's rank in the group; rank 0 reports and draws the tokens
    src: int  # the global rank of the group's rank 0
    process_group: object
    device: torch.device  # where the broadcast tensors live: the model's device under NCCL, else the CPU

    @classmethod
    def of(cls, model) -> "Group | None":
        """The model's tensor-parallel group; None for a whole model."""
        size = degree(model)
        if size == 1:
            return None
        import torch.distributed as dist

        mesh = getattr(model, "_device_mesh", None)
        if mesh is not None and "tp" in (mesh.mesh_dim_names or ()):
            group = mesh["tp"].get_group()
        else:
            group = mesh.get_group() if mesh is not None else dist.group.WORLD
        device = model.get_input_embeddings().weight.device if dist.get_backend(group) == "nccl" else torch.device("cpu")
        return cls(size, dist.get_rank(group), dist.get_global_rank(group, 0), group, device)

    def broadcast(self, values: list[int]) -> list[int]:
        """Rank 0's `values` on every rank: one broadcast of an [n] int64 tensor."""
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.int64, device=self.device)
        dist.broadcast(tensor, src=self.src, group=self.process_group)
        return tensor.tolist()

    def least(self, value: int | None) -> int | None:
        """The smallest of the ranks' `value`s (None where a rank does not know it), so that a
        check against it refuses on every rank or on none."""
        import torch.distributed as dist

        unknown = 2**62
        tensor = torch.tensor([unknown if value is None else value], dtype=torch.int64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN, group=self.process_group)
        least = int(tensor.item())
        return None if least == unknown else least


def reports(model) -> bool:
    """Whether this process reports a run of `model`: always, but for ranks other than 0 of a
    tensor-parallel group."""
    group = Group.of(model)
    return group is None or group.rank == 0


def kv_heads(model) -> int:
    """The KV heads this process's arena holds: the config's, or under tensor parallelism this
    rank's share, read off its shard of the key projection."""
    heads, head_dim = kv_shape(model.config)
    if degree(model) == 1:
        return heads
    for name, module in model.named_modules():
        if name.endswith("self_attn.k_proj"):
            weight = module.weight
            local = weight.to_local() if hasattr(weight, "to_local") else weight  # a DTensor's shard
            return local.shape[0] // head_dim
    return heads // degree(model)


def check_heads(config, size: int, what: str = "the model") -> None:
    """Refuse a split of the attention heads over `size` processes that is not even."""
    heads, (kv, _) = config.num_attention_heads, kv_shape(config)
    if size > 1 and (heads % size or kv % size):
        fits = [n for n in range(2, kv + 1) if heads % n == 0 and kv % n == 0]
        instead = f"launch {' or '.join(map(str, fits))} processes (--nproc-per-node), or" if fits else "no number of processes can;"
        raise UnsupportedModelError(
            f"tensor parallelism over {size} processes gives each an equal share of the attention heads, but {what} "
            f"has {heads} query heads and {kv} KV heads: {instead} load the whole model in each process (drop tp_plan)"
        )


def check(model) -> None:
    """Refuse a tensor-parallel model collab cannot run: heads split unevenly over the ranks."""
    check_heads(model.config, degree(model))
