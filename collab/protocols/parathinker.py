"""ParaThinker's format: P paths from the start, then one summary that sees all of them.

Each root spawns P paths before generating, seeded `<think1>` ... `<thinkP>`; path i ends at
`</think{i}>`. All paths start at the same position right after the prompt (overlap layout) and
do not see each other. When all are done the root continues with `<summary>` seeing every path.
"""

from __future__ import annotations

import re

from .base import Done, Protocol, scan_tags

_END = re.compile(r"</think\d*>")


class ParaThinker(Protocol):
    name = "parathinker"
    layout = "overlap"
    context = "fork"
    siblings_visible = False
    join_head = "<summary>\n"
    prompt = "parathinker.md"

    def start(self, workers):
        return tuple(f"<think{i}>\n" for i in range(1, workers + 1))

    def scan(self, text, start, child, memo):
        rules = [(_END, lambda m: [Done(m.group(0))])] if child else []
        return scan_tags(text, start, rules, None)
