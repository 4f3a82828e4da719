"""A stand-in model for dry runs: views and schedules depend on the text, not on the weights,
so a one-layer model of the tokenizer's vocabulary replays a forced trace at little cost."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4)
def standin_model(vocab_size: int, eos_token_id: int, context: int = 1 << 16):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=context,
                         eos_token_id=eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()
