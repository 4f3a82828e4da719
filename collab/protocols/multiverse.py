"""Multiverse's format. A worker writes

    <Parallel>
    <Goal>
    <Outline>1: ...</Outline>
    <Outline>2: ...</Outline>
    </Goal>

and at `</Goal>` one path per outline starts, its block seeded with `<Path>\\n{i}:`; a path ends at
`</Path>`. The parent waits; when every path is done it continues with `<Conclusion>` seeing all
of them. Paths see the parent's view up to `</Goal>` and not each other, and all start at the same
position (overlap layout), as Multiverse trains them.
"""

from __future__ import annotations

import re

from .base import Done, Malformed, Protocol, Spawn, numbered, scan_tags

_OUTLINE = re.compile(r"<Outline>(.*?)</Outline>", re.S)


class Multiverse(Protocol):
    name = "multiverse"
    layout = "overlap"
    context = "fork"
    siblings_visible = False
    join_head = "<Conclusion>\n"
    prompt = "multiverse.md"
    outer = "Goal"  # the tag holding the outlines
    child = "Path"  # the tag of each child's block

    def scan(self, text, start, child, memo):
        block = re.compile(rf"<{self.outer}>(.*?)</{self.outer}>", re.S)
        rules = [(block, self._outlines)]
        if child:
            rules.append((re.compile(rf"</{self.child}>"), lambda m: [Done(m.group(0))]))
        return scan_tags(text, start, rules, re.compile(rf"<{self.outer}>"))

    def _outlines(self, m):
        body = m.group(1)
        if f"<{self.outer}>" in body:
            return [Malformed(f"nested <{self.outer}>: nothing started")]
        outlines = numbered(_OUTLINE.findall(body))
        if not outlines:
            return [Malformed(f"<{self.outer}> without any <Outline>: nothing started")]
        return [Spawn(tuple(f"<{self.child}>\n{i}:" for i, _ in outlines), wait=True)]
