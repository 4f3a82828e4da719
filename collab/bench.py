"""`python -m collab bench`: collab against HF `generate`, side by side in one process.

For each context length and worker count W it times, on the same model, prompt and token
count (greedy, EOS ignored): HF `generate` at batch 1, HF `generate` at batch W (the prompt
repeated W times), and collab with W workers and full visibility. Rounds are interleaved
(one of each, then again) and the best round is kept, so machine noise hits all alike. It
prints aggregate tokens/s and ratios, and writes JSON. The floor is one bare forward of W single
tokens over a preallocated KV cache of the same length (weights and attention only, distinct K
and V tensors), timed like collab's step: the mean over as many calls as collab has decode steps,
best round kept on both sides.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass

import torch

_TEXT = (
    "Parallel reasoning splits a long chain of thought across several workers that write at "
    "the same time and read each other's progress. Each worker keeps its own block of tokens, "
    "and every block is stored once in a shared cache. "
)


@dataclass
class Row:
    context: int
    workers: int
    new_tokens: int
    hf_batch1_tok_s: float
    hf_batchw_tok_s: float
    collab_tok_s: float
    floor_step_ms: float  # a bare forward of W tokens over a KV cache of the same length
    collab_step_ms: float  # collab's decode step (prefill excluded)

    @property
    def vs_floor(self) -> float:
        return self.collab_step_ms / self.floor_step_ms

    @property
    def vs_batchw(self) -> float:
        return self.collab_tok_s / self.hf_batchw_tok_s

    @property
    def vs_batch1(self) -> float:
        return self.collab_tok_s / self.hf_batch1_tok_s


def make_prompt(tokenizer, context: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < context:
        ids += tokenizer(_TEXT, add_special_tokens=False).input_ids
    return ids[:context]


def _time(fn) -> float:
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.synchronize()  # GPU work still queued belongs to what ran before
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def hf_generate(model, prompt: list[int], batch: int, tokens: int) -> float:
    ids = torch.tensor([prompt] * batch, device=model.device)
    kwargs = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=0)
    with torch.inference_mode():
        return _time(lambda: model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs))


def collab_generate(model, prompt: list[int], workers: int, tokens: int) -> tuple[float, float]:
    """(wall seconds, mean decode-step seconds)."""
    from .api import generate

    t0 = time.perf_counter()
    r = generate(model, prompt, template=None, workers=workers, max_new_tokens=tokens, ignore_eos=True, do_sample=False,
                 progress=False)
    wall = time.perf_counter() - t0
    s = r.stats
    return wall, (s.wall_time_s - s.prefill_time_s) / max(1, s.forward_passes - 1)


def _floor_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    k, v = kwargs["floor_kv"][module.layer_idx]
    out = torch.nn.functional.scaled_dot_product_attention(query, k, v, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2), None


def floor_step(model, workers: int, length: int, calls: int = 8) -> float:
    """Mean seconds of `calls` forwards of W single tokens, each attending to `length` cached
    keys: weights and attention only (no cache bookkeeping, no masks, no sampling)."""
    from transformers import AttentionInterface

    from .support import kv_shape

    AttentionInterface.register("collab_floor", _floor_attention)
    config = model.config
    kv_heads, head_dim = kv_shape(config)
    weight = model.get_input_embeddings().weight
    dtype, device = weight.dtype, weight.device
    shape = (workers, kv_heads, length, head_dim)
    kv = [(torch.randn(shape, dtype=dtype, device=device), torch.randn(shape, dtype=dtype, device=device))
          for _ in range(config.num_hidden_layers)]
    ids = torch.ones(workers, 1, dtype=torch.long, device=device)
    pos = torch.full((workers, 1), length, device=device)
    previous = config._attn_implementation
    model.set_attn_implementation("collab_floor")
    forward = lambda: model(input_ids=ids, position_ids=pos, use_cache=False, floor_kv=kv, logits_to_keep=1)  # noqa: E731
    try:
        with torch.inference_mode():
            forward()  # warm up
            return _time(lambda: [forward() for _ in range(calls)]) / calls
    finally:
        model.set_attn_implementation(previous)


def check_args(model, workers: list[int], contexts: list[int], tokens: int) -> None:
    """Bad flags get a clear error before anything runs."""
    if not workers or any(w < 1 for w in workers):
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if tokens < 1:
        raise ValueError(f"--tokens must be >= 1, got {tokens}")
    if not contexts or any(c < 1 for c in contexts):
        raise ValueError(f"--context must be >= 1, got {contexts}")
    limit = model.config.max_position_embeddings
    for c in contexts:
        for w in workers:
            if c + w * tokens > limit:
                raise ValueError(
                    f"context {c} + {w} workers x {tokens} tokens = {c + w * tokens} exceeds the model's "
                    f"context of {limit}: lower --context, --workers or --tokens"
                )


def run(model, tokenizer, workers=(1, 2, 4, 8), contexts=(256,), tokens=64, rounds=2, log=print) -> list[Row]:
    check_args(model, list(workers), list(contexts), tokens)
    torch.manual_seed(0)
    rows = []
    for context in contexts:
        prompt = make_prompt(tokenizer, context)
        hf_generate(model, prompt, 1, 4)  # warm up
        collab_generate(model, prompt, 2, 4)
        hf1 = min(hf_generate(model, prompt, 1, tokens) for _ in range(rounds))
        for w in workers:
            best_hf, best_collab, best_step, best_floor = (float("inf"),) * 4
            for _ in range(rounds):
                best_hf = min(best_hf, hf_generate(model, prompt, w, tokens))
                wall, step = collab_generate(model, prompt, w, tokens)
                best_collab, best_step = min(best_collab, wall), min(best_step, step)
                best_floor = min(best_floor, floor_step(model, w, context + w * tokens // 2, max(1, tokens - 1)))
            row = Row(context, w, tokens, tokens / hf1, w * tokens / best_hf, w * tokens / best_collab,
                      1000 * best_floor, 1000 * best_step)
            rows.append(row)
            log(_format(row))
    return rows


def _format(row: Row) -> str:
    return (
        f"ctx {row.context:5d}  W {row.workers}  HF b1 {row.hf_batch1_tok_s:6.1f} tok/s  "
        f"HF bW {row.hf_batchw_tok_s:6.1f}  collab {row.collab_tok_s:6.1f}  "
        f"collab/HF-bW {row.vs_batchw:4.2f}x  collab/HF-b1 {row.vs_batch1:4.2f}x  "
        f"step {row.collab_step_ms:6.1f} ms vs floor {row.floor_step_ms:6.1f} ms = {row.vs_floor:4.2f}x"
    )


def write_json(rows: list[Row], path: str, model_name: str) -> None:
    payload = {
        "model": model_name,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "rows": [asdict(r) | {"collab_vs_hf_batchw": r.vs_batchw, "collab_vs_hf_batch1": r.vs_batch1,
                              "collab_step_vs_floor": r.vs_floor} for r in rows],
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
