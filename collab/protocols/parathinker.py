"""ParaThinker's format, as its vLLM engine runs it: P paths from the start, then one summary.

Each root starts P <= 8 paths before generating, seeded `<think1>` ... `<thinkP>` (no newline);
path i ends at `</think{i}>`. All paths start at one position right after the prompt (overlap
layout) and do not see each other. The thinking stage ends once `ratio` of the paths have ended
(the engine's first-finish default: 0.1, so the first path to end); the others are cut where
they are (their text stays in the summary's view). The root is then fed the engine's fixed
summary prefix, sees every path, and ends at `</summary>`.

Not reproduced: the engine pads a finished path with `<vllm_pad>` tokens to its KV block size
(16) and adds learned segment embeddings to each path's K/V (a model change, not a context).
"""

from __future__ import annotations

import math
import re

from .base import DoneMark, Protocol, scan_tags

MAX_PATHS = 8
SUMMARY = "<summary>By analyzing multiple reasoning processes above, I concluded that: The final answer is"
_END = re.compile(r"</think\d*>")
_SUMMARY_END = re.compile(r"</summary>")


class ParaThinker(Protocol):
    name = "parathinker"
    layout = "overlap"
    siblings_visible = False
    join_head = SUMMARY
    prompt = "parathinker.md"
    limits = {"max_depth": 1, "max_concurrent": MAX_PATHS + 1, "max_workers": 64}

    def __init__(self, ratio: float = 0.1):
        if not 0 < ratio <= 1:
            raise ValueError(f"ParaThinker(ratio={ratio!r}): the share of paths that ends thinking must be in (0, 1]")
        self.ratio = ratio

    def start(self, workers):
        if workers > MAX_PATHS:
            raise ValueError(f"parathinker runs at most {MAX_PATHS} paths (its engine's <think1>..<think8>), got workers={workers}")
        return tuple(f"<think{i}>" for i in range(1, workers + 1))

    def enough(self, ended, children):
        return ended >= max(1, math.ceil(self.ratio * children - 1e-9))

    def scan(self, text, start, child, memo):
        rule = (_END, lambda m: [DoneMark(m.group(0))]) if child else (_SUMMARY_END, lambda m: [DoneMark(m.group(0))])
        return scan_tags(text, start, [rule], None)
