"""Skeleton-of-thought: an outline, then one worker per point, then a join.

The root writes a numbered outline (`1. ...` lines) and ends it with a blank line; one child per
point starts, seeded `Point {i}: {text}`, seeing the question and the outline. The root waits and
then writes the combined answer, seeing every point's work. Only the root's first outline
spawns; children write plain text and end at EOS or their budget.
"""

from __future__ import annotations

import re

from .base import Malformed, Protocol, SpawnMark

_POINT = re.compile(r"^\s*(\d+)[.)]\s+(.+?)\s*$", re.M)


class Skeleton(Protocol):
    name = "skeleton"
    layout = "contiguous"
    siblings_visible = False
    join_head = "\nCombining the points above, the answer is:\n"
    prompt = "skeleton.md"

    def scan(self, text, start, child, memo):
        if child or memo.get("spawned"):
            return [], len(text)
        while True:  # paragraph by paragraph: text that arrives at once reads as if it came in steps
            end = text.find("\n\n", start)
            if end == -1:
                return [], start  # the paragraph may still grow
            points = _POINT.findall(text[start:end])
            if points:
                break
            start = end + 2  # a paragraph with no numbered point: keep reading
        memo["spawned"] = True
        notes = [Malformed("outline with more than 16 points: only the first 16 start")] if len(points) > 16 else []
        return notes + [SpawnMark(tuple(f"Point {i}: {p}\n" for i, p in points[:16]), wait=True)], end + 2
