"""The adaptive controller: turns markers in workers' text into spawns, joins and retirements.
Pure Python, no torch.

The runtime calls `observe(worker, text)` with each worker's generated text after every step
and `retired(worker)` when a worker stops for any reason; both return decisions for the runtime
to carry out. Limits are enforced here: a spawn beyond a limit is refused and reported, never
raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocols import DoneMark, JoinLayout, Malformed, Protocol, SpawnMark, WaitMark
from .workers import Phase


@dataclass(slots=True)
class Limits:
    """Bounds on adaptive spawning. None means: no bound beyond the others."""

    max_concurrent: int = 8  # workers feeding tokens at once (waiting parents do not count)
    max_workers: int = 32  # workers in one run, roots included
    max_depth: int = 2  # nesting: roots are depth 0, their children 1, ...
    max_total_tokens: int | None = None  # sampled tokens over all workers

    def __post_init__(self):
        for name in ("max_concurrent", "max_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.max_depth, bool) or not isinstance(self.max_depth, int) or self.max_depth < 0:
            raise ValueError(f"limits.max_depth must be an int >= 0, got {self.max_depth!r}")
        if self.max_total_tokens is not None and (not isinstance(self.max_total_tokens, int) or self.max_total_tokens < 1):
            raise ValueError(f"limits.max_total_tokens must be an int >= 1 or None, got {self.max_total_tokens!r}")


# Decisions for the runtime.
@dataclass(frozen=True, slots=True)
class SpawnChildren:
    parent: int
    heads: tuple[str, ...]
    wait: bool
    fresh: bool = False  # the children start from a fresh context, not the parent's view


@dataclass(frozen=True, slots=True)
class AwaitChildren:
    worker: int  # stops feeding until its children are done


@dataclass(frozen=True, slots=True)
class JoinChildren:
    parent: int
    children: tuple[int, ...]  # joined, in spawn order; `Controller.join` says how
    retire: str | None = None  # a worker that wrote its done marker before its helpers ended:
    # it takes them in, then retires with this reason (nothing is fed)


@dataclass(frozen=True, slots=True)
class Retire:
    worker: int
    reason: str
    after: int = 0  # tokens it still samples (and keeps) before it stops


@dataclass(frozen=True, slots=True)
class Rejected:
    kind: str  # "refused" or "malformed"
    worker: int
    reason: str


Decision = SpawnChildren | AwaitChildren | JoinChildren | Retire | Rejected


@dataclass(slots=True)
class ProtocolState:
    index: int
    parent: int | None
    depth: int
    state: Phase = Phase.ACTIVE  # ACTIVE, WAITING or DONE: the scheduler's phases, as the controller sees them
    children: list[int] = field(default_factory=list)
    joined: set[int] = field(default_factory=set)
    cursor: int = 0
    memo: dict = field(default_factory=dict)
    closing: str | None = None  # done, waiting for its helpers to end first (the retire reason)
    reserved: int = 0  # children decided but not yet registered
    keys: dict[str, int | None] = field(default_factory=dict)  # a protocol's child names -> index (None: not yet registered)
    unnamed: list[str | None] = field(default_factory=list)  # names of decided children, in order, until registered
    awaiting: tuple[str, ...] | None = None  # the named children a wait is for (None: all)
    cut: set[int] = field(default_factory=set)  # children it has cut (each cut once)


class Controller:
    def __init__(self, protocol: Protocol, limits: Limits, prompt: str = ""):
        self.protocol, self.limits, self.prompt = protocol, limits, prompt
        self.nodes: dict[int, ProtocolState] = {}

    # -- bookkeeping ---------------------------------------------------------------------------
    def add(self, index: int, parent: int | None) -> None:
        depth = 0 if parent is None else self.nodes[parent].depth + 1
        self.nodes[index] = ProtocolState(index, parent, depth)
        if parent is None:  # what a protocol that reads its worker's whole context starts from
            self.nodes[index].memo["prompt"] = self.prompt
        if parent is not None:
            node = self.nodes[parent]
            node.children.append(index)
            node.reserved -= 1
            key = node.unnamed.pop(0) if node.unnamed else None
            if key is not None:
                node.keys[key] = index

    @property
    def reserved(self) -> int:
        """Children decided but not yet registered (only ever non-zero within one call)."""
        return sum(n.reserved for n in self.nodes.values())

    @property
    def active(self) -> int:
        return sum(n.state == Phase.ACTIVE for n in self.nodes.values()) + self.reserved

    # -- reading text --------------------------------------------------------------------------
    def observe(self, index: int, text: str) -> list[Decision]:
        node = self.nodes[index]
        if node.state != Phase.ACTIVE:
            return []
        actions, node.cursor = self.protocol.scan(text, node.cursor, node.parent is not None, node.memo)
        out: list[Decision] = []
        for action in actions:
            if node.state != Phase.ACTIVE:
                break
            if isinstance(action, SpawnMark):
                out += self._spawn(node, action)
            elif isinstance(action, WaitMark):
                out += self._wait(node, action.keys)
            elif isinstance(action, DoneMark):
                out += self._done(node, f"done marker {action.marker!r}", action.after)
            elif isinstance(action, Malformed):
                out.append(Rejected("malformed", index, action.reason))
        return out

    def spawn(self, index: int, heads: tuple[str, ...], wait: bool) -> list[Decision]:
        """Spawn on the runtime's initiative (fixed paths), under the same limits."""
        return self._spawn(self.nodes[index], SpawnMark(tuple(heads), wait))

    def _spawn(self, node: ProtocolState, action: SpawnMark) -> list[Decision]:
        lim = self.limits
        if action.key is not None and action.key in node.keys:
            return [Rejected("malformed", node.index, f"a second worker named {action.key!r}: not started")]
        if node.depth + 1 > lim.max_depth:
            return [Rejected("refused", node.index, f"nesting depth {node.depth + 1} exceeds limits.max_depth={lim.max_depth}")]
        room_total = lim.max_workers - len(self.nodes) - self.reserved
        room_concurrent = lim.max_concurrent - self.active + (1 if action.wait else 0)
        allowed = max(0, min(len(action.heads), room_total, room_concurrent))
        out: list[Decision] = []
        if allowed < len(action.heads):
            which = "max_workers" if room_total <= room_concurrent else "max_concurrent"
            value = getattr(lim, which)
            out.append(Rejected("refused", node.index, f"{len(action.heads) - allowed} of {len(action.heads)} spawns refused: limits.{which}={value}"))
        if allowed:
            node.reserved += allowed
            node.unnamed += [action.key] + [None] * (allowed - 1)
            if action.key is not None:
                node.keys[action.key] = None
            out.append(SpawnChildren(node.index, action.heads[:allowed], action.wait, action.fresh))
            if action.wait:
                node.state = Phase.WAITING
                out.append(AwaitChildren(node.index))
        return out

    def _wait(self, node: ProtocolState, keys: tuple[str, ...] | None = None) -> list[Decision]:
        if keys is not None:
            unknown = [k for k in keys if k not in node.keys or node.keys[k] in node.joined]
            if unknown:
                return [Rejected("malformed", node.index, f"join of {unknown[0]!r}: no such worker running or unjoined; ignored")]
            node.awaiting = tuple(keys)
            return self._join_or_pause(node)
        if not self._open(node) and not node.reserved:
            return [Rejected("malformed", node.index, "<wait> with no helpers running: ignored")]
        return self._join_or_pause(node)

    def end(self, index: int, reason: str) -> list[Decision]:
        """The worker ended its text by itself (EOS): as a done marker, its helpers end first."""
        node = self.nodes[index]
        return self._done(node, reason) if node.state == Phase.ACTIVE else []

    def _done(self, node: ProtocolState, reason: str, after: int = 0) -> list[Decision]:
        """A worker's helpers end before it does: a done marker (or EOS) with helpers still
        running, or finished but not joined, waits for them, takes them in, and only then
        retires, so their work reaches whoever joins this worker (or the finisher)."""
        if not self._open(node) and not node.reserved:
            node.state = Phase.DONE
            return [Retire(node.index, reason, after)]
        node.closing, node.awaiting = reason, None
        return self._join_or_pause(node)

    def _open(self, node: ProtocolState) -> list[int]:
        return [c for c in node.children if c not in node.joined]

    def _awaited(self, node: ProtocolState) -> list[int]:
        """The unjoined children a wait is for: the named ones, or all."""
        if node.awaiting is None:
            return self._open(node)
        return [node.keys[k] for k in node.awaiting if node.keys[k] is not None and node.keys[k] not in node.joined]

    def _helpers_ended(self, node: ProtocolState) -> bool:
        if node.awaiting is not None:
            named = [node.keys[k] for k in node.awaiting]
            return None not in named and all(self.nodes[c].state == Phase.DONE for c in named)
        return not node.reserved and all(self.nodes[c].state == Phase.DONE for c in self._open(node))

    def _join_or_pause(self, node: ProtocolState) -> list[Decision]:
        """Join the helpers if every one has ended; else wait (`retired` joins after the last)."""
        if self._helpers_ended(node):
            return self._join(node)
        node.state = Phase.WAITING
        return [AwaitChildren(node.index)]

    # -- retirements and joins -----------------------------------------------------------------
    def retired(self, index: int) -> list[Decision]:
        node = self.nodes[index]
        node.state = Phase.DONE
        parent = self.nodes.get(node.parent) if node.parent is not None else None
        if parent is None or parent.state != Phase.WAITING:
            return []
        if not self._helpers_ended(parent):
            return self._cut(parent)
        return self._join(parent)

    def _cut(self, node: ProtocolState) -> list[Decision]:
        """Once enough of a waiting worker's children have ended (the protocol says how many:
        ParaThinker's first finish), the rest end where they are (reason "cut")."""
        open_ = self._awaited(node)
        ended = sum(self.nodes[c].state == Phase.DONE for c in open_)
        if node.reserved or not self.protocol.enough(ended, len(open_)):
            return []
        cut = [c for c in open_ if self.nodes[c].state != Phase.DONE and c not in node.cut]
        node.cut.update(cut)
        return [Retire(c, "cut") for c in cut]

    def _join(self, node: ProtocolState) -> list[Decision]:
        children = tuple(self._awaited(node))
        node.joined.update(children)
        node.awaiting = None
        if node.closing is not None:
            node.state = Phase.DONE
            return [JoinChildren(node.index, children, retire=node.closing)]
        node.state = Phase.ACTIVE
        return [JoinChildren(node.index, children)]

    def join(self, index: int, block: str, children: list[str]) -> JoinLayout:
        """How worker `index` takes in the children of its `JoinChildren`, from its current block's text
        and theirs (the protocol's rule; a closing worker keeps everything and is fed nothing)."""
        node = self.nodes[index]
        return JoinLayout() if node.closing is not None else self.protocol.join(block, children, node.memo)

    def waiting(self) -> list[int]:
        return [n.index for n in self.nodes.values() if n.state == Phase.WAITING]
