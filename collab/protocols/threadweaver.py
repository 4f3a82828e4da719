"""ThreadWeaver's format. A worker writes

    <Parallel>
    <Outlines>
    <Outline>1: ...</Outline>
    <Outline>2: ...</Outline>
    </Outlines>

and at `</Outlines>` one thread per outline starts, seeded with `<Thread>\\n{i}:`; a thread ends at
`</Thread>`. The parent waits, then continues after `</Parallel>` (fed as the head of its next
block) seeing every thread, laid out one after another as ThreadWeaver serializes them.
"""

from __future__ import annotations

import re

from .base import Done, Malformed, Protocol, Spawn, numbered, scan_tags

_OUTLINES = re.compile(r"<Outlines>(.*?)</Outlines>", re.S)
_OPEN = re.compile(r"<Outlines>")
_OUTLINE = re.compile(r"<Outline>(.*?)</Outline>", re.S)
_END = re.compile(r"</Thread>")


class ThreadWeaver(Protocol):
    name = "threadweaver"
    layout = "contiguous"
    context = "fork"
    siblings_visible = False
    join_head = "</Parallel>\n"
    prompt = "threadweaver.md"

    def scan(self, text, start, child, memo):
        rules = [(_OUTLINES, self._outlines)]
        if child:
            rules.append((_END, lambda m: [Done(m.group(0))]))
        return scan_tags(text, start, rules, _OPEN)

    def _outlines(self, m):
        body = m.group(1)
        if "<Outlines>" in body:
            return [Malformed("nested <Outlines>: no threads started")]
        outlines = numbered(_OUTLINE.findall(body))
        if not outlines:
            return [Malformed("<Outlines> without any <Outline>: no threads started")]
        return [Spawn(tuple(f"<Thread>\n{i}:" for i, _ in outlines), wait=True)]
