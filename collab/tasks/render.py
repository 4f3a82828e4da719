"""A trace in each protocol's concrete text, per worker, exactly as collab's protocols parse it
and as collab feeds heads and join texts. Pure Python, no torch.

    >>> from collab.tasks.trace import Fork, Text, Trace
    >>> t = Trace((Text("Two parts."), Fork(("compute 2+3", "compute 4*5"), (Trace.of("2+3 = 5"), Trace.of("4*5 = 20")),
    ...            "5 + 20 = 25."), Text("\\\\boxed{25}")))
    >>> r = render(t, "multiverse")
    >>> r.workers[0].text
    'Two parts.\\n<Parallel>\\n<Goal>\\n<Outline>1: compute 2+3</Outline>\\n<Outline>2: compute 4*5</Outline>\\n</Goal><Conclusion>\\n5 + 20 = 25.\\n</Conclusion>\\n</Parallel>\\n\\\\boxed{25}'
    >>> r.workers[2].text, r.workers[2].loss
    ('\\n<Path>\\n2: 4*5 = 20\\n</Path>\\n', ((10, 28),))

Each worker's stream is its own token stream in a run: a child's head (fed by collab), what the
worker writes, and the join texts fed to it later, in order. Workers come in collab's numbering:
the root (0), then each fork's children in the order they are spawned. Written pieces are the
worker's own text (train on them); fed pieces are not. collab encodes each head and join text on
its own, so tokenizing a stream piece by piece gives the tokens a run feeds.

| protocol | the root writes at a fork | a child's head | the child writes | the root is fed, then writes |
| --- | --- | --- | --- | --- |
| markers | `<spawn>task</spawn>` lines (`fanout=True`: one tag, a task per line), `<wait>` | `\\nHelper task: {task}\\n` | its work, `\\n<done>` | `\\n`; the conclusion; the root ends with `\\n<done>` |
| multiverse | `<Parallel>\\n<Goal>\\n<Outline>{i}: task</Outline>\\n...</Goal>` | `\\n<Path>\\n{i}:` | ` work\\n</Path>\\n` (one token after `</Path>`) | `<Conclusion>\\n`; the conclusion, `\\n</Conclusion>\\n</Parallel>` |
| threadweaver | `<Parallel>\\n<Outlines>\\n<Outline>{i}: task</Outline>\\n...</Outlines>` | `\\n<Thread>\\n{i}:` | ` work\\n</Thread>` | `\\n` (SFT join); `</Parallel>\\n`, the conclusion |
| apr | `<Calling Sub Searches>\\n<Start Sub Search {i} at level 1> Moving to Node #id\\n...<End Calling Sub Searches>` | the node's prompt | `\\n` and its work, then EOS | the results block; the conclusion |

APR renders forks whose tasks start with `Node #id`, a node the root's text generated
(`Generated Node #id: T:[...] Operation: op`, its parent's `Current State` line before it): the
Countdown traces of `countdown.py`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .. import prompts
from .trace import Fork, Text, Trace


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    written: bool  # written by the worker (loss), or fed by collab (a head or a join text: no loss)


@dataclass(frozen=True, slots=True)
class Stream:
    """One worker's own token stream, as text."""

    index: int  # the worker's index in a run: the root 0, then children in spawn order
    parent: int | None
    head: str  # a child's head, fed by collab ("" for the root)
    pieces: tuple[Piece, ...]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)

    @property
    def written(self) -> str:
        """What the worker writes, joined: the text its protocol scans."""
        return "".join(p.text for p in self.pieces if p.written)

    @property
    def loss(self) -> tuple[tuple[int, int], ...]:
        """Character ranges [start, end) of `text` that the worker writes."""
        out, at = [], 0
        for p in self.pieces:
            if p.written:
                out.append((at, at + len(p.text)))
            at += len(p.text)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Rendering:
    protocol: str
    workers: tuple[Stream, ...]  # the root first
    forks: tuple[tuple[int, ...], ...]  # the worker indices each fork spawns, in fork order

    @property
    def root(self) -> Stream:
        return self.workers[0]


class Format:
    """One protocol's text around a fork (see the table above)."""

    end = ""  # what the root writes last ("" : it ends at EOS)
    child_marker = True  # a child ends with a done marker (False: at EOS)

    def open(self, fork: Fork) -> str:
        raise NotImplementedError

    def head(self, i: int, task: str, before: str) -> str:
        """Child `i`'s head; `before` is the root's written text before the fork."""
        raise NotImplementedError

    def child(self, work: str) -> str:
        raise NotImplementedError

    def join(self, fork: Fork, children: list[str]) -> str:
        """The text fed to the root at the join, from each child's stream (head included)."""
        raise NotImplementedError

    def close(self, conclusion: str) -> str:
        return conclusion


class MarkersFormat(Format):
    end = "\n<done>"

    def __init__(self, fanout: bool = False):
        self.fanout = fanout  # one <spawn> tag with a task per line, instead of a tag per task

    def open(self, fork):
        if self.fanout:
            return "<spawn>" + "\n".join(fork.tasks) + "</spawn>\n<wait>"
        return "\n".join(f"<spawn>{t}</spawn>" for t in fork.tasks) + "\n<wait>"

    def head(self, i, task, before):
        return prompts.load("markers_child.txt").format(task=task)

    def child(self, work):
        return work + "\n<done>"

    def join(self, fork, children):
        return "\n"


class MultiverseFormat(Format):
    outer, tag = "Goal", "Path"

    def open(self, fork):
        outlines = "".join(f"<Outline>{i}: {t}</Outline>\n" for i, t in enumerate(fork.tasks, 1))
        return f"<Parallel>\n<{self.outer}>\n{outlines}</{self.outer}>"

    def head(self, i, task, before):
        return f"\n<{self.tag}>\n{i + 1}:"

    def child(self, work):
        return f" {work}\n</{self.tag}>\n"  # the engine keeps one token after </Path>

    def join(self, fork, children):
        return "<Conclusion>\n"

    def close(self, conclusion):
        return f"{conclusion}\n</Conclusion>\n</Parallel>"


class ThreadWeaverFormat(MultiverseFormat):
    outer, tag = "Outlines", "Thread"

    def child(self, work):
        return f" {work}\n</Thread>"

    def join(self, fork, children):
        return "\n"  # ThreadWeaver(join="sft"), collab's default

    def close(self, conclusion):
        return f"</Parallel>\n{conclusion}"


_NODE_TASK = re.compile(r"Node #(\d+(?:,\d+)*)(?![\d,])")
GOAL = "Goal Reached"


class APRFormat(Format):
    child_marker = False

    def open(self, fork):
        lines = "".join(f"<Start Sub Search {i} at level 1> Moving to Node #{_node_id(t)}\n" for i, t in enumerate(fork.tasks))
        return f"<Calling Sub Searches>\n{lines}<End Calling Sub Searches>"

    def head(self, i, task, before):
        node = _node_id(task)
        found = re.search(rf"^Generated Node #{re.escape(node)}: (\d+):\[([^\]\n]*)\] Operation: (.+)$", before, re.M)
        if found is None:
            raise ValueError(f"apr: no 'Generated Node #{node}: T:[...] Operation: op' line before the fork that names it")
        parent = node.rsplit(",", 1)[0]
        states = re.findall(rf"^Moving to Node #{re.escape(parent)}\nCurrent State: [^\n]*Operations: (\[[^\n]*\])$", before, re.M)
        if not states:
            raise ValueError(f"apr: node #{node}'s parent #{parent} has no 'Moving to Node'/'Current State' lines before the fork")
        target, nums, op = found.groups()
        ops = ast.literal_eval(states[-1]) + [op.strip()]
        nums = ", ".join(n.strip() for n in nums.split(","))
        return f"Moving to Node #{node}\nCurrent State: {target}:[{nums}], Operations: {ops}"

    def child(self, work):
        return "\n" + work

    def join(self, fork, children):
        # APR's engine: a sub-search found the goal when "Goal Reached" appears twice; its path is
        # the text after the second-to-last one, less the phrase and the character after it
        text = "<Sub Searches>\n"
        for i, (task, child) in enumerate(zip(fork.tasks, children)):
            node = _node_id(task)
            if child.count(GOAL) < 2:
                text += f"<No Solution in Sub Search {i} at level 1 at Node #{node}>\n"
            else:
                path = child[[m.start() for m in re.finditer(GOAL, child)][-2] :].strip()[len(GOAL) + 1 :]
                text += f"<Goal Reached in Sub Search {i} at level 1 at Node #{node}>\n{path}\n"
        return text + "<End Sub Searches>\n"


def _node_id(task: str) -> str:
    m = _NODE_TASK.match(task)
    if m is None:
        raise ValueError(f"apr renders forks whose tasks start with 'Node #id' (a node the root's text generated); got task {task!r}")
    return m.group(1)


FORMATS: dict[str, Format] = {
    "markers": MarkersFormat(), "multiverse": MultiverseFormat(), "threadweaver": ThreadWeaverFormat(), "apr": APRFormat(),
}


def render(trace: Trace, protocol: str, fanout: bool = False) -> Rendering:
    """Each worker's stream for `trace` spoken in `protocol` (a name in `FORMATS`); `fanout`: the
    markers root starts a fork's helpers with one `<spawn>` tag (a task per line), not a tag each.

        >>> from collab.tasks.trace import Fork, Trace
        >>> render(Trace((Fork(("part 1", "part 2"), (Trace.of("5"), Trace.of("20")), "25."),)), "markers", True).root.text
        '<spawn>part 1\\npart 2</spawn>\\n<wait>\\n25.\\n<done>'
    """
    if protocol not in FORMATS:
        raise ValueError(f"no renderer for protocol {protocol!r}; renderers exist for {', '.join(map(repr, FORMATS))}")
    if not isinstance(trace, Trace):
        raise ValueError(f"render(trace={trace!r}): give a collab.tasks.trace.Trace")
    if fanout not in (False, True) or (fanout and protocol != "markers"):
        raise ValueError(f"render(fanout={fanout!r}) with protocol {protocol!r}: fanout=True is the markers protocol's "
                         "one-tag spawn; give fanout=False for other protocols")
    fmt = MarkersFormat(fanout=True) if fanout else FORMATS[protocol]
    root: list[Piece] = []
    children: list[Stream] = []
    forks = []
    for i, part in enumerate(trace.parts):
        sep = "\n" if i else ""
        if isinstance(part, Text):
            _add(root, sep + part.text, True)
            continue
        before, kids = _written(root), []  # the root's text before the fork (APR reads its node lines)
        _add(root, sep + fmt.open(part), True)
        for k, (task, child) in enumerate(zip(part.tasks, part.children)):
            head = fmt.head(k, task, before)
            kids.append(Stream(1 + len(children) + k, 0, head, (Piece(head, False), Piece(fmt.child(child.text), True))))
        children += kids
        forks.append(tuple(s.index for s in kids))
        _add(root, fmt.join(part, [s.text for s in kids]), False)
        _add(root, fmt.close(part.conclusion), True)
    if fmt.end:
        _add(root, fmt.end, True)
    return Rendering(protocol, (Stream(0, None, "", tuple(root)), *children), tuple(forks))


def renderable(trace: Trace) -> tuple[str, ...]:
    """The protocols that can express `trace` (APR only Countdown's node forks)."""
    out = []
    for name in FORMATS:
        try:
            render(trace, name)
        except ValueError:
            continue
        out.append(name)
    return tuple(out)


def _add(pieces: list[Piece], text: str, written: bool) -> None:
    if pieces and pieces[-1].written == written:
        pieces[-1] = Piece(pieces[-1].text + text, written)
    elif text:
        pieces.append(Piece(text, written))


def _written(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces if p.written)
