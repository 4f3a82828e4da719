"""ThreadWeaver's format, as its released inference code runs it. A worker writes

    <Parallel>
    <Outlines>
    <Outline>1: ...</Outline>
    <Outline>2: ...</Outline>
    </Outlines>

and at `</Outlines>` one thread per outline id starts from the worker's view, its block seeded
`\\n<Thread>\\n{id}:`; a thread ends at `</Thread>`. Threads do not see each other. At the join
the worker sees the threads one after another (the first whole, later ones without their leading
newline: `</Thread><Thread>`), then is fed the join text of the chosen mode, and writes
`</Parallel>` (or the conclusion) itself:

- `join="sft"` (default; the SFT evaluation's `branching_generate`): `\\n`; duplicate outline ids
  each get a thread.
- `join="rl"` (the RL agent loop, `no_conclusion=False`): `\\n<Conclusion>\\n`; later duplicates
  of an outline id are dropped.

The parsing is Multiverse's with other tags; the layout is contiguous, as ThreadWeaver's engines
re-prefill the joined text with flat positions.
"""

from __future__ import annotations

from .multiverse import Multiverse

JOINS = {"sft": "\n", "rl": "\n<Conclusion>\n"}


class ThreadWeaver(Multiverse):
    name = "threadweaver"
    layout = "contiguous"
    prompt = "threadweaver.md"
    outer = "Outlines"
    child = "Thread"
    after = 0
    limits = {"max_depth": 1, "max_concurrent": 64, "max_workers": 64}

    def __init__(self, join: str = "sft"):
        if join not in JOINS:
            raise ValueError(f"ThreadWeaver(join={join!r}): choose 'sft' (its SFT evaluation) or 'rl' (its RL loop)")
        self.mode, self.join_head = join, JOINS[join]

    def ids(self, found):
        return list(dict.fromkeys(found)) if self.mode == "rl" else found
