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

_GOAL = re.compile(r"<Goal>(.*?)</Goal>", re.S)
_OPEN = re.compile(r"<Goal>")
_OUTLINE = re.compile(r"<Outline>(.*?)</Outline>", re.S)
_END = re.compile(r"</Path>")


class Multiverse(Protocol):
    name = "multiverse"
    layout = "overlap"
    context = "fork"
    siblings_visible = False
    join_head = "<Conclusion>\n"
    prompt = "multiverse.md"
    path_head = "<Path>\n{i}:"

    def scan(self, text, start, child, memo):
        rules = [(_GOAL, self._goal)]
        if child:
            rules.append((_END, lambda m: [Done(m.group(0))]))
        return scan_tags(text, start, rules, _OPEN)

    def _goal(self, m):
        body = m.group(1)
        if "<Goal>" in body:
            return [Malformed("nested <Goal>: no paths started")]
        outlines = numbered(_OUTLINE.findall(body))
        if not outlines:
            return [Malformed("<Goal> without any <Outline>: no paths started")]
        return [Spawn(tuple(self.path_head.format(i=i) for i, _ in outlines), wait=True)]
