"""Multiverse's format, as Multiverse-Engine runs it (its SGLang scheduler's fork and merge). A
worker writes

    <Parallel>
    <Goal>
    <Outline>1: ...</Outline>
    <Outline>2: ...</Outline>
    </Goal>

and at `</Goal>` one path per outline whose id the engine's pattern reads (`1`, `2`, nested
`1.1`, `2.3.1`, kept as written) starts from the worker's view through `</Goal>`, its block
seeded `\\n<Path>\\n{id}:`. A path ends one token after `</Path>` (the engine keeps that token).
Paths start at one position and do not see each other (overlap layout). The worker waits; at
the join it sees the first path whole and every later one without its leading newline, each at
the positions it was written at, and is fed `<Conclusion>\\n` after the longest. Paths nest (the
engine forks up to depth 6); a `<Goal>` may be of any length.
"""

from __future__ import annotations

import re

from .base import OUTLINE_ID, DoneMark, JoinLayout, Malformed, Protocol, SpawnMark, scan_tags


class Multiverse(Protocol):
    name = "multiverse"
    layout = "overlap"
    siblings_visible = False
    join_head = "<Conclusion>\n"
    prompt = "multiverse.md"
    max_open = None
    limits = {"max_depth": 6, "max_concurrent": 64, "max_workers": 64}
    outer = "Goal"  # the tag holding the outlines
    child = "Path"  # the tag of each child's block
    after = 1  # tokens a child keeps after its closing tag
    id_pattern = OUTLINE_ID  # what the engine reads a child's id from

    def scan(self, text, start, child, memo):
        block = re.compile(rf"<{self.outer}>(.*?)</{self.outer}>", re.S)
        rules = [(block, self._outlines)]
        if child:
            rules.append((re.compile(rf"</{self.child}>"), lambda m: [DoneMark(m.group(0), after=self.after)]))
        return scan_tags(text, start, rules, re.compile(rf"<{self.outer}>"), self.max_open)

    def _outlines(self, m):
        body = m.group(1)
        if f"<{self.outer}>" in body:
            body = body[body.rindex(f"<{self.outer}>") + len(self.outer) + 2 :]  # the engine reads from the last one
        ids = self.ids(self.id_pattern.findall(body))
        if not ids:
            return [Malformed(f"<{self.outer}> without any child id the engine reads: nothing started")]
        return [SpawnMark(tuple(f"\n<{self.child}>\n{i}:" for i in ids), wait=True)]

    def ids(self, found: list[str]) -> list[str]:
        return found

    def join(self, block, children, memo):
        # The engine appends each later path from its `<Path>` token: its leading newline is dropped.
        return JoinLayout(self.join_head, skip=(0,) + (1,) * (len(children) - 1))
