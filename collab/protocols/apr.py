"""Adaptive Parallel Reasoning's format, as APR's own engine runs it (Parallel-Reasoning/APR,
`src/eval/eval_apr.py` and `parallel_infernce_utils.py`). The parent writes

    <Calling Sub Searches>
    <Start Sub Search 0 at level 1> Moving to Node #0,1
    <Start Sub Search 1 at level 1> Moving to Node #0,3
    <End Calling Sub Searches>

and each line naming a node starts a sub-search from a **fresh** context: the prompt's BOS, then
`Moving to Node #0,1\\nCurrent State: T:[a, b, c], Operations: ['x-y=z']` (the node's numbers come
from the parent's `Generated Node #0,1: T:[a, b, c] Operation: x-y=z` line, its operations from
its parent node's `Current State` line). A sub-search ends at EOS (or its budget). At the join the
parent continues from its context *before* `<Calling Sub Searches>\\n`, followed by

    <Sub Searches>
    <Goal Reached in Sub Search 0 at level 1 at Node #0,1>
    (the sub-search's path: its text after the second-to-last "Goal Reached", less 13 characters)
    <No Solution in Sub Search 1 at level 1 at Node #0,3>
    <End Sub Searches>

The kept context is reached by a view (nothing re-prefilled); only the results block is fed
(APR's engine re-prefills the whole context). The paths it quotes are a *suffix* of each
child's block between tag lines, so they are fed as text. Sub-searches do not nest (APR's data
and engine never do): a child's call block is plain text.
"""

from __future__ import annotations

import ast
import re

from .base import JoinLayout, Malformed, Protocol, SpawnMark, scan_tags

_CALL = re.compile(r"<Calling Sub Searches>(.*?)<End Calling Sub Searches>", re.S)
_OPEN = re.compile(r"<Calling Sub Searches>")
GOAL = "Goal Reached"


class APR(Protocol):
    name = "apr"
    layout = "contiguous"
    siblings_visible = False
    prompt = "apr.md"
    limits = {"max_depth": 1, "max_concurrent": 64, "max_workers": 64}  # sub-searches never nest

    def scan(self, text, start, child, memo):
        if child:  # sub-searches end at EOS; APR never nests
            return [], len(text)
        return scan_tags(text, start, [(_CALL, lambda m: self._call(m, text, memo))], _OPEN)

    def _call(self, m, text, memo):
        body = m.group(1)
        if "<Calling Sub Searches>" in body:
            return [Malformed("nested <Calling Sub Searches>: no sub-searches started")]
        ids = [line.split("Moving to Node #")[1].strip() for line in body.split("\n")
               if "<Start Sub Search" in line and "Moving to Node" in line]
        if not ids:
            return [Malformed("<Calling Sub Searches> without any '<Start Sub Search i at level j> Moving to Node #id' line")]
        nodes = known_nodes(memo.get("prompt", "") + "".join(memo.get("fed", ())) + text[: m.start()])
        missing = [i for i in ids if i not in nodes]
        if missing:
            return [Malformed(f"sub-search at unknown node #{missing[0]}: no sub-searches started")]
        memo["nodes"] = ids
        return [SpawnMark(tuple(node_prompt(nodes[i]) for i in ids), wait=True, fresh=True)]

    def join(self, block, children, memo):
        cut = block.rfind("<Calling Sub Searches>\n")
        cut = block.rfind("<Calling Sub Searches>") if cut == -1 else cut
        text = "<Sub Searches>\n"
        for i, (node, child) in enumerate(zip(memo["nodes"], children)):
            path = result(child)
            if path is None:
                text += f"<No Solution in Sub Search {i} at level 1 at Node #{node}>\n"
            else:
                text += f"<Goal Reached in Sub Search {i} at level 1 at Node #{node}>\n{path}\n"
        text += "<End Sub Searches>\n"
        memo.setdefault("fed", []).append(text)
        return JoinLayout(text, keep=cut if cut >= 0 else None, show=(False,) * len(children))


def node_prompt(node: dict) -> str:
    """A sub-search's context, as APR's engine writes it (no trailing newline)."""
    nums = ", ".join(map(str, node["nums"]))
    return f"Moving to Node #{node['id']}\nCurrent State: {node['target']}:[{nums}], Operations: {node['operations']}"


def result(text: str) -> str | None:
    """A sub-search's found path, or None: APR counts a success when "Goal Reached" appears twice."""
    if text.count(GOAL) < 2:
        return None
    at = [m.start() for m in re.finditer(GOAL, text)][-2]
    return text[at:].strip()[len(GOAL) + 1 :]


def known_nodes(context: str) -> dict[str, dict]:
    """Nodes named in a context, by APR's two passes: `Moving to Node #id` followed by a
    `Current State:` line (the later wins), then `Generated Node #id: T:[...] Operation: op`
    lines (the first wins), whose operations extend their parent node's."""
    nodes: dict[str, dict] = {}
    lines = context.split("\n")
    for line, state in zip(lines, lines[1:]):
        if "Moving to Node #" in line and "Current State:" in state:
            node = line.split("Moving to Node #")[1].strip()
            try:
                numbers = state.split("Current State:")[1].split("],")[0].strip()
                target, nums = numbers.split(":", 1)
                nodes[node] = {"id": node, "target": int(target), "nums": ast.literal_eval(nums.strip() + "]"),
                               "operations": ast.literal_eval(state.split("Operations:")[1].strip())}
            except (ValueError, SyntaxError, IndexError):
                continue
    for line in lines:
        if "Generated Node" not in line or "#" not in line.split(":")[0]:
            continue
        node = line.split(":")[0].split("#")[1]
        parent = nodes.get(",".join(node.split(",")[:-1]))
        if node in nodes or parent is None or "Operation:" not in line:
            continue
        try:
            state, op = (p.strip() for p in line.split(":", 1)[1].split("Operation:", 1))
            target, nums = state.split(":", 1)
            nodes[node] = {"id": node, "target": int(target), "nums": ast.literal_eval(nums.strip()),
                           "operations": parent["operations"] + [op]}
        except (ValueError, SyntaxError, IndexError):
            continue
    return nodes
