"""One validation layer for the options of `collab.generate` and `collab.stream`: each option's
type and range, checked before anything is loaded or computed, with a message that names the
option and the fix. numpy and torch scalars count as the Python numbers they hold. Pure Python
(torch and numpy are only recognised, never imported here).

    >>> normalize({"temperature": 0.7, "seed": 3, "do_sample": True})["seed"]
    3
    >>> normalize({"temperature": "0.7"})
    Traceback (most recent call last):
    ...
    TypeError: temperature='0.7': give a number (a float > 0 such as 0.7, or None), not str
"""

from __future__ import annotations

import math

from .config import MAX_PAGE_SIZE, MAX_WORKERS

# option -> (kind, optional (None allowed), lowest, highest, how to write it)
INT, FLOAT, BOOL, CALLABLE, STR = "int", "float", "bool", "callable", "str"
SPEC = {
    "workers": (INT, False, 1, MAX_WORKERS, f"an int from 1 to {MAX_WORKERS}"),
    "page_size": (INT, False, 1, MAX_PAGE_SIZE, f"an int from 1 to {MAX_PAGE_SIZE} (tokens per KV page; 64 suits most runs)"),
    "finisher_tokens": (INT, False, 1, None, "a positive number of tokens, e.g. 64"),
    "max_new_tokens": (INT, True, 1, None, "a positive number of tokens per worker, e.g. 256 (None: the generation config's, else 256)"),
    "pad_token_id": (INT, True, 0, None, "a token id, or None (collab never pads: it is not used)"),
    "top_k": (INT, True, 0, None, "an int >= 0 (0 disables it), or None"),
    "stop_repeats": (INT, True, 2, None, "an int >= 2, the times a span of a worker's tokens repeats in a row before it "
                     "ends, or None (off)"),
    "seed": (INT, True, 0, 2**63 - 1, "an int from 0 to 2**63 - 1, or None for a fresh one"),
    "temperature": (FLOAT, True, 0.0, None, "a float > 0 such as 0.7, or None"),
    "top_p": (FLOAT, True, 0.0, 1.0, "a float in (0, 1] such as 0.9, or None"),
    "repetition_penalty": (FLOAT, True, 0.0, None, "a float > 0 (1.0 disables it), or None"),
    "do_sample": (BOOL, True, None, None, "True, False, or None for the model's default"),
    "finisher": (BOOL, True, None, None, "True, False, or None for the strategy's default"),
    "ignore_eos": (BOOL, False, None, None, "True or False"),
    "output_logits": (BOOL, False, None, None, "True or False"),
    "progress": (BOOL, False, None, None, "True or False"),
    "scorer": (CALLABLE, True, None, None, "a callable(text) -> float, or None"),
    "callback": (CALLABLE, True, None, None, "a callable(StepUpdate), or None"),
    "step_end": (CALLABLE, True, None, None, "a callable(text_before_break) -> bool, or None"),
    "answer": (STR, False, None, None, "'auto', 'boxed', 'number' or 'code'"),
    "attention": (STR, False, None, None, "'auto', 'sdpa', 'triton', 'flash' or 'reference'"),
    "template": (STR, True, None, None, "'default', or None for raw mode"),
    "strategy": (STR, True, None, None, "a preset name such as 'adaptive', or None"),
}
EXCLUSIVE = {"temperature", "top_p", "repetition_penalty"}  # their lowest value is not allowed


def _number(value):
    """A numpy or torch scalar as the Python number it holds; anything else as it is."""
    kind = type(value).__module__.split(".")[0]
    if kind == "numpy" and getattr(value, "shape", None) == ():
        return value.item()
    if kind == "torch" and hasattr(value, "numel") and value.numel() == 1 and value.dim() == 0:
        return value.item()
    return value


def check(name: str, value):
    """`value` for option `name`, normalized (numpy/torch scalars to Python), or an error that
    names the option and says what to give."""
    kind, optional, low, high, how = SPEC[name]
    if value is None:
        if optional:
            return None
        raise TypeError(f"{name}=None: give {how}")
    value = _number(value)
    if kind == BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"{name}={value!r}: give {how} (a string such as 'false' is not a bool)")
        return value
    if kind == CALLABLE:
        if not callable(value):
            raise TypeError(f"{name}={value!r}: give {how}")
        return value
    if kind == STR:
        if not isinstance(value, str):
            raise TypeError(f"{name}={value!r}: give {how}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "an int" if kind == INT else "a number"
        raise TypeError(f"{name}={value!r}: give {what} ({how}), not {type(value).__name__}")
    if kind == INT:
        if isinstance(value, float):
            if not value.is_integer():
                raise TypeError(f"{name}={value!r}: give an int ({how})")
            value = int(value)
    else:
        if not math.isfinite(value):
            raise ValueError(f"{name}={value!r}: give a finite number ({how})")
        value = float(value)
    too_low = low is not None and (value <= low if name in EXCLUSIVE else value < low)
    if too_low or (high is not None and value > high):
        raise ValueError(f"{name}={value!r} is out of range: give {how}")
    return value


def normalize(options: dict) -> dict:
    """Every option in SPEC that `options` holds, checked and normalized; `limits`, `search` and
    `kv_cap` checked for their type; the others as they are (their own resolvers name them)."""
    from .controller import Limits
    from .search import SearchOptions

    out = {k: check(k, v) if k in SPEC else v for k, v in options.items()}
    if "limits" in out and not (out["limits"] is None or isinstance(out["limits"], (dict, Limits))):
        raise TypeError(f"limits={out['limits']!r}: give collab.Limits(...), a dict of its fields, or None for the "
                        "format's defaults")
    if "search" in out and not (out["search"] is None or isinstance(out["search"], (dict, SearchOptions))):
        raise TypeError(f"search={out['search']!r}: give collab.SearchOptions(...), a dict of its fields, or None")
    if "kv_cap" in out:
        out["kv_cap"] = _number(out["kv_cap"])
    return out
