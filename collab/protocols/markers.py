"""The default protocol for instruct models, taught by prompting (prompts/markers.md).

    <spawn>a task for a helper</spawn>   start a helper on that task (repeat for more helpers)
    <spawn>task 1
    task 2</spawn>                       one tag, one line per task: start a helper on each, together (a fan-out)
    <wait>                               pause until all your helpers are done, then read their work
    <done>                               you are finished

A helper's block starts with its task (prompts/markers_child.txt); it sees its parent's view up
to the spawn, and, under "full" visibility, its sibling helpers' live work (`Markers(siblings=False)`:
helpers blind to each other, Parallel-R1's "unseen" paths; the views `collab.train` teaches on).
"""

from __future__ import annotations

import re

from .. import prompts
from .base import DoneMark, Malformed, Protocol, SpawnMark, WaitMark, scan_tags

_SPAWN = re.compile(r"<spawn>(.*?)</spawn>", re.S | re.I)
_OPEN = re.compile(r"<spawn>", re.I)
_WAIT = re.compile(r"<(?:wait|join)\s*/?>", re.I)
_DONE = re.compile(r"<done\s*/?>", re.I)


class Markers(Protocol):
    name = "markers"
    layout = "contiguous"
    siblings_visible = True
    join_head = "\n"
    prompt = "markers.md"

    def __init__(self, siblings: bool = True):
        if not isinstance(siblings, bool):
            raise TypeError(f"Markers(siblings={siblings!r}): give True (helpers see each other's live work) or False")
        self.siblings_visible = siblings

    def __repr__(self) -> str:
        return f"Markers(siblings={self.siblings_visible})"

    def scan(self, text, start, child, memo):
        return scan_tags(text, start, [(_SPAWN, self._spawn), (_WAIT, lambda m: [WaitMark()]), (_DONE, lambda m: [DoneMark(m.group(0))])], _OPEN)

    def _spawn(self, m):
        tasks = [line.strip() for line in m.group(1).splitlines() if line.strip()]
        if not tasks:
            return [Malformed("empty <spawn></spawn>: no helper started")]
        if _OPEN.search(m.group(1)):
            return [Malformed("nested <spawn> inside a <spawn> task: no helper started")]
        child = prompts.load("markers_child.txt")
        return [SpawnMark(tuple(child.format(task=t) for t in tasks), wait=False)]
