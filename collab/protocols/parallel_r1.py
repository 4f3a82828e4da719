"""Parallel-R1's format, as its rollout loop runs it (zhengkid/Parallel-R1,
`parallel_thinking_loop_v3.py`). A worker writes `<Parallel>`; `paths` paths (2 in every released
script) start from its view, each seeded `<Path>`, and end at `</Path>`. At the join the worker
sees the paths one after another (no separator) and is fed `</Parallel>\\n<Summary>`; it writes
the summary, `</Summary>` and goes on (more blocks may follow).

`seen=False` (default, the released "Unseen" models): paths do not see each other and start at
one position (overlap layout), as its attention mask and position ids train them. `seen=True`:
the paths are laid out one after another and, under "full" visibility, see each other's live
tokens (collab's concurrent form of the causal "Seen" variant, where a later path is trained on
the whole earlier one).

Not reproduced: the loop's cap of 4 parallel blocks per response, and its replacing a path's
EOS by `</Path>`.
"""

from __future__ import annotations

import re

from .base import DoneMark, Protocol, SpawnMark, scan_tags

_OPEN = re.compile(r"<Parallel>")
_END = re.compile(r"</Path>")


class ParallelR1(Protocol):
    name = "parallel_r1"
    layout = "overlap"
    siblings_visible = False
    join_head = "</Parallel>\n<Summary>"
    prompt = "parallel_r1.md"
    limits = {"max_depth": 1, "max_concurrent": 64, "max_workers": 64}

    def __init__(self, paths: int = 2, seen: bool = False):
        if isinstance(paths, bool) or not isinstance(paths, int) or paths < 2:
            raise ValueError(f"ParallelR1(paths={paths!r}): a parallel block has at least 2 paths")
        self.paths, self.seen = paths, bool(seen)
        if seen:
            self.layout, self.siblings_visible = "contiguous", True

    def scan(self, text, start, child, memo):
        if child:
            return scan_tags(text, start, [(_END, lambda m: [DoneMark(m.group(0))])], None)
        return scan_tags(text, start, [(_OPEN, lambda m: [SpawnMark(("<Path>",) * self.paths, wait=True)])], None)
