"""The KV memory budget: what a run's budgets allow, what the machine has, and a cap.

Before a run, `estimate` gives the most KV bytes the run's budgets allow (tokens x layers x
2 (K and V) x KV heads x head dim x dtype bytes); `check` refuses a run whose estimate exceeds
the memory available (or the `kv_cap` asked for), naming the knob to lower. For a tensor-parallel
model every figure is one process's: its share of the KV heads, its device's free memory (the
least over the ranks, so that all refuse alike), and `kv_cap` bounds each process's arena. During a run the
cap, counted in whole pages, ends workers gracefully (the youngest first, with a "kv_cap" event)
instead of letting the arena grow past it, and the arena is never reserved past it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tb": 10**12, "tib": 2**40}


def parse_bytes(value) -> int | None:
    """`kv_cap` as bytes: an int, or a string like "512MB" or "2 GiB"; None: no cap."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"kv_cap must be a number of bytes or a string like '2GiB', got {value!r}")
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"kv_cap {value!r} is not a size: write bytes as an int or e.g. '512MB', '2GiB'")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"kv_cap must be positive, got {value!r}")
    return value


def bytes_per_token(model) -> int:
    """KV bytes one token takes over all layers in this process: layers x 2 x KV heads x head dim
    x dtype bytes, where KV heads are this rank's share under tensor parallelism."""
    from .support import kv_shape
    from .tensor_parallel import kv_heads

    _, head_dim = kv_shape(model.config)
    return model.config.num_hidden_layers * 2 * kv_heads(model) * head_dim * model.dtype.itemsize


@dataclass(frozen=True, slots=True)
class Estimate:
    tokens: int  # the most tokens the budgets let the run store
    bytes: int
    prompt_bytes: int  # stored whatever the budgets
    parts: str  # how the tokens add up, for messages

    def __str__(self) -> str:
        return f"{format_bytes(self.bytes)} ({self.tokens} tokens: {self.parts})"


def estimate(model, prompt: int, headers: list[int], max_new_tokens: int, spawned: int = 0,
             spawned_tokens: int = 0, extra: int = 0, extra_what: str = "", page_size: int = 1,
             blocks: int | None = None) -> Estimate:
    """The worst case: the prompt, every root's header and budget, every worker the limits let
    the controller spawn with its budget, and `extra` (the finisher, or a search's tokens), in
    whole pages: each of the run's `blocks` (default: the prompt, the roots, each spawned worker
    and the block its parent continues in after the join, the extra) may leave its last page
    part empty. The prompt's bytes are its whole pages: what the arena holds whatever the budgets."""
    roots = sum(headers) + len(headers) * max_new_tokens
    tokens = prompt + roots + spawned * spawned_tokens + extra
    parts = [f"prompt {prompt}", f"{len(headers)} worker(s) x {max_new_tokens} + headers"]
    if spawned:
        parts.append(f"up to {spawned} spawned x {spawned_tokens}")
    if extra:
        parts.append(f"{extra_what} {extra}")
    if blocks is None:
        blocks = 1 + len(headers) + 2 * spawned + (1 if extra else 0)
    slack = blocks * (page_size - 1)  # the most a page-rounded arena holds beyond the tokens
    if slack:
        parts.append(f"up to {slack} in part-filled pages of {page_size}")
    per_token = bytes_per_token(model)
    prompt_pages = -(-prompt // page_size)
    return Estimate(tokens + slack, (tokens + slack) * per_token, prompt_pages * page_size * per_token, ", ".join(parts))


def available(model) -> int | None:
    """Free memory where the KV will live: the free CUDA memory of the model's first device,
    or the host's available RAM; None when unknown. Under tensor parallelism, the least over
    the ranks."""
    from .tensor_parallel import Group

    free, group = _free(model), Group.of(model)
    return free if group is None else group.least(free)


def _free(model) -> int | None:
    device = model.get_input_embeddings().weight.device
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class MemoryBudgetError(ValueError):
    """The run's budgets allow more KV than fits; the message names the knobs to lower."""


def check(need: Estimate, cap: int | None, free: int | None, knobs: str) -> None:
    """Refuse before any compute when even the prompt cannot fit under the cap, or when the
    budgets allow more KV than the memory available and no cap bounds the run."""
    if cap is not None:
        if free is not None and cap > free:
            raise MemoryBudgetError(f"kv_cap={format_bytes(cap)} is more than the {format_bytes(free)} of memory available: lower kv_cap")
        if need.prompt_bytes >= cap:
            raise MemoryBudgetError(
                f"the prompt alone needs {format_bytes(need.prompt_bytes)} of KV, over kv_cap={format_bytes(cap)}: "
                "shorten the prompt or raise kv_cap"
            )
        return
    if free is not None and need.bytes > free:
        raise MemoryBudgetError(
            f"the budgets allow up to {need} of KV, more than the {format_bytes(free)} available: lower {knobs}, "
            "or set kv_cap=... to end workers gracefully when the KV reaches it"
        )


def format_bytes(n: int) -> str:
    """Bytes for people: "1.5 GiB", "12.0 KiB", "512 B"."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
