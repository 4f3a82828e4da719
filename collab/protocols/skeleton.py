"""Skeleton-of-thought: an outline, then one worker per point, then a join.

The root writes a numbered outline (`1. ...` lines) and ends it with a blank line; one child per
point starts, seeded `Point {i}: {text}`, seeing the question and the outline. The root waits and
then writes the combined answer, seeing every point's work. Only the root's first outline
spawns; children write plain text and end at EOS or their budget.
"""

from __future__ import annotations

import re

from .base import Malformed, Protocol, Spawn

_POINT = re.compile(r"^\s*(\d+)[.)]\s+(.+?)\s*$", re.M)


class Skeleton(Protocol):
    name = "skeleton"
    layout = "contiguous"
    context = "fork"
    siblings_visible = False
    join_head = "\nCombining the points above, the answer is:\n"
    prompt = "skeleton.md"

    def scan(self, text, start, child, memo):
        if child or memo.get("spawned"):
            return [], len(text)
        end = text.find("\n\n", start)
        points = _POINT.findall(text[: end if end != -1 else len(text)])
        if end == -1 or not points:
            if end != -1:  # a paragraph with no numbered point yet: keep reading
                return [], end + 2
            return [], start
        memo["spawned"] = True
        notes = [Malformed("outline with more than 16 points: only the first 16 start")] if len(points) > 16 else []
        return notes + [Spawn(tuple(f"Point {i}: {p}\n" for i, p in points[:16]), wait=True)], end + 2
