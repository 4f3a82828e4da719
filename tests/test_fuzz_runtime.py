"""Fuzzing the real runtime on a tiny model: scripted texts full of protocol markers (drawn by
hypothesis, forced token by token by the `Script` processor with `CharTokenizer`) make workers
spawn, wait, join and retire on random schedules, under random limits, visibilities and page
sizes. Every run must stay exact against the plain model (`oracle.check_trace`), feed each token
once, keep every view well formed, and hold the limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import check_trace
from scripted import EOS, CharTokenizer, Script

import collab
from collab.protocols.apr import known_nodes, node_prompt
from collab.protocols.parathinker import SUMMARY
from collab import prompts
from collab.views import end
from conftest import tiny_model

# Reproducible (the "collab" profile of conftest.py); each test takes well under a minute on one
# CPU thread: every example is a whole run plus its replay through the plain model.
FUZZ = settings(max_examples=15)

PROMPT = "Q: 1+2?\n"
CONTEXT = 288  # small enough that deep views run out of it: "context" retirements get exercised
MODEL = tiny_model(vocab_size=128, eos_token_id=EOS, max_position_embeddings=CONTEXT)
FINISHER = prompts.load("finisher.txt") + " 3"

junk = st.text(alphabet="ab .:\n", max_size=3)  # ":\n\n" and ".\n\n" end reasoning steps


def one_of(*options):
    """Hypothesis starts from (and shrinks to) the first option: the richest comes first."""
    return st.sampled_from(options)


@st.composite
def markers(draw):
    root = ""
    for _ in range(draw(one_of(2, 3, 1))):  # rounds: spawn helpers, maybe wait for them
        tasks = draw(st.lists(one_of("t0", "t1", "t2"), min_size=1, max_size=2))
        root += draw(junk) + "".join(f"<spawn>{t}</spawn>" for t in tasks)
        root += draw(junk) + draw(one_of("<wait>\n", "", "<done>", "<spawn></spawn><wait>\n", "<wait>\n<wait>\n"))
    children = []
    for task in ("t0", "t1", "t2"):
        nested = draw(one_of("", "<spawn>u</spawn>", "<spawn>u</spawn><wait>\n", "<wait>\n"))
        tail = draw(one_of("<done>", "", "<done><spawn>u</spawn>"))  # the last: a spawn after <done>, ignored
        children.append(f"\nHelper task: {task}\n" + draw(junk) + nested + draw(junk) + tail)
    return [root, *children, "\nHelper task: u\n" + draw(junk) + draw(one_of("<done>", ""))]


def outlines(outer: str, inner: str, join: str, item: str = "Outline"):
    def block(numbers):  # compact: the parser needs no newlines, and budgets are small
        return f"<{outer}>" + "".join(f"<{item}>{i}: o</{item}>" for i in numbers) + f"</{outer}>"

    @st.composite
    def scripts(draw):
        root = ""
        for _ in range(draw(one_of(1, 2))):
            numbers = draw(one_of([1, 2], [1], [1, 2, 3], [2, 7]))
            spawn = block(numbers) + join
            root += draw(junk) + draw(one_of(spawn, spawn, f"<{outer}></{outer}>", "<Parallel>" + block(numbers)))
        paths = []
        for i in (1, 2, 3, 7):
            nested = draw(one_of("", block([1]) + join))  # a path that opens paths of its own
            paths.append(f"\n<{inner}>\n{i}:" + draw(junk) + nested + draw(junk) + draw(one_of(f"</{inner}>\n", f"</{inner}>", "")))
        return [root + draw(junk), *paths]

    return scripts()


APR_NODES = "Moving to Node #0\nCurrent State: 9:[1, 2, 3], Operations: []\nGenerated Node #0,0: 9:[3, 3] Operation: 1+2=3\n"


@st.composite
def apr(draw):
    root = APR_NODES
    for _ in range(draw(one_of(1, 2))):
        n = draw(one_of(1, 2, 3))
        call = "<Calling Sub Searches>\n" + "".join(f"<Start Sub Search {i} at level 1> Moving to Node #0,0\n" for i in range(n))
        root += draw(junk) + draw(one_of(call + "<End Calling Sub Searches>", "<Calling Sub Searches><End Calling Sub Searches>"))
    child = node_prompt(known_nodes(APR_NODES)["0,0"])
    children = [child + draw(junk) + draw(one_of("Goal Reached\nGoal Reached\nx", "")) for _ in range(3)]
    return [root + draw(junk), *children]


@st.composite
def parathinker(draw):
    paths = [f"<think{i}>" + draw(junk) + draw(one_of(f"</think{i}>", "", "</think>")) for i in range(1, 4)]
    return [SUMMARY + draw(junk) + draw(one_of("ok</summary>", "ok")), *paths]


@st.composite
def parallel_r1(draw):
    root = ""
    for _ in range(draw(one_of(1, 2))):
        root += draw(junk) + draw(one_of("<Parallel></Parallel>\n<Summary>s</Summary>", "<Paral"))
    return [root + draw(junk), "<Path>" + draw(junk) + draw(one_of("</Path>", ""))]


@st.composite
def asyncthink(draw):
    root = ""
    for key in draw(st.lists(one_of("1", "2", "3"), min_size=1, max_size=3)):
        root += draw(junk) + f"<FORK{key}>t{key}</FORK{key}>" + draw(junk) + draw(one_of(f"<JOIN{key}>\n", "", "<JOIN9>"))
    return [root + draw(junk), "\n" + draw(junk)]


@st.composite
def skeleton(draw):
    points = draw(st.lists(one_of("add", "double", "check"), min_size=1, max_size=3))
    outline = "".join(f"{i}. {p}\n" for i, p in enumerate(points, 1)) + "\n"
    root = draw(junk).replace("\n", "") + outline + "\nCombining the points above, the answer is:\n" + draw(junk)
    return [root, *(f"Point {i}: {p}\n" + draw(junk) for i, p in enumerate(points, 1))]


@st.composite
def plain(draw):
    """No protocol: roots that write short reasoning steps (a sentence end, a blank line)."""
    return ["".join(draw(st.lists(one_of("It is 3.\n\n", "So 6:\n\n", "ab ", ".\n\nc"), min_size=1, max_size=8)))]


SCRIPTS = {
    "plain": plain(),
    "markers": markers(),
    "multiverse": outlines("Goal", "Path", "<Conclusion>\n"),
    "threadweaver": outlines("Outlines", "Thread", "\n</Parallel>\n"),
    "apr": apr(),
    "parathinker": parathinker(),
    "parallel_r1": parallel_r1(),
    "asyncthink": asyncthink(),
    "npr": outlines("guideline", "step", "<takeaway>\n", item="plan"),
    "skeleton": skeleton(),
}
# A fork child's base holds its parent's live block, which "step"/"combined" free when the
# parent's step moves into the history: see test_step_visibility_with_fork_children below.
VISIBILITIES = {name: ["full", "none", "lag:1", "lag:3"] for name in SCRIPTS}
VISIBILITIES["plain"] = ["step", "combined", "full", "lag:1"]
BUDGET = {name: 96 for name in SCRIPTS} | {"apr": 128, "plain": 48}  # tokens a root needs to reach its markers (APR's are long)
# (max_concurrent, max_workers, max_depth): room to spawn and nest first, then tight corners.
LIMITS = one_of((4, 8, 2), (4, 8, 2), (2, 5, 2), (3, 6, 1), (1, 8, 2), (2, 3, 0), (1, 1, 0))


@st.composite
def runs(draw, name: str):
    roots = draw(one_of(1, 1, 2), label="roots")
    visibility = draw(st.sampled_from(VISIBILITIES[name] + (["matrix"] if roots == 2 else [])), label="visibility")
    if visibility == "matrix":
        visibility = [[True, False], [True, True]]
    concurrent, workers, depth = draw(LIMITS, label="limits")
    limits = collab.Limits(
        max_concurrent=concurrent, max_workers=workers, max_depth=depth,
        max_total_tokens=draw(one_of(None, None, 300, 100), label="max_total_tokens"),
    )
    # A finisher under a token cap is cut to one token: see test_the_finisher_writes_after_the_token_cap.
    finisher = draw(st.booleans(), label="finisher") if limits.max_total_tokens is None else False
    kw = dict(
        visibility=visibility, limits=limits, finisher=finisher, finisher_tokens=6,
        max_new_tokens=draw(one_of(BUDGET[name], BUDGET[name], BUDGET[name] // 2), label="max_new_tokens"),
        page_size=draw(one_of(16, 3, 1, 64)),
    )
    if name == "plain":
        kw["workers"] = roots
    elif roots == 1:
        kw["strategy"] = "adaptive" if name == "markers" else name  # one root (ParaThinker: `workers` paths)
        kw["workers"] = draw(one_of(2, 3, 1)) if name == "parathinker" else 1
    else:
        kw["protocol"], kw["workers"] = name, roots
    return draw(SCRIPTS[name]) + [FINISHER], kw


def generate(scripts, **kw):
    return collab.generate(
        MODEL, PROMPT, tokenizer=CharTokenizer(), template=None, output_logits=True, seed=0, progress=False,
        logits_processor=[Script(len(PROMPT), scripts)], **kw,
    )


def check_exact_and_fed_once(result):
    check_trace(MODEL, result)
    distinct = sum(len(tokens) for tokens in result.blocks.values())
    assert result.stats.tokens_fed == result.stats.kv_tokens == distinct


def check_views(result):
    """Each view places a block once (the step plan gives a block one offset per worker), never
    the worker's own block, and the own block right after everything it sees."""
    for step, worker, block, first, tokens, segments, own_offset, sampled in (e for e in result.trace if e[0] != "move"):
        blocks = [s.block for s in segments]
        assert len(blocks) == len(set(blocks)), (step, worker, segments)
        assert block not in blocks and all(s.length > 0 for s in segments), (step, worker, segments)
        assert own_offset == end(segments), (step, worker, segments, own_offset)


def check_limits(result, kw):
    limits, roots = kw["limits"], (1 if "strategy" in kw else kw["workers"])
    workers = [w for w in result.workers if w.role == "worker"]
    assert len(workers) <= max(limits.max_workers, roots)
    assert all(w.depth <= limits.max_depth for w in workers)
    sampling = {}
    for step, worker, *_, sampled in (e for e in result.trace if e[0] != "move"):
        if sampled and worker >= 0 and result.workers[worker].role == "worker":
            sampling.setdefault(step, set()).add(worker)
    assert max(map(len, sampling.values()), default=0) <= max(limits.max_concurrent, roots), sampling
    if limits.max_total_tokens is not None:  # the cap stops everyone in the step that reaches it
        tokens = sum(len(w.token_ids) for w in workers)
        assert tokens < limits.max_total_tokens + max(limits.max_concurrent, roots)


def check_lifecycle(result, kw):
    """Everyone retires; nobody samples past its budget or after it retired, or spawns after
    it retired; a join takes children that are done and fed, each once."""
    retired = set()
    for e in result.events:  # in the order they happened
        if e.kind == "done":
            retired.add(e.worker)
        if e.kind == "spawn":
            assert e.worker not in retired, f"worker {e.worker} spawned after it retired"
    joined = set()
    for w in result.workers:
        assert w.finish_reason is not None and w.retire_step is not None, w.name
        budget = kw["finisher_tokens"] if w.role == "finisher" else kw["max_new_tokens"]
        assert len(w.token_ids) <= budget and all(s <= w.retire_step for s in w.sample_steps), w.name
    for e in (e for e in result.events if e.kind == "join"):
        for c in e.info["children"]:
            child = result.workers[c]
            assert c not in joined and child.parent == e.worker, (e, c)
            assert child.retire_step <= e.step and all(s < e.step for s in child.feed_steps), (e, c)
            joined.add(c)


def check_run(result, kw):
    assert result.complete
    check_exact_and_fed_once(result)
    check_views(result)
    check_limits(result, kw)
    check_lifecycle(result, kw)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@FUZZ
@given(data=st.data())
def test_random_protocol_runs_are_exact_fed_once_and_within_limits(name, data):
    scripts, kw = data.draw(runs(name), label="run")
    check_run(generate(scripts, **kw), kw)


@settings(FUZZ, max_examples=40)
@given(case=runs("markers"))
def test_random_marker_runs_are_exact_fed_once_and_within_limits(case):
    """markers again, longer: helpers beside the parent, siblings that see each other, joins on
    <wait>, nested helpers, and <done> in any order."""
    scripts, kw = case
    check_run(generate(scripts, **kw), kw)


# -- what this fuzzing found in views.py (fixed), as plain examples ------------------------------
def test_a_helper_spawned_after_a_join_sees_its_joined_sibling_once():
    """The joined sibling sits in the parent's trail, hence in the new helper's base; it used to
    be stacked again as a live sibling, and the plan (one offset per block) silently kept one."""
    scripts = ["<spawn>t0</spawn><wait>\n<spawn>t1</spawn><wait>\n", "\nHelper task: t0\n<done>", "\nHelper task: t1\n<done>"]
    kw = dict(visibility="full", limits=collab.Limits(), strategy="adaptive", workers=1, finisher=False,
              max_new_tokens=64, page_size=16, finisher_tokens=6)
    result = generate(scripts, **kw)
    assert [w.finish_reason for w in result.workers[1:]] == ["done marker '<done>'"] * 2
    check_run(result, kw)


def test_a_visibility_matrix_covers_the_roots_and_helpers_see_their_siblings():
    """A 2 x 2 matrix with a protocol that spawns: helpers (indices past the matrix) used to
    raise IndexError; they see each other as under "full"."""
    scripts = ["<spawn>t0</spawn><spawn>t1</spawn><wait>\n", "\nHelper task: t0\nab<done>", "\nHelper task: t1\nc<done>"]
    kw = dict(visibility=[[True, False], [True, True]], limits=collab.Limits(), protocol="markers", workers=2,
              finisher=False, max_new_tokens=64, page_size=16, finisher_tokens=6)
    result = generate(scripts, **kw)
    assert len(result.workers) == 6
    check_run(result, kw)


@pytest.mark.parametrize("visibility", ["step", "combined"])
def test_the_finisher_sees_the_shared_history_once(visibility):
    """The finisher's base holds the history; the step-wise policy used to add it again."""
    kw = dict(visibility=visibility, limits=collab.Limits(), workers=2, finisher=True, max_new_tokens=48,
              page_size=16, finisher_tokens=6)
    check_run(generate(["It is 3.\n\nab", FINISHER], **kw), kw)


# -- what this fuzzing found in runtime.py, cache.py and api.py (fixed), as plain examples --
@pytest.mark.parametrize("visibility", ["step", "combined"])
def test_step_visibility_with_fork_children_is_refused_or_exact(visibility):
    scripts = ["go <spawn>a</spawn> ok.\n\nnext step. <wait>\nfin.", "\nHelper task: a\nwork work work <done>"]
    kw = dict(visibility=visibility, limits=collab.Limits(), strategy="adaptive", finisher=False, workers=1,
              max_new_tokens=60, page_size=4, finisher_tokens=6)
    try:
        result = generate(scripts, **kw)
    except ValueError as refused:  # refused before any compute, naming the visibility
        assert visibility in str(refused)
        return
    check_run(result, kw)


def test_the_finisher_writes_after_the_token_cap():
    scripts = ["thinking " * 10, FINISHER]
    kw = dict(visibility="full", limits=collab.Limits(max_total_tokens=30), strategy="adaptive", workers=1,
              max_new_tokens=60, page_size=16, finisher=True, finisher_tokens=6)
    result = generate(scripts, **kw)
    check_run(result, kw)
    assert result.workers[0].finish_reason == "max_total_tokens"
    assert result.finisher.finish_reason == "eos" and result.answer == "3", (result.finisher.finish_reason, result.answer)


def test_a_step_that_needs_a_new_page_in_the_history_moves_there():
    """One worker, "step" visibility: moving "ab.\n\n" into the history takes a page beyond the
    arena reserved for the budget."""
    kw = dict(visibility="step", limits=collab.Limits(), workers=1, max_new_tokens=8, page_size=4, finisher_tokens=6)
    check_run(generate(["ab.\n\ncd"], **kw), kw)
