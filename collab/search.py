"""Search over reasoning steps on the shared cache: Tree of Thoughts and MCTS. Pure Python.

A *node* is one reasoning step written by one worker. Expanding a node forks its worker: each
child's view is the node's view plus the node's whole block, stored once (zero copy), and each
child samples its own next step with its own seed. The runtime pauses a worker when its step
ends (a paragraph break after a sentence, or `step_tokens` tokens), scores it with the value
function, then asks the search what to do: `decide()` returns expansions and prunings. Pruned
nodes are retired and every block no live node needs is freed.

The root node is the prompt (and the root worker's header); it has no text and no score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class SearchOptions:
    """Budgets and shape of a search. `max_tokens`/`max_forward_passes`: expansion stops once
    either is reached (nodes already started finish their step and are scored)."""

    branching: int = 3  # children per expansion (ToT), or per node at most (MCTS)
    beam: int = 2  # ToT: nodes kept per level
    max_depth: int = 4  # reasoning steps on one path
    step_tokens: int = 48  # a step ends at a paragraph break, or after this many tokens
    max_tokens: int = 1024  # sampled tokens over the whole tree
    max_forward_passes: int | None = None
    iterations: int | None = None  # MCTS: expansion rounds (None: until a budget ends)
    width: int | None = None  # MCTS: leaves expanded per round, in one batched step (default: branching)
    exploration: float = 1.4  # MCTS: the UCT constant

    def __post_init__(self):
        for name in ("branching", "beam", "max_depth", "step_tokens", "max_tokens"):
            _positive(name, getattr(self, name))
        for name in ("max_forward_passes", "iterations", "width"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        value = self.exploration
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"search.exploration must be a number >= 0, got {value!r}")

    @classmethod
    def of(cls, spec) -> "SearchOptions":
        if spec is None:
            return cls()
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            unknown = set(spec) - set(cls.__dataclass_fields__)
            if unknown:
                valid = ", ".join(cls.__dataclass_fields__)
                raise TypeError(f"unknown search option(s) {sorted(unknown)}; valid options are {valid}")
            return cls(**spec)
        raise TypeError(f"search must be a dict or collab.SearchOptions, got {spec!r}")


def _positive(name, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"search.{name} must be an int >= 1, got {value!r}")


@dataclass(slots=True)
class Node:
    id: int  # the worker that wrote this step
    parent: int | None
    depth: int  # steps from the root (the root is 0)
    text: str = ""  # this step's text
    score: float | None = None  # the value function's score; None: not scored (yet)
    visits: int = 0  # MCTS
    value: float = 0.0  # MCTS: sum of backed-up values
    state: str = "open"  # "open", "running", "expanded", "terminal", "pruned"
    children: list[int] = field(default_factory=list)
    error: str | None = None  # why it is unscored, when the scorer failed

    @property
    def mean(self) -> float:
        return self.value / self.visits if self.visits else 0.0


@dataclass(frozen=True, slots=True)
class Expand:
    node: int
    children: int  # how many forks


@dataclass(frozen=True, slots=True)
class Prune:
    node: int


@dataclass(slots=True)
class SearchTree:
    """The record of a search: nodes, the chosen path, and KV memory after each round."""

    strategy: str
    nodes: dict[int, Node] = field(default_factory=dict)
    chosen: list[int] = field(default_factory=list)  # node ids from the root to the chosen leaf
    # per round, after pruning: (live node/worker ids, KV tokens stored, KV pages in use)
    memory: list[tuple[list[int], int, int]] = field(default_factory=list)

    def add(self, id: int, parent: int | None) -> Node:
        depth = 0 if parent is None else self.nodes[parent].depth + 1
        node = self.nodes[id] = Node(id, parent, depth, state="running" if parent is not None else "open")
        if parent is not None:
            self.nodes[parent].children.append(id)
        return node

    @property
    def root(self) -> Node:
        return next(n for n in self.nodes.values() if n.parent is None)

    def path(self, id: int) -> list[int]:
        out = []
        while id is not None:
            out.append(id)
            id = self.nodes[id].parent
        return out[::-1]

    def text(self, id: int) -> str:
        """The reasoning from the root to node `id`."""
        return "".join(self.nodes[i].text for i in self.path(id))

    def render(self) -> str:
        """The tree, one line per node: id, score, visits, state; the chosen path marked *."""
        chosen, lines = set(self.chosen), []

        def walk(node: Node, indent: str) -> None:
            score = "-" if node.score is None else f"{node.score:.3f}"
            visits = f" visits={node.visits} mean={node.mean:.3f}" if self.strategy == "mcts" else ""
            mark = "*" if node.id in chosen else " "
            head = " ".join(node.text.split())[:60]
            lines.append(f"{mark}{indent}[{node.id}] score={score}{visits} {node.state}: {head!r}")
            for c in node.children:
                walk(self.nodes[c], indent + "  ")

        walk(self.root, "")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre style='font-size:12px'>{escape(self.render())}</pre>"


class Search:
    """What the runtime tells a search: nodes started (forked), finished (paused at a step end,
    or terminal), scored. `decide(budget_left)` then returns expansions and prunings."""

    name = "search"
    expands_once = False  # an expanded node is retired at once (its forks hold its block)

    def __init__(self, options: SearchOptions):
        self.options = options
        self.tree = SearchTree(self.name)

    def decide(self, budget_left: bool) -> list[Expand | Prune]:
        raise NotImplementedError

    def started(self, ids: list[int]) -> None:
        pass

    def finished(self, id: int, terminal: bool) -> None:
        node = self.tree.nodes[id]
        node.state = "terminal" if terminal or node.depth >= self.options.max_depth else "open"

    def scored(self, id: int, value: float | None) -> None:
        self.tree.nodes[id].score = value


class TreeOfThoughts(Search):
    """Breadth-first: expand `branching` children per kept node, score each step, keep the best
    `beam` among the new steps and the finished paths kept so far; stop at `max_depth` steps,
    when no kept node can grow, or when a budget ends. The chosen leaf is the best kept node."""

    name = "tree_of_thoughts"
    expands_once = True

    def __init__(self, options: SearchOptions):
        super().__init__(options)
        self.level: list[int] = []  # the nodes of the last expansion
        self.kept_finished: list[int] = []  # terminal nodes kept in the beam

    def decide(self, budget_left: bool) -> list[Expand | Prune]:
        tree, opt = self.tree, self.options
        if not self.level:  # the first round: the root
            root = tree.root
            if root.state != "open" or not budget_left:
                return []
            root.state = "expanded"
            return [Expand(root.id, opt.branching)]
        candidates = self.kept_finished + self.level
        ranked = sorted(candidates, key=lambda i: _rank(tree.nodes[i]))
        kept, dropped = ranked[: opt.beam], ranked[opt.beam :]
        decisions: list[Expand | Prune] = [Prune(i) for i in dropped]
        for i in dropped:
            tree.nodes[i].state = "pruned"
        growing = [i for i in kept if tree.nodes[i].state == "open"]
        self.kept_finished = [i for i in kept if tree.nodes[i].state == "terminal"]
        self.level = []
        if not growing or not budget_left:
            tree.chosen = tree.path(kept[0])
            return decisions + [Prune(i) for i in kept if i not in tree.chosen]
        for i in growing:
            tree.nodes[i].state = "expanded"
            decisions.append(Expand(i, opt.branching))
        return decisions

    def started(self, ids: list[int]) -> None:
        self.level += ids


class MCTS(Search):
    """Monte Carlo tree search over steps. Each round selects up to `width` leaves by UCT (with
    a virtual visit per pick, so one round's picks differ), forks one child from each, scores
    the child's step and backs the value up its path. Terminal children (an end of text, or
    `max_depth` steps) are scored and then pruned: their KV is never needed again. The chosen
    path follows the most visited child from the root."""

    name = "mcts"

    def __init__(self, options: SearchOptions):
        super().__init__(options)
        self.rounds = 0
        self.round: list[int] = []
        self.over = False

    def decide(self, budget_left: bool) -> list[Expand | Prune]:
        tree, opt = self.tree, self.options
        if self.over:
            return []
        decisions: list[Expand | Prune] = []
        for i in self.round:  # back up the last round's values; free finished leaves
            node = tree.nodes[i]
            self._backup(i, node.score if node.score is not None else 0.0)
            if node.state == "terminal":
                decisions.append(Prune(i))
        self.round = []
        more = budget_left and (opt.iterations is None or self.rounds < opt.iterations)
        picks = self._select(opt.width or opt.branching) if more else []
        if not picks:
            self.over = True
            tree.chosen = self._best_path()
            rest = [i for i, n in tree.nodes.items() if n.state in ("open", "expanded") and i not in tree.chosen]
            for i in rest:
                tree.nodes[i].state = "pruned"
            return decisions + [Prune(i) for i in rest]
        self.rounds += 1
        counts: dict[int, int] = {}
        for i in picks:
            counts[i] = counts.get(i, 0) + 1
        return decisions + [Expand(i, k) for i, k in counts.items()]

    def started(self, ids: list[int]) -> None:
        self.round += ids

    def _select(self, width: int) -> list[int]:
        """Up to `width` expansions; a node may be picked again while it has room for children."""
        virtual: dict[int, int] = {}  # node -> this round's picks through it (virtual visits)
        claimed: dict[int, int] = {}  # node -> children this round will fork from it
        picks = []
        for _ in range(width):
            leaf = self._descend(virtual, claimed)
            if leaf is None:
                break
            picks.append(leaf)
            claimed[leaf] = claimed.get(leaf, 0) + 1
            for i in self.tree.path(leaf):
                virtual[i] = virtual.get(i, 0) + 1
        return picks

    def _descend(self, virtual: dict[int, int], claimed: dict[int, int]) -> int | None:
        tree, k = self.tree, self.options.branching
        node = tree.root
        while True:
            room = k - len(node.children) - claimed.get(node.id, 0)
            if node.state in ("open", "expanded") and room > 0 and node.depth < self.options.max_depth:
                node.state = "expanded"
                return node.id
            children = [tree.nodes[c] for c in node.children if tree.nodes[c].state in ("open", "expanded")]
            if not children:
                return None
            total = max(1, node.visits + virtual.get(node.id, 0))  # N_parent, as UCT defines it
            node = max(children, key=lambda c: self._uct(c, total, virtual.get(c.id, 0)))

    def _uct(self, node: Node, parent_visits: int, virtual: int) -> float:
        visits = node.visits + virtual
        if visits == 0:
            return math.inf
        return node.value / visits + self.options.exploration * math.sqrt(math.log(parent_visits) / visits)

    def _backup(self, id: int, value: float) -> None:
        for i in self.tree.path(id):
            node = self.tree.nodes[i]
            node.visits += 1
            node.value += value

    def _best_path(self) -> list[int]:
        tree = self.tree
        node = tree.root
        path = [node.id]
        while node.children:
            node = max((tree.nodes[c] for c in node.children), key=lambda c: (c.visits, c.mean, -c.id))
            path.append(node.id)
        return path


def _rank(node: Node):
    """Best first: scored nodes by score, then unscored; ties by creation order."""
    return (node.score is None, -(node.score or 0.0), node.id)


SEARCHES = {"tree_of_thoughts": TreeOfThoughts, "mcts": MCTS}
