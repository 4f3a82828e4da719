"""Which models collab can run exactly, and the RoPE frequencies it rotates queries with.

collab stores keys at block-local positions and rotates queries by position deltas, which is
exact only for models whose every attention layer uses standard rotary embeddings over the full
head and no position-dependent masking that a view could cut. Everything else is refused up
front with the reason.
"""

from __future__ import annotations

import torch

# Families whose attention is "RoPE on q/k (optionally after q/k norm), then softmax(qk^T) v",
# validated by the exactness tests.
SUPPORTED_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
SUPPORTED_ROPE = ("default", "linear", "llama3", "yarn")

_WHY_NOT = {
    "bert": "it is a bidirectional encoder, not a causal decoder",
    "roberta": "it is a bidirectional encoder, not a causal decoder",
    "distilbert": "it is a bidirectional encoder, not a causal decoder",
    "gpt2": "it uses learned absolute position embeddings, not RoPE",
    "gpt_bigcode": "it uses learned absolute position embeddings, not RoPE",
    "opt": "it uses learned absolute position embeddings, not RoPE",
    "bloom": "it uses ALiBi position biases, not RoPE",
    "mpt": "it uses ALiBi position biases, not RoPE",
    "falcon": "its variants mix ALiBi and RoPE and use parallel attention layouts",
    "gpt_neox": "it rotates only part of each head (partial rotary)",
    "phi": "it rotates only part of each head (partial rotary)",
    "deepseek_v2": "multi-head latent attention rotates a separate decoupled key part",
    "deepseek_v3": "multi-head latent attention rotates a separate decoupled key part",
    "gemma2": "it caps attention logits and alternates sliding-window layers",
    "gemma3": "it alternates sliding-window layers with different RoPE bases",
    "smollm3": "some of its layers use no positional encoding (NoPE)",
}

_WHY_ROPE = {
    "dynamic": "dynamic NTK scaling recomputes frequencies from the longest position in each call, "
    "and collab's block-local positions would change them",
    "longrope": "LongRoPE switches frequency tables on the longest position in each call, "
    "and collab's block-local positions would change them",
}


class UnsupportedModelError(ValueError):
    """The model cannot run under collab's shared-cache attention exactly."""


def check_model(model, view_tokens: int) -> None:
    """Refuse models collab cannot run exactly, naming the reason. `view_tokens` is the longest
    view the run can build (prompt plus every worker's budget)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "get_output_embeddings"):
        raise UnsupportedModelError(
            f"collab needs a transformers causal LM (AutoModelForCausalLM), got {type(model).__name__}"
        )
    if model.get_output_embeddings() is None:
        raise UnsupportedModelError(
            f"{type(model).__name__} has no language-model head (a base model, such as `model.model`?): collab samples "
            "tokens from logits; pass the causal LM that wraps it (AutoModelForCausalLM)"
        )
    if getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(
            f"{config.model_type!r} is an encoder-decoder model; collab runs decoder-only causal LMs"
        )
    family = config.model_type
    if family not in SUPPORTED_FAMILIES:
        why = _WHY_NOT.get(family, "collab has not validated its attention and position scheme")
        raise UnsupportedModelError(
            f"model family {family!r} is not supported: {why}. "
            f"Supported families: {', '.join(SUPPORTED_FAMILIES)}"
        )
    rope = getattr(config, "rope_parameters", None) or {}
    if "rope_type" not in rope and rope and all(isinstance(v, dict) for v in rope.values()):
        raise UnsupportedModelError("per-layer-type RoPE parameters are not supported")
    rope_type = rope.get("rope_type", "default")
    if rope_type not in SUPPORTED_ROPE:
        why = _WHY_ROPE.get(rope_type, "collab has not validated it")
        raise UnsupportedModelError(
            f"RoPE type {rope_type!r} is not supported: {why}. Supported: {', '.join(SUPPORTED_ROPE)}"
        )
    if rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise UnsupportedModelError("partial rotary embeddings (partial_rotary_factor < 1) are not supported")
    _check_window(config, view_tokens)
    context = getattr(config, "max_position_embeddings", None)
    if context is not None and view_tokens > context:
        raise ValueError(
            f"the prompt plus the token budget need views of up to {view_tokens} tokens, beyond the "
            f"model's context of {context}: lower max_new_tokens or workers, or shorten the prompt"
        )


def _check_window(config, view_tokens: int) -> None:
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    uses_window = window is not None and (
        layer_types is None or "sliding_attention" in layer_types
    )
    if config.model_type == "qwen2" and not getattr(config, "use_sliding_window", False):
        uses_window = False
    if uses_window and window < view_tokens:
        raise UnsupportedModelError(
            f"the model attends through a sliding window of {window} tokens, shorter than the views "
            f"this run can build ({view_tokens} tokens), which the window would cut; lower "
            "max_new_tokens or workers, or shorten the prompt"
        )


def kv_shape(config) -> tuple[int, int]:
    """(KV heads, head dim) of a decoder config, as transformers derives them."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return heads, head_dim


def rope_inv_freq(model) -> torch.Tensor:
    """The model's RoPE inverse frequencies [D/2], fp32 on CPU (scaled as its RoPE type says)."""
    found = [m.inv_freq for m in model.modules() if isinstance(getattr(m, "inv_freq", None), torch.Tensor)]
    if not found:
        raise UnsupportedModelError(f"{type(model).__name__} has no rotary embedding module with inv_freq")
    first = found[0].detach().float().cpu()
    if any(f.shape != first.shape or not torch.equal(f.detach().float().cpu(), first) for f in found[1:]):
        raise UnsupportedModelError("the model uses several different RoPE tables; not supported")
    return first


def uncompiled(model):
    """The module inside a `torch.compile` wrapper: collab runs its own step loop, eagerly, with
    attention routed through its views, which a compiled graph would bypass; the wrapper and its
    graph are left as they were."""
    inner = getattr(model, "_orig_mod", None)
    return inner if inner is not None and type(model).__name__ == "OptimizedModule" else model
