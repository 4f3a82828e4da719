"""Habits of transformers users, met where they have a meaning in collab and refused with
collab's equivalent where they do not: tensor prompts (`input_ids`, 1-D or [1, T]), an all-ones
`attention_mask`, a `GenerationConfig`, `eos_token_id`, `pad_token_id` (collab never pads),
`streamer`s (one for the run's first worker, or one per root worker); `max_length`,
`num_return_sequences`, `return_dict_in_generate` and the like get a hint.
"""

from __future__ import annotations

import difflib

HINTS = {
    "max_length": "collab budgets new tokens per worker: pass max_new_tokens=... (the prompt is not counted)",
    "min_length": "collab has no minimum length: pass ignore_eos=True to run workers to max_new_tokens",
    "min_new_tokens": "collab has no minimum length: pass ignore_eos=True to run workers to max_new_tokens",
    "num_return_sequences": "each worker is one sequence: pass workers=N (strategy='self_consistency' for independent samples)",
    "return_dict_in_generate": "collab returns a collab.Result: result.workers[i].token_ids and .text per worker",
    "output_scores": "pass output_logits=True: result.workers[i].logits",
    "num_beams": "collab runs workers, not beams: strategy='tree_of_thoughts' or 'mcts' searches over forked steps",
    "stopping_criteria": "pass callback=... (raise in it to stop; the partial result is kept) or step_end=...",
    "max_time": "pass callback=... and raise in it when your time is up (the partial result is kept)",
    "prefix_allowed_tokens_fn": "pass logits_processor=[...] (called per worker with its own tokens)",
    "use_cache": "collab always runs on its shared KV cache",
    "past_key_values": "collab builds its own shared KV cache for each run",
}


def refuse_unknown(options: dict, valid) -> None:
    """A TypeError for the first option collab does not take: its equivalent, or a near name."""
    for name in options:
        hint = HINTS.get(name)
        if hint:
            raise TypeError(f"{name}= is a transformers generate option: {hint}")
        close = difflib.get_close_matches(name, list(valid), n=1)
        raise TypeError(f"unknown option {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))


def prompt_from(prompt, input_ids, attention_mask):
    """The prompt, with token tensors (1-D or [1, T]) as lists of ids."""
    if input_ids is not None:
        if prompt not in ("", None):
            raise TypeError("pass the prompt once: as prompt=... or as input_ids=..., not both")
        prompt = input_ids
    if _is_tensor(prompt):
        prompt = _ids(prompt, "prompt")
    if attention_mask is not None:
        mask = _ids(attention_mask, "attention_mask") if _is_tensor(attention_mask) else list(attention_mask)
        if any(m != 1 for m in mask) or (isinstance(prompt, list) and len(mask) != len(prompt)):
            raise ValueError("collab does not pad: its workers share one unpadded prompt; pass the prompt's ids "
                             "without padding (attention_mask all ones, or none)")
    return prompt


def _is_tensor(value) -> bool:
    return type(value).__module__.split(".")[0] in ("torch", "numpy") and hasattr(value, "shape")


def _ids(value, name: str) -> list[int]:
    shape = tuple(value.shape)
    if len(shape) == 2 and shape[0] == 1:
        value = value[0]
    elif len(shape) != 1:
        raise ValueError(f"{name} of shape {shape}: collab's workers share one prompt; pass a 1-D tensor or one row "
                         "[1, T] (run several prompts one after another)")
    return [int(t) for t in value.tolist()]


def eos_from(eos_token_id, generation_config) -> set[int] | None:
    """The run's end-of-sequence ids when the caller names them (else None: the model's and the
    tokenizer's)."""
    value = eos_token_id if eos_token_id is not None else getattr(generation_config, "eos_token_id", None)
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple, set)) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"eos_token_id={value!r}: give a token id (an int >= 0) or a list of them")
    return set(values)


def streamers(streamer) -> list:
    """One streamer, or a list with one per root worker; each must have put() and end()."""
    if streamer is None:
        return []
    out = list(streamer) if isinstance(streamer, (list, tuple)) else [streamer]
    for s in out:
        if not (callable(getattr(s, "put", None)) and callable(getattr(s, "end", None))):
            raise TypeError(f"streamer {s!r} has no put()/end(): pass a transformers streamer (TextStreamer, "
                            "TextIteratorStreamer) or a list of them, one per root worker")
    return out


def check_model_argument(model, prompt) -> None:
    """`generate("What is 2+3?")`: the question in the model's place is said so, not looked up on the Hub."""
    empty = prompt is None or (isinstance(prompt, (str, list)) and not prompt)
    if isinstance(model, str) and empty and (any(c.isspace() for c in model.strip()) or model.rstrip().endswith("?")):
        raise TypeError(f"model={model!r} looks like a prompt: the model comes first; pass "
                        f"collab.generate(None, {model!r}) for the embedded default model")
