"""That a rendering round-trips through collab's own protocol: scanning the root's written text
spawns exactly the rendered children with the rendered heads, each join feeds exactly the
rendered join text, and every worker ends where its protocol ends it. Pure Python, no torch.

    >>> from collab.tasks.render import render
    >>> from collab.tasks.trace import Fork, Text, Trace
    >>> check(render(Trace((Text("Two parts."), Fork(("a", "b"), (Trace.of("x"), Trace.of("y")), "x and y."))), "markers"))
"""

from __future__ import annotations

from ..protocols import PROTOCOLS, DoneMark, SpawnMark, WaitMark
from .render import FORMATS, Piece, Rendering, Stream


def check(rendering: Rendering) -> None:
    """Raise AssertionError naming the first place where `rendering` and what collab's protocol
    reads from it differ."""
    protocol = PROTOCOLS[rendering.protocol]()
    fmt = FORMATS[rendering.protocol]
    root = rendering.root
    _expect(root.pieces and root.pieces[-1].written, "the root must end with text it writes")
    _expect(len([p for p in root.pieces if not p.written]) == len(rendering.forks), "one fed join text per fork")
    memo, text, block, cursor, pending, fork = {"prompt": ""}, "", "", 0, [], 0
    for piece in root.pieces:
        block += piece.text
        if piece.written:  # scanned as collab's controller scans it: the written text so far
            text += piece.text
            actions, cursor = protocol.scan(text, cursor, False, memo)
            pending += actions
            continue
        children = [rendering.workers[i] for i in rendering.forks[fork]]
        _spawned(pending, children, fork)
        join = protocol.join(block[: -len(piece.text)], [c.text for c in children], memo)
        _expect(join.text == piece.text, f"fork {fork}: collab feeds {join.text!r}, the rendering {piece.text!r}")
        block, pending, fork = piece.text, [], fork + 1
    _ends(pending, root.written, fmt.end != "", "the root")
    for child in rendering.workers[1:]:
        _expect(child.parent == 0 and child.pieces[0] == Piece(child.head, False), f"worker {child.index}: its head comes first, fed")
        actions, _ = protocol.scan(child.written, 0, True, {})
        _ends(actions, child.written, fmt.child_marker, f"worker {child.index}")


def _expect(ok: bool, message: str) -> None:
    if not ok:  # raised, not asserted: the check holds under `python -O` too
        raise AssertionError(message)


def _spawned(actions: list, children: list[Stream], fork: int) -> None:
    bad = [a for a in actions if not isinstance(a, (SpawnMark, WaitMark))]
    _expect(not bad, f"fork {fork}: the root's text before the join reads as {bad}")
    spawns = [a for a in actions if isinstance(a, SpawnMark)]
    heads = [h for s in spawns for h in s.heads]
    _expect(heads == [c.head for c in children], f"fork {fork}: collab spawns heads {heads}, the rendering {[c.head for c in children]}")
    if any(s.wait for s in spawns):  # a protocol whose spawn waits: one spawn for the whole fork
        _expect(len(spawns) == 1 and actions == spawns, f"fork {fork}: expected one waiting spawn, got {actions}")
    else:  # markers: a spawn per child, then one wait
        _expect(actions[-1:] == [WaitMark()] and len(actions) == len(spawns) + 1, f"fork {fork}: expected spawns then one wait, got {actions}")


def _ends(actions: list, written: str, marker: bool, who: str) -> None:
    """A worker that ends at a done marker has exactly one, closing its text (plus the tokens it
    keeps after it: one character each here); one that ends at EOS has none."""
    if not marker:
        _expect(not actions, f"{who} ends at EOS, but its text reads as {actions}")
        return
    _expect(len(actions) == 1 and isinstance(actions[0], DoneMark), f"{who} must end with one done marker, its text reads as {actions}")
    done = actions[0]
    end = len(written) - done.after
    _expect(written[:end].endswith(done.marker), f"{who}'s text does not end at {done.marker!r} (+{done.after} kept)")
