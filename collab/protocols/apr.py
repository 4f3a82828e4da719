"""Adaptive Parallel Reasoning's format. A worker writes

    <Calling Sub Searches>
    <Start Sub Search 0 at level 1> task ...
    <Start Sub Search 1 at level 1> task ...
    <End Calling Sub Searches>

and each `<Start Sub Search ...>` line becomes a child whose block starts with that line. As in
APR, a child sees only the prompt and its own line (not the parent's context); it ends at EOS,
its budget, or `<End Sub Search>`. The parent waits, then resumes after
`<End Calling Sub Searches>` seeing every child's block: the children's results are read from
the cache, not re-prefilled.
"""

from __future__ import annotations

import re

from .base import Done, Malformed, Protocol, Spawn, scan_tags

_CALL = re.compile(r"<Calling Sub Searches>(.*?)<End Calling Sub Searches>", re.S)
_OPEN = re.compile(r"<Calling Sub Searches>")
_LINE = re.compile(r"<Start Sub Search (\d+) at level (\d+)>[^\n]*")
_END = re.compile(r"<End Sub Search>")


class APR(Protocol):
    name = "apr"
    layout = "contiguous"
    context = "prompt"
    siblings_visible = False
    join_head = "\n<Sub Searches Done>\n"
    prompt = "apr.md"

    def scan(self, text, start, child, memo):
        rules = [(_CALL, self._call)]
        if child:
            rules.append((_END, lambda m: [Done(m.group(0))]))
        return scan_tags(text, start, rules, _OPEN)

    def _call(self, m):
        body = m.group(1)
        if "<Calling Sub Searches>" in body:
            return [Malformed("nested <Calling Sub Searches>: no sub-searches started")]
        lines = [x.group(0).strip() + "\n" for x in _LINE.finditer(body)]
        if not lines:
            return [Malformed("<Calling Sub Searches> without any <Start Sub Search i at level j> line")]
        return [Spawn(tuple(lines), wait=True)]
