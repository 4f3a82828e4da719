"""AsyncThink's organizer-worker format (Chi et al., 2025, "The Era of Agentic Organization"):
an organizer forks a worker with `<FORKi>sub-query</FORKi>` (also `<FORK-i>`), keeps writing
while it runs, and joins that one worker with `<JOINi>` whenever it chooses: if the worker is
still running the organizer pauses until it ends; the worker's text then enters the organizer's
view after its `<JOINi>` (reached by a view, not re-fed) and the organizer is fed `join_text`.
Other workers keep running: an asynchronous join. A worker sees the organizer's view through
its `</FORKi>` (so it reads its sub-query), then `worker_head`, and ends at EOS or its budget.
An id forked twice, or a join of an id never forked or already joined, is malformed.

No code, model or example trace of AsyncThink is public; the tags follow the paper's
description, and `worker_head` / `join_text` (what exactly wraps a worker's return) are
choices of collab's, configurable.
"""

from __future__ import annotations

import re

from .base import Malformed, Protocol, SpawnMark, WaitMark, scan_tags

_FORK = re.compile(r"<FORK-?(\w+)>(.*?)</FORK-?\1>", re.S)
_OPEN = re.compile(r"<FORK-?\w+>")
_JOIN = re.compile(r"<JOIN-?(\w+)>")


class AsyncThink(Protocol):
    name = "asyncthink"
    layout = "contiguous"
    siblings_visible = False
    prompt = "asyncthink.md"
    limits = {"max_depth": 1, "max_concurrent": 64, "max_workers": 64}

    def __init__(self, worker_head: str = "\n", join_text: str = "\n"):
        for name, value in (("worker_head", worker_head), ("join_text", join_text)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"AsyncThink({name}={value!r}): give a non-empty text (it is fed before the next token is read)")
        self.worker_head, self.join_head = worker_head, join_text

    def scan(self, text, start, child, memo):
        if child:  # workers end at EOS; they do not fork
            return [], len(text)
        return scan_tags(text, start, [(_FORK, self._fork), (_JOIN, lambda m: [WaitMark((m.group(1),))])], _OPEN)

    def _fork(self, m):
        if not m.group(2).strip():
            return [Malformed(f"empty {m.group(0)!r}: no worker started")]
        return [SpawnMark((self.worker_head,), wait=False, key=m.group(1))]
