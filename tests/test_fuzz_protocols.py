"""Fuzzing the marker parsers and the controller, without torch: random streams of each
protocol's real markers mixed with junk, revealed in random chunks as a worker's text grows.

Parsers: no exception, a cursor that only moves forward, and the same actions however the text
is split (a marker split across tokens or steps is still one marker). Well-formed streams give
exactly the actions their markers stand for.

Controller: random limits, protocols and schedules (text growing, workers retiring at EOS or
their budget, everyone retiring at the token cap), applied as the runtime applies them. After
every decision the limits hold, no retired or waiting worker acts, no reservation outlives a
call, and no parent waits on children that are all done (it would wait forever); at the end
every worker is done and every child is joined or belongs to a parent that retired first.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from collab import prompts
from collab.controller import Controller, Limits, Rejected, AwaitChildren, JoinChildren, Retire, SpawnChildren
from collab.protocols import PROTOCOLS, DoneMark, JoinLayout, Malformed, SpawnMark, WaitMark
from collab.protocols.apr import known_nodes, node_prompt
from collab.protocols.base import MAX_OPEN_CHARS

# Reproducible (the "collab" profile of conftest.py); each test runs in seconds on one CPU
# thread. Hypothesis explores little per example, so examples are many.
FUZZ = settings(max_examples=1000)

NAMES = sorted(PROTOCOLS)
JUNK = ["x", "ab ", " ", "\n", "<", ">", "/", "</", "<b>", "1", ": ", ".", "2)", "\n\n", "Done."]
# Filler around the length at which an opened marker left unclosed becomes plain text.
FILLER = st.integers(MAX_OPEN_CHARS - 32, MAX_OPEN_CHARS + 8).map(lambda n: "y" * n)
MARKERS = {
    "markers": [
        "<spawn>", "</spawn>", "<spawn>task</spawn>", "<spawn></spawn>", "<SPAWN>T</Spawn>", "<spawn> a\nb </spawn>",
        "<wait>", "<wait/>", "<join >", "<WAIT >", "<done>", "<done/>", "<wai", "<sp", "spawn>", "<done",
    ],
    "multiverse": [
        "<Parallel>", "<Goal>", "</Goal>", "<Outline>", "</Outline>", "<Outline>1: a</Outline>", "<Outline>b</Outline>",
        "<Goal>\n<Outline>1: a</Outline>\n<Outline>2: b</Outline>\n</Goal>", "</Path>", "<Path>", "</Pa",
        "<Conclusion>", "</Parallel>", "<Go",
    ],
    "threadweaver": [
        "<Parallel>", "<Outlines>", "</Outlines>", "<Outline>", "</Outline>", "<Outline>1: a</Outline>",
        "<Outlines>\n<Outline>1: a</Outline>\n<Outline>3: c</Outline>\n</Outlines>", "</Thread>", "<Thread>",
        "</Parallel>", "<Outli",
    ],
    "apr": [
        "<Calling Sub Searches>", "<End Calling Sub Searches>", "<Start Sub Search 0 at level 1> Moving to Node #0,1\n",
        "<Start Sub Search 12 at level 2>", "<Sub Searches>", "<End Sub Searches>", "<Calling Sub", "Moving to Node #0,9",
        "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0,0\n"
        "<Start Sub Search 1 at level 1> Moving to Node #0,1\n<End Calling Sub Searches>",
    ],
    "parathinker": ["<think1>", "</think1>", "</think>", "</think12>", "<summary>", "</summary>", "</thi", "</think2", "</summ"],
    "parallel_r1": ["<Parallel>", "</Parallel>", "<Path>", "</Path>", "<Summary>", "</Summary>", "<Paral", "</Pa"],
    "asyncthink": ["<FORK1>a</FORK1>", "<FORK-2>b</FORK-2>", "<FORK1>", "</FORK1>", "<JOIN1>", "<JOIN-2>", "<JOIN9>",
                   "<FORK3> </FORK3>", "<FO", "<JOI"],
    "npr": ["<guideline>", "</guideline>", "<plan>1: a</plan>", "<plan>", "</plan>", "<step>", "</step>", "<takeaway>",
            "<guideline>\n<plan>1: a</plan>\n<plan>2: b</plan>\n</guideline>", "</ste", "<guide"],
    "skeleton": ["1. a\n", "2) b\n", "10. c\n", " 3. d", "intro", "1.", "\n\n", "\n", "1. a\n2. b\n\n"],
}


def streams(name: str):
    """A worker's whole text: that protocol's markers (whole, partial, malformed, well-formed
    with random contents) and junk."""
    piece = st.sampled_from(MARKERS[name] + JUNK)
    good = st.one_of(_marker(name, child=True), _marker(name, child=False)).map(lambda m: m[0])
    # Hypothesis starts from (and shrinks toward) the first branch: well-formed markers.
    return st.lists(st.one_of(good, piece, piece, good, FILLER, _stretched(name)), max_size=30).map("".join)


OPEN_CLOSE = {
    "markers": ("<spawn>", "</spawn>"),
    "multiverse": ("<Goal>", "</Goal>"),
    "threadweaver": ("<Outlines>", "</Outlines>"),
    "apr": ("<Calling Sub Searches>", "<End Calling Sub Searches>"),
    "asyncthink": ("<FORK1>", "</FORK1>"),
}


def _stretched(name: str):
    """An opened marker whose close lands a few characters either side of the length limit."""
    if name not in OPEN_CLOSE:
        return st.nothing()
    opener, closer = OPEN_CLOSE[name]
    n = MAX_OPEN_CHARS - len(opener) - len(closer)
    return st.integers(n - 3, n + 3).map(lambda k: opener + "y" * k + closer)


chunkings = st.lists(st.integers(1, 16), min_size=1, max_size=8)


def cuts(n: int, sizes: list[int]) -> list[int]:
    """Prefix lengths at which a text of n characters is read, cycling through chunk sizes."""
    out, end, i = [], 0, 0
    while end < n:
        end = min(n, end + sizes[i % len(sizes)])
        out.append(end)
        i += 1
    return out


# APR reads the numbers of the nodes its sub-searches start from in the worker's context.
APR_CONTEXT = ("Moving to Node #0\nCurrent State: 9:[1, 2, 3], Operations: []\n"
               "Generated Node #0,0: 9:[3, 3] Operation: 1+2=3\nGenerated Node #0,1: 9:[2, 2] Operation: 3-1=2\n")
APR_NODES = known_nodes(APR_CONTEXT)


def parse(protocol, text: str, ends: list[int], child: bool):
    """Scan `text` as it grows to each prefix in `ends`, as the controller does; check the
    cursor on the way and return every action."""
    actions, cursor, memo = [], 0, {"prompt": APR_CONTEXT}
    for end in ends:
        found, new = protocol.scan(text[:end], cursor, child, memo)
        assert cursor <= new <= end, (cursor, new, end)
        for action in found:
            assert isinstance(action, (SpawnMark, WaitMark, DoneMark, Malformed)), action
            if isinstance(action, SpawnMark):
                assert action.heads and all(isinstance(h, str) and h for h in action.heads)
        actions += found
        cursor = new
    return actions


named_streams = st.sampled_from(NAMES).flatmap(lambda name: st.tuples(st.just(name), streams(name)))


@FUZZ
@given(case=named_streams, child=st.booleans(), sizes=chunkings)
# Found by this test: the length limit judged by how the text arrived, and an outline that
# arrived with the paragraph before it.
@example(case=("apr", "<Calling Sub Searches>" + "y" * 557 + "<End Calling Sub Searches>"), child=False, sizes=[1])
@example(case=("markers", "<spawn>" + "y" * 600 + "</spawn>"), child=False, sizes=[1])
@example(case=("markers", "<spawn>" + "y" * 585 + "</spawn>"), child=False, sizes=[1])  # closes at the limit
@example(case=("skeleton", "\n\n1. a\n\n"), child=False, sizes=[1])
def test_parsers_never_raise_and_read_the_same_actions_however_the_text_is_split(case, child, sizes):
    name, text = case
    protocol = PROTOCOLS[name]()
    whole = parse(protocol, text, [len(text)], child)
    assert parse(protocol, text, cuts(len(text), sizes), child) == whole


# -- well-formed streams: known actions ----------------------------------------------------------
plain = st.text(alphabet="abc xyz.,;", max_size=8)  # junk that cannot start or end a marker
words = st.text(alphabet="abcdefgh ", min_size=1, max_size=6).filter(lambda s: s.strip())


@st.composite
def well_formed(draw, name: str, child: bool):
    """(text, expected actions): markers with nothing malformed between them."""
    text, expected = draw(plain), []
    for _ in range(draw(st.integers(0, 4))):
        piece, actions = draw(_marker(name, child))
        text += piece + draw(plain)
        expected += actions
        if name == "skeleton" and actions:  # only the first outline spawns
            break
    return text, expected


@st.composite
def _marker(draw, name: str, child: bool):
    if name == "markers":
        kind = draw(st.sampled_from(["spawn", "wait", "spawn", "done"]))  # <done> ends everything after it
        if kind == "spawn":
            task = draw(words)
            return f"<spawn>{task}</spawn>", [SpawnMark((prompts.load("markers_child.txt").format(task=task.strip()),), False)]
        return (f"<{kind}>", [WaitMark()] if kind == "wait" else [DoneMark("<done>")])
    if name in ("multiverse", "threadweaver", "npr"):
        outer, inner, item = {"multiverse": ("Goal", "Path", "Outline"), "threadweaver": ("Outlines", "Thread", "Outline"),
                              "npr": ("guideline", "step", "plan")}[name]
        if child and draw(st.booleans()):
            return f"</{inner}>", [DoneMark(f"</{inner}>", after=0 if name == "threadweaver" else 1)]
        numbers = draw(st.lists(st.sampled_from(["1", "2", "7", "20", "1.1", "2.3.1"]), min_size=1, max_size=4))
        outlines = "".join(f"<{item}>{i}: {draw(words)}</{item}>\n" for i in numbers)
        return f"<{outer}>\n{outlines}</{outer}>", [SpawnMark(tuple(f"\n<{inner}>\n{i}:" for i in numbers), True)]
    if name == "apr":
        if child:  # sub-searches end at EOS and never nest: nothing in their text acts
            return draw(st.sampled_from(["<End Calling Sub Searches>", "Goal Reached\n", "<Sub Searches>"])), []
        ids = draw(st.lists(st.sampled_from(sorted(APR_NODES)), min_size=1, max_size=4))
        lines = [f"<Start Sub Search {i} at level 1> Moving to Node #{node}" for i, node in enumerate(ids)]
        body = "".join(f"{line}\n" for line in lines)
        heads = tuple(node_prompt(APR_NODES[node]) for node in ids)
        return f"<Calling Sub Searches>\n{body}<End Calling Sub Searches>", [SpawnMark(heads, True, fresh=True)]
    if name == "parathinker":
        if not child:
            return "</summary>", [DoneMark("</summary>")]
        tag = f"</think{draw(st.sampled_from(['', '1', '7']))}>"
        return tag, [DoneMark(tag)]
    if name == "parallel_r1":
        if child:
            return "</Path>", [DoneMark("</Path>")]
        return "<Parallel>", [SpawnMark(("<Path>", "<Path>"), True)]
    if name == "asyncthink":
        if child:  # workers end at EOS
            return draw(st.sampled_from(["<FORK1>a</FORK1>", "<JOIN1>"])), []
        key = draw(st.sampled_from(["1", "2", "17"]))
        if draw(st.booleans()):
            return f"<JOIN{key}>", [WaitMark((key,))]
        return f"<FORK-{key}>{draw(words)}x</FORK-{key}>", [SpawnMark(("\n",), False, key=key)]
    if name == "skeleton":
        if child:
            return draw(words), []
        points = draw(st.lists(words, min_size=1, max_size=5))
        outline = "".join(f"{i}. {p.strip()}\n" for i, p in enumerate(points, 1))
        return "\n\n" + outline + "\n", [SpawnMark(tuple(f"Point {i}: {p.strip()}\n" for i, p in enumerate(points, 1)), True)]
    raise AssertionError(f"no well-formed markers for protocol {name!r}: add them here")


@FUZZ
@given(name=st.sampled_from(NAMES), child=st.booleans(), data=st.data(), sizes=chunkings)
def test_well_formed_streams_give_exactly_their_actions(name, child, data, sizes):
    protocol = PROTOCOLS[name]()
    text, expected = data.draw(well_formed(name, child))
    assert parse(protocol, text, cuts(len(text), sizes), child) == expected


# -- the controller, driven as the runtime drives it ---------------------------------------------
class Drive:
    """The runtime's side of the controller: applies decisions and checks every invariant."""

    def __init__(self, data, name: str, limits: Limits, roots: int):
        self.data, self.name, self.limits, self.roots = data, name, limits, roots
        self.c = Controller(PROTOCOLS[name](), limits, APR_CONTEXT)
        self.text: dict[int, str] = {}
        self.shown: dict[int, int] = {}
        self.retired: set[int] = set()  # told to the controller, as the runtime's _retire does
        self.stopped: set[int] = set()  # retired from outside (budget, context, cap), not by its own end
        self.joined: set[int] = set()
        self.log: list = []  # every decision, in order
        self.depth = 0  # nesting of apply(): a retirement's decisions are applied inside another's
        for i in range(roots):
            self._add(i, None)

    def _add(self, index: int, parent: int | None) -> None:
        self.c.add(index, parent)
        self.text[index] = self.data.draw(streams(self.name), label=f"text of worker {index}")
        self.shown[index] = 0

    def state(self, i: int) -> str:
        return self.c.nodes[i].state

    def active(self) -> list[int]:
        return [i for i in self.c.nodes if self.state(i) == "active"]

    # -- what the runtime does ---------------------------------------------------------------
    def grow(self, i: int, n: int) -> None:
        """Worker i (active) samples n more characters; at the end of its text it samples EOS."""
        assert self.state(i) == "active"
        if self.shown[i] >= len(self.text[i]):  # EOS: its helpers end first, as after a done marker
            return self.apply(self.c.end(i, "eos"))
        self.shown[i] = min(len(self.text[i]), self.shown[i] + n)
        self.apply(self.c.observe(i, self.text[i][: self.shown[i]]))

    def poke(self, i: int, n: int) -> None:
        """Show the controller more text of a waiting or retired worker: it must neither act
        on it nor consume it (a waiting worker reads on from where it paused)."""
        node = self.c.nodes[i]
        state, cursor = node.state, node.cursor
        decisions = self.c.observe(i, self.text[i][: self.shown[i] + n])
        assert decisions == [], f"worker {i} ({state}) acted: {decisions}"
        assert (node.state, node.cursor) == (state, cursor), f"worker {i} ({state}) consumed text it did not write"

    def retire(self, i: int, outside: bool = False) -> None:
        if i in self.retired:
            return
        self.retired.add(i)
        if outside:
            self.stopped.add(i)
        self.apply(self.c.retired(i))

    def cap(self) -> None:
        """max_total_tokens: the runtime retires every worker, in index order."""
        for i in sorted(self.c.nodes):
            self.retire(i, outside=True)

    def apply(self, decisions) -> None:
        self.depth += 1
        self._apply(decisions)
        self.depth -= 1
        if self.depth == 0:  # the runtime has carried out everything this call decided
            self.check()

    def _apply(self, decisions) -> None:
        for d in decisions:
            self.log.append(d)
            actor = {SpawnChildren: "parent", AwaitChildren: "worker", JoinChildren: "parent", Retire: "worker"}.get(type(d))
            if actor is not None:
                assert getattr(d, actor) not in self.retired, f"a retired worker acted: {d}"
            if isinstance(d, SpawnChildren):
                self._start(d)
            elif isinstance(d, AwaitChildren):
                assert self.state(d.worker) == "waiting"
            elif isinstance(d, JoinChildren):
                self._resume(d)
            elif isinstance(d, Retire):
                self.retire(d.worker)
            else:
                assert isinstance(d, Rejected) and d.kind in ("refused", "malformed"), d
                if "<wait>" in d.reason:  # ignored as having nothing to wait for: true when it was read
                    assert all(c in self.joined for c in self.c.nodes[d.worker].children), (d, self.c.nodes[d.worker])

    def _start(self, d: SpawnChildren) -> None:
        parent = self.c.nodes[d.parent]
        assert d.heads and parent.depth + 1 <= self.limits.max_depth, d
        for _ in d.heads:
            self._add(len(self.c.nodes), d.parent)
        # Spawning never lifts concurrency past the limit (a waiting parent stops counting).
        assert self.c.active <= self.limits.max_concurrent, (d, self.c.active)

    def _resume(self, d: JoinChildren) -> None:
        node = self.c.nodes[d.parent]
        unjoined = tuple(c for c in node.children if c not in self.joined)
        assert d.children == unjoined, ("a join takes every unjoined child, in spawn order", d, unjoined)
        assert all(self.state(c) == "done" for c in d.children), ("joined a running child", d)
        self.joined.update(d.children)
        join = self.c.join(d.parent, "", ["x"] * len(d.children))
        if d.retire is not None:  # its done marker came first: it retires once its helpers are in
            assert join == JoinLayout() and (d.retire.startswith("done marker") or d.retire == "eos"), d
            self.retire(d.parent)
        else:
            assert join.show is None or len(join.show) == len(d.children)

    # -- invariants ----------------------------------------------------------------------------
    def check(self) -> None:
        c, lim = self.c, self.limits
        states = [n.state for n in c.nodes.values()]
        assert len(c.nodes) <= max(lim.max_workers, self.roots)
        assert states.count("active") <= max(lim.max_concurrent, self.roots)
        assert c.active == states.count("active"), "a spawn reservation outlived the call"
        assert all(n.depth <= lim.max_depth for n in c.nodes.values() if n.parent is not None)
        for n in c.nodes.values():
            if n.state == "waiting":  # someone must be left to wake it
                running = [k for k in n.children if k not in self.joined and c.nodes[k].state != "done"]
                assert running, f"worker {n.index} waits forever"

    def finish(self) -> None:
        """Everyone writes to the end of their text; then the run is over."""
        while live := self.active():
            self.grow(live[0], len(self.text[live[0]]) + 1)
        assert all(n.state == "done" for n in self.c.nodes.values()), {i: n.state for i, n in self.c.nodes.items()}
        for n in self.c.nodes.values():  # a child left unjoined belongs to a parent stopped from outside
            if n.parent is not None and n.index not in self.joined:
                assert n.parent in self.stopped, f"child {n.index} was never joined, yet its parent {n.parent} ended by itself"


@FUZZ
@given(data=st.data())
def test_controller_limits_hold_under_random_streams_and_schedules(data):
    name = data.draw(st.sampled_from(NAMES), label="protocol")
    limits = Limits(  # room to spawn first (hypothesis starts from the first choice), then tight corners
        max_concurrent=data.draw(st.sampled_from([3, 1, 2, 4])), max_workers=data.draw(st.sampled_from([6, 2, 4, 1, 8])),
        max_depth=data.draw(st.sampled_from([2, 1, 0, 3])),
    )
    roots = data.draw(st.sampled_from([1, 1, 2, 1, 3]), label="roots")
    drive = Drive(data, name, limits, roots)
    paths = PROTOCOLS[name]().start(data.draw(st.integers(1, 4), label="paths"))
    if paths:  # fixed paths (ParaThinker) start before any text, under the same limits
        for root in range(roots):
            drive.apply(drive.c.spawn(root, paths, wait=True))
    for _ in range(data.draw(st.sampled_from([120, 40, 0]), label="steps")):
        everyone = sorted(drive.c.nodes)
        op = data.draw(st.sampled_from(["grow"] * 6 + ["retire", "observe_idle", "cap"]))
        if op == "cap":
            drive.cap()
            break
        live = drive.active()
        if op == "observe_idle":  # a waiting or retired worker is read again: it must not act
            idle = [i for i in everyone if drive.state(i) != "active"]
            if idle:
                drive.poke(data.draw(st.sampled_from(idle)), data.draw(st.integers(1, 40)))
        elif live and op == "retire":  # its budget ran out, or the context
            drive.retire(data.draw(st.sampled_from(live)), outside=True)
        elif live:
            drive.grow(data.draw(st.sampled_from(live)), data.draw(st.sampled_from([8, 1, 3, 30])))
    drive.finish()


def test_the_fuzzer_reaches_spawns_joins_and_refusals():
    """The streams above are rich enough to exercise what the invariants are about."""
    kinds = {}

    @settings(FUZZ, max_examples=300)
    @given(data=st.data())
    def run(data):
        name = data.draw(st.sampled_from(NAMES))
        drive = Drive(data, name, Limits(max_concurrent=2, max_workers=4, max_depth=2), 1)
        if name == "parathinker":
            drive.apply(drive.c.spawn(0, PROTOCOLS[name]().start(2), wait=True))
        drive.finish()
        for d in drive.log:
            kind = d.kind if isinstance(d, Rejected) else "Close" if isinstance(d, JoinChildren) and d.retire else type(d).__name__
            kinds.setdefault(name, set()).add(kind)

    run()
    # every protocol spawns; waits, joins, closes (a done marker before the helpers ended),
    # retirements, refusals and malformed markers are reached
    # over all of them (which protocol reaches which depends on hypothesis' version)
    for name in NAMES:
        assert "SpawnChildren" in kinds.get(name, set()), (name, kinds.get(name))
    reached = set().union(*kinds.values())
    assert {"AwaitChildren", "JoinChildren", "Close", "Retire", "refused", "malformed"} <= reached, reached
