"""collab as transformers' own decoding entry point:

    model.generate(**inputs, custom_generate=collab.CUSTOM_GENERATE, trust_remote_code=True,
                   workers=4, visibility="full", max_new_tokens=64)

runs `collab.generate` on the model with `input_ids` as a raw prompt (its one row: collab's
workers share one prompt) and returns what `model.generate` returns: a [workers, length] tensor
of each root worker's sequence (the prompt, then its tokens, right-padded with the pad id), or a
`GenerateDecoderOnlyOutput` with `return_dict_in_generate=True` (`scores`/`logits` per step with
`output_scores`/`output_logits`). The `GenerationConfig`, logits processors and the streamer
are honoured; every collab option (`workers`, `visibility`, `strategy`, ...) passes through.
"""

from __future__ import annotations

HF_ONLY = ("stopping_criteria", "prefix_allowed_tokens_fn", "assistant_model", "negative_prompt_ids",
           "negative_prompt_attention_mask")


def generate(model, inputs=None, generation_config=None, logits_processor=None, streamer=None, synced_gpus=None,
             use_model_defaults=None, **kwargs):
    import copy

    import torch
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    import collab

    for name in HF_ONLY:
        if kwargs.pop(name, None) is not None:
            raise TypeError(f"{name}= has no meaning in collab's decoding; see collab.generate's options")
    ids = inputs if inputs is not None else kwargs.pop("input_ids", None)
    config = copy.deepcopy(generation_config if generation_config is not None else model.generation_config)
    hf = {k: kwargs.pop(k) for k in list(kwargs) if hasattr(config, k) and k not in _COLLAB_OPTIONS}
    config.update(**hf)  # transformers' own options, as model.generate reads them
    if "max_length" in hf and kwargs.get("max_new_tokens") is None and config.max_new_tokens is None:
        config.max_new_tokens = max(1, hf["max_length"] - _length(ids))  # the prompt counts in max_length
    want_dict = bool(config.return_dict_in_generate)
    result = collab.generate(model, ids, template=None, generation_config=config,
                             logits_processor=list(logits_processor) if logits_processor else None, streamer=streamer,
                             output_logits=bool(config.output_scores or config.output_logits), **kwargs)
    roots = [w for w in result.workers if w.parent is None and w.role == "worker"]
    pad = config.pad_token_id if config.pad_token_id is not None else _first(config.eos_token_id, 0)
    longest = max(len(w.token_ids) for w in roots)
    rows = [list(result.prompt_ids) + w.token_ids + [pad] * (longest - len(w.token_ids)) for w in roots]
    sequences = torch.tensor(rows, device=ids.device if hasattr(ids, "device") else None)
    if not want_dict:
        return sequences
    per_step = None
    if config.output_scores or config.output_logits:  # [workers, vocab] per step; a finished worker's rows repeat its last
        per_step = tuple(torch.stack([w.logits[min(t, len(w.logits) - 1)] for w in roots]) for t in range(longest))
    return GenerateDecoderOnlyOutput(sequences=sequences, scores=per_step if config.output_scores else None,
                                     logits=per_step if config.output_logits else None)


_COLLAB_OPTIONS = {"max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "eos_token_id",
                   "pad_token_id", "output_logits"}


def _length(ids) -> int:
    shape = getattr(ids, "shape", None)
    return shape[-1] if shape is not None else len(ids)


def _first(value, default):
    if isinstance(value, (list, tuple)):
        return value[0] if value else default
    return default if value is None else value
