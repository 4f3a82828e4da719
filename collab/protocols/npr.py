"""NPR's format (Native Parallel Reasoner, bigai-nlco/Native-Parallel-Reasoner), as its SGLang
engine runs it. A worker writes

    <guideline>
    <plan>1: ...</plan>
    <plan>2: ...</plan>
    </guideline>

and at `</guideline>` one step per plan id (1 to 5) starts from its view, seeded `\\n<step>\\n{id}:`;
a step ends one token after `</step>` (kept). Steps start at one position and do not see each
other (overlap layout). At the join the worker sees the first step whole and later ones without
their leading newline, and is fed `<takeaway>\\n`; it writes the takeaway and goes on. A guideline
with more than 5 plans ends the worker, as the engine finishes such a request. The parsing and
the merge are Multiverse's (NPR's engine is a Multiverse-Engine derivative) with other tags.
"""

from __future__ import annotations

import re

from .base import DoneMark
from .multiverse import Multiverse

MAX_PLANS = 5


class NPR(Multiverse):
    name = "npr"
    prompt = "npr.md"
    outer = "guideline"
    child = "step"
    join_head = "<takeaway>\n"
    id_pattern = re.compile(r"<plan>\s*([0-9]+(?:\.[0-9]+)*)\s*:")

    def _outlines(self, m):
        if len(self.id_pattern.findall(m.group(1))) > MAX_PLANS:
            return [DoneMark(f"</guideline> with more than {MAX_PLANS} plans")]
        return super()._outlines(m)
