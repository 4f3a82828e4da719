"""Attention kernels over collab's paged shared KV store (installed as `collab.kernels`).

`reference` is plain PyTorch and is what runs on CPU; accelerated kernels are tested against it.
"""

from .reference import causal_attention, paged_attention, rotate, rotate_half, rotation_tables

__all__ = ["causal_attention", "paged_attention", "rotate", "rotate_half", "rotation_tables"]
