"""ThreadWeaver's format. A worker writes

    <Parallel>
    <Outlines>
    <Outline>1: ...</Outline>
    <Outline>2: ...</Outline>
    </Outlines>

and at `</Outlines>` one thread per outline starts, seeded with `<Thread>\\n{i}:`; a thread ends at
`</Thread>`. The parent waits, then continues after `</Parallel>` (fed as the head of its next
block) seeing every thread, laid out one after another as ThreadWeaver serializes them. The
parsing is Multiverse's with other tags.
"""

from __future__ import annotations

from .multiverse import Multiverse


class ThreadWeaver(Multiverse):
    name = "threadweaver"
    layout = "contiguous"
    join_head = "</Parallel>\n"
    prompt = "threadweaver.md"
    outer = "Outlines"
    child = "Thread"
