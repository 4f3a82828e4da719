"""A protocol-neutral trace: what one worker writes, with forks where it hands parts of the work
to helpers and waits for them. `render.py` turns a trace into each protocol's concrete text.
Pure Python, no torch.

    >>> from collab.tasks.trace import Fork, Text, Trace
    >>> t = Trace((Text("Two parts."), Fork(("compute 2+3", "compute 4*5"), (Trace.of("2+3 = 5"), Trace.of("4*5 = 20")),
    ...            "Results: 5 and 20; 5 + 20 = 25."), Text("\\\\boxed{25}")))
    >>> len(t.forks), t.forks[0].tasks[1]
    (1, 'compute 4*5')

A Text holds whole lines: it neither begins nor ends with a newline, since every renderer puts its
protocol's markup on lines of its own. Helpers do not fork again (depth 1): none of the
protocols' renderers here nest, and APR and ThreadWeaver's models never do.
"""

from __future__ import annotations

from dataclasses import dataclass


def _lines(value, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} {value!r}: give non-empty text")
    if value != value.strip("\n"):
        raise ValueError(f"{what} {value!r} begins or ends with a newline: leave it out (renderers put markup on lines of their own)")


@dataclass(frozen=True, slots=True)
class Text:
    """Lines a worker writes."""

    text: str

    def __post_init__(self):
        _lines(self.text, "Text")


@dataclass(frozen=True, slots=True)
class Fork:
    """The worker hands `tasks[i]` to a helper whose trace is `children[i]`, waits for all of
    them, and, once it has read their work, writes `conclusion` (Multiverse's <Conclusion>)."""

    tasks: tuple[str, ...]
    children: tuple[Trace, ...]
    conclusion: str

    def __post_init__(self):
        if not isinstance(self.tasks, tuple) or not self.tasks:
            raise ValueError(f"Fork.tasks={self.tasks!r}: give a non-empty tuple of task strings")
        for task in self.tasks:
            if not isinstance(task, str) or not task.strip() or task != task.strip() or "\n" in task:
                raise ValueError(f"Fork task {task!r}: give one line of text without surrounding spaces")
        if not isinstance(self.children, tuple) or len(self.children) != len(self.tasks):
            raise ValueError(f"Fork has {len(self.tasks)} tasks but children={self.children!r}: give a tuple of one Trace per task")
        for child in self.children:
            if not isinstance(child, Trace):
                raise ValueError(f"Fork child {child!r}: give a Trace")
            if child.forks:
                raise ValueError("a helper's trace forks again: traces are depth 1 (give helpers Text parts only)")
        _lines(self.conclusion, "Fork.conclusion")


@dataclass(frozen=True, slots=True)
class Trace:
    """What one worker writes, in order: lines of text and forks. Never two Texts in a row."""

    parts: tuple[Text | Fork, ...]

    def __post_init__(self):
        if not isinstance(self.parts, tuple) or not self.parts:
            raise ValueError(f"Trace.parts={self.parts!r}: give a non-empty tuple of Text and Fork")
        for i, part in enumerate(self.parts):
            if not isinstance(part, (Text, Fork)):
                raise ValueError(f"Trace part {part!r}: give a Text or a Fork")
            if i and isinstance(part, Text) and isinstance(self.parts[i - 1], Text):
                raise ValueError(f"two Texts in a row at part {i}: merge them into one Text (lines joined by '\\n')")

    @classmethod
    def of(cls, text: str) -> Trace:
        """A trace without forks: one Text."""
        return cls((Text(text),))

    @property
    def forks(self) -> tuple[Fork, ...]:
        return tuple(p for p in self.parts if isinstance(p, Fork))

    @property
    def text(self) -> str:
        """The lines of a trace without forks (a helper's work)."""
        if self.forks:
            raise ValueError("Trace.text is the text of a trace without forks; render a forking trace with collab.tasks.render")
        return self.parts[0].text


def index_heads(trace: Trace) -> Trace:
    """The same work with each helper named by its number in the spawn line ("part 2"), the
    helper restating its task as its first line. The forking worker's spawn lines lie on the
    critical path; this shrinks them to a few tokens and moves the restating into the helpers,
    which write side by side. It suits tasks that number their parts in the question's order
    (compound); a Countdown helper could not tell which first move "part 2" means.

        >>> t = Trace((Fork(("compute 2+3", "compute 4*5"), (Trace.of("5"), Trace.of("20")), "25."),))
        >>> b = index_heads(t).forks[0]
        >>> b.tasks, b.children[1].text
        (('part 1', 'part 2'), 'compute 4*5\\n20')
    """
    return Trace(tuple(
        Fork(tuple(f"part {i}" for i in range(1, len(p.tasks) + 1)),
             tuple(Trace.of(f"{task}\n{child.text}") for task, child in zip(p.tasks, p.children)), p.conclusion)
        if isinstance(p, Fork) else p for p in trace.parts))


def spawn_first(trace: Trace) -> Trace:
    """The same work with the forking worker's lines before its first fork left out, so it
    spawns at its first token (a compound root's plan line "There are four independent parts"
    states a count the spawns then follow, right or wrong, and costs steps on the critical path).
    A trace without forks is returned as it is.

        >>> t = Trace((Text("Two parts."), Fork(("a", "b"), (Trace.of("1"), Trace.of("2")), "3."), Text("done")))
        >>> [type(p).__name__ for p in spawn_first(t).parts]
        ['Fork', 'Text']
    """
    if not trace.forks:
        return trace
    first = next(i for i, p in enumerate(trace.parts) if isinstance(p, Fork))
    return Trace(trace.parts[first:])


def to_json(trace: Trace):
    """A trace as JSON: its text (no forks), or a list of texts and forks
    `{"tasks": [...], "children": [trace, ...], "conclusion": "..."}`."""
    if not trace.forks:
        return trace.text
    return [p.text if isinstance(p, Text) else
            {"tasks": list(p.tasks), "children": [to_json(c) for c in p.children], "conclusion": p.conclusion}
            for p in trace.parts]


def from_json(value) -> Trace:
    """The trace `to_json` wrote (errors say what is wrong with it)."""
    if isinstance(value, str):
        return Trace.of(value)
    if not isinstance(value, list) or not value:
        raise ValueError(f"a trace is a text or a non-empty list of texts and forks, got {value!r}")
    parts = []
    for part in value:
        if isinstance(part, str):
            parts.append(Text(part))
        elif isinstance(part, dict) and set(part) == {"tasks", "children", "conclusion"}:
            if not isinstance(part["tasks"], list) or not isinstance(part["children"], list):
                raise ValueError(f"a fork's tasks and children are lists, got {part!r}")
            parts.append(Fork(tuple(part["tasks"]), tuple(from_json(c) for c in part["children"]), part["conclusion"]))
        else:
            raise ValueError(f"a trace part is a text or a fork with exactly tasks, children and conclusion, got {part!r}")
    return Trace(tuple(parts))
