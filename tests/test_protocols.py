"""Every protocol through the real runtime on a tiny model, its text forced by a script: the
right children with the right heads, the documented views, exact logits, no token fed twice."""

import pytest
import torch
from oracle import check_trace
from scripted import CharTokenizer, Script

import collab
from collab.protocols.apr import APR
from collab.protocols.asyncthink import AsyncThink
from collab.protocols.npr import NPR
from collab.protocols.parathinker import SUMMARY
from collab.protocols.threadweaver import ThreadWeaver
from collab.views import Segment
from conftest import tiny_model

PROMPT = "Q: add 1 and 2, then double.\n"


def scripted_run(strategy, scripts, workers=1, context=2048, **kw):
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=context)
    tok = CharTokenizer()
    kw = {"max_new_tokens": 200, "template": None, "output_logits": True, "seed": 0, **kw}
    result = collab.generate(
        model, PROMPT, tokenizer=tok, strategy=strategy, workers=workers,
        logits_processor=[Script(len(PROMPT), scripts)], **kw,
    )
    return model, tok, result


def text(tok, ids):
    return tok.decode(ids)


def check_exact_and_fed_once(model, result):
    check_trace(model, result)
    distinct = sum(len(tokens) for tokens in result.blocks.values())
    assert result.stats.tokens_fed == result.stats.kv_tokens == distinct


ROOT_MV = "<Parallel>\n<Goal>\n<Outline>1: add</Outline>\n<Outline>2: double</Outline>\n</Goal>"
MULTIVERSE = [
    ROOT_MV + "<Conclusion>\n6\n</Conclusion>\n</Parallel>",
    "\n<Path>\n1: 1+2=3\n</Path>\n",
    "\n<Path>\n2: 3*2=6\n</Path>\n",
]


def test_multiverse_paths_overlap_and_the_conclusion_sees_them_as_the_engine_merges():
    model, tok, r = scripted_run("multiverse", MULTIVERSE)
    root, p1, p2 = r.workers
    assert [p1.head, p2.head] == ["\n<Path>\n1:", "\n<Path>\n2:"] and p1.parent == p2.parent == 0
    for p in (p1, p2):  # one token kept after </Path>, as the engine keeps it
        assert text(tok, p.header_ids + p.token_ids).endswith("</Path>\n") and p.finish_reason == "done marker '</Path>'"
    n, goal = len(PROMPT), len(ROOT_MV)
    prefix = (Segment(0, n, 0), Segment(root.blocks[0], goal, n))  # the root's view up to </Goal>
    for path in (p1, p2):
        segments, block, own_offset = path.views[0]
        assert segments == prefix and own_offset == n + goal  # both paths at one position
    l1, l2 = (len(r.blocks[p.blocks[0]]) for p in (p1, p2))
    segments, block, own_offset = root.views[-1]  # the conclusion: path 2 without its leading newline, where it was written
    assert segments == prefix + (Segment(p1.blocks[0], l1, n + goal), Segment(p2.blocks[0], l2 - 1, n + goal + 1, 1))
    assert own_offset == n + goal + max(l1, l2) and block == root.blocks[1]
    seen = "".join(text(tok, r.blocks[s.block][s.start : s.start + s.length]) for s in segments[1:])
    assert seen == ROOT_MV + MULTIVERSE[1] + MULTIVERSE[2][1:]
    assert text(tok, r.blocks[root.blocks[1]]).startswith("<Conclusion>\n6")
    assert [e.kind for e in r.events].count("spawn") == 1 and [e.kind for e in r.events].count("join") == 1
    assert root.join_steps and root.finish_reason == "eos"
    check_exact_and_fed_once(model, r)


def test_multiverse_nested_ids_are_kept_dotted():
    inner = "\n<Path>\n1: split <Goal>\n<Outline>1.1: a</Outline>\n<Outline>1.2: b</Outline>\n</Goal>"
    scripts = [ROOT_MV[: ROOT_MV.index("<Outline>2")] + "</Goal><Conclusion>\nok", inner + "<Conclusion>\nab\n</Path>\n",
               "\n<Path>\n1.1: a\n</Path>\n", "\n<Path>\n1.2: b\n</Path>\n"]
    model, tok, r = scripted_run("multiverse", scripts)
    assert [w.head for w in r.workers[2:]] == ["\n<Path>\n1.1:", "\n<Path>\n1.2:"] and r.workers[2].depth == 2
    check_exact_and_fed_once(model, r)


@pytest.mark.parametrize("mode, head", [("sft", "\n"), ("rl", "\n<Conclusion>\n")])
def test_threadweaver_threads_are_contiguous_and_the_model_closes_the_block(mode, head):
    root_text = "<Parallel>\n<Outlines>\n<Outline>1: a</Outline>\n<Outline>2: b</Outline>\n</Outlines>"
    threads = ["\n<Thread>\n1: x\n</Thread>", "\n<Thread>\n2: yy\n</Thread>"]
    scripts = [root_text + head + "</Parallel>\nso 6", *threads]
    model, tok, r = scripted_run(None, scripts, protocol=ThreadWeaver(join=mode), workers=1)
    root, t1, t2 = r.workers
    assert [t1.head, t2.head] == ["\n<Thread>\n1:", "\n<Thread>\n2:"]
    n, goal = len(PROMPT), len(root_text)
    l1, l2 = (len(r.blocks[t.blocks[0]]) for t in (t1, t2))
    segments, block, own_offset = root.views[-1]
    assert segments[-2:] == (Segment(t1.blocks[0], l1, n + goal), Segment(t2.blocks[0], l2 - 1, n + goal + l1, 1))
    assert own_offset == n + goal + l1 + l2 - 1
    assert text(tok, r.blocks[root.blocks[1]]) == head + "</Parallel>\nso 6"
    check_exact_and_fed_once(model, r)


def test_threadweaver_rl_drops_duplicate_outline_ids():
    dup = "<Outlines>\n<Outline>1: a</Outline>\n<Outline>1: again</Outline>\n</Outlines>"
    assert len(ThreadWeaver("rl").scan(dup, 0, False, {})[0][0].heads) == 1
    assert len(ThreadWeaver("sft").scan(dup, 0, False, {})[0][0].heads) == 2
    with pytest.raises(ValueError, match="choose 'sft'"):
        ThreadWeaver("eval")


APR_PROMPT = "Moving to Node #0\nCurrent State: 10:[2, 3, 5], Operations: []"
APR_ROOT = ("\nExploring Operation: 2+3=5, Resulting Numbers: [5, 5]\nGenerated Node #0,0: 10:[5, 5] Operation: 2+3=5\n"
            "Exploring Operation: 3-2=1, Resulting Numbers: [5, 1]\nGenerated Node #0,1: 10:[5, 1] Operation: 3-2=1\n"
            "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0,0\n"
            "<Start Sub Search 1 at level 1> Moving to Node #0,1\n<End Calling Sub Searches>")
APR_C0 = ("Moving to Node #0,0\nCurrent State: 10:[5, 5], Operations: ['2+3=5']\nExploring Operation: 5+5=10, "
          "Resulting Numbers: [10]\n10,10 equal: Goal Reached\nMoving to Node #0,0\nCurrent State: 10:[5, 5], "
          "Operations: ['2+3=5']\nExploring Operation: 5+5=10, Resulting Numbers: [10]\n10,10 equal: Goal Reached\n")
APR_C1 = "Moving to Node #0,1\nCurrent State: 10:[5, 1], Operations: ['3-2=1']\nExploring Operation: 5*1=5\nNo solution found.\n"


def test_apr_children_start_fresh_and_the_parent_resumes_from_the_result_lines():
    results = ("<Sub Searches>\n<Goal Reached in Sub Search 0 at level 1 at Node #0,0>\n"
               + APR_C0[APR_C0.index("Goal Reached") + 13 :].strip() + "\n"
               "<No Solution in Sub Search 1 at level 1 at Node #0,1>\n<End Sub Searches>\n")
    before = APR_ROOT[: APR_ROOT.index("<Calling Sub Searches>")]
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=2048)
    tok = CharTokenizer()
    tok.bos_token_id = 2
    prompt = [2] + [ord(c) for c in APR_PROMPT]
    r = collab.generate(model, prompt, tokenizer=tok, strategy="apr", template=None, max_new_tokens=400, seed=0,
                        output_logits=True, logits_processor=[Script(len(prompt), [APR_ROOT + results + "10,10 equal: Goal Reached\n", APR_C0, APR_C1])])
    root, c0, c1 = r.workers
    assert [c0.head, c1.head] == [APR_C0.split("\nExploring")[0], APR_C1.split("\nExploring")[0]]
    for c in (c0, c1):  # a fresh context: the prompt's BOS, then the node's line
        segments, _, own_offset = c.views[0]
        assert segments == (Segment(0, 1, 0),) and own_offset == 1 and c.finish_reason == "eos"
    segments, block, own_offset = root.views[-1]
    context = "".join(text(tok, r.blocks[s.block][s.start : s.start + s.length]) for s in segments)
    context += text(tok, r.blocks[block][: len(results)])
    assert context == "\x02" + APR_PROMPT + before + results  # what APR's engine re-prefills
    assert c0.blocks[0] not in {s.block for s in segments}  # the children's traces are not in view
    assert text(tok, r.blocks[block]) == results + "10,10 equal: Goal Reached\n"  # only the result lines were fed
    check_exact_and_fed_once(model, r)


def test_apr_sub_search_at_an_unknown_node_is_malformed():
    call = "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0,7\n<End Calling Sub Searches>"
    actions, _ = APR().scan(call, 0, False, {"prompt": APR_PROMPT})
    assert len(actions) == 1 and "unknown node #0,7" in actions[0].reason


def test_parathinker_first_finish_cuts_the_other_paths_and_the_summary_sees_all():
    scripts = [SUMMARY + " 6.</summary>", "<think1>a 6</think1>", "<think2>b is 6 too, checked</think2>",
               "<think3>c 6, and so on and so forth</think3>"]
    model, tok, r = scripted_run("parathinker", scripts, workers=3)
    root, *paths = r.workers
    assert [p.head for p in paths] == ["<think1>", "<think2>", "<think3>"]
    assert all(p.views[0] == ((Segment(0, len(PROMPT), 0),), p.blocks[0], len(PROMPT)) for p in paths)
    assert [p.finish_reason for p in paths] == ["done marker '</think1>'", "cut", "cut"]
    lengths = [len(r.blocks[p.blocks[0]]) for p in paths]
    assert len(set(lengths)) == 1  # the paths advance together: each is cut at the first one's length
    segments, block, own_offset = root.views[0]  # the root's first token is the summary's
    assert segments[1:] == tuple(Segment(p.blocks[0], l, len(PROMPT)) for p, l in zip(paths, lengths))
    assert own_offset == len(PROMPT) + max(lengths)
    assert text(tok, r.blocks[root.blocks[-1]]).startswith(SUMMARY + " 6")
    assert root.finish_reason == "done marker '</summary>'"
    check_exact_and_fed_once(model, r)


def test_parathinker_runs_at_most_eight_paths():
    with pytest.raises(ValueError, match="at most 8 paths"):
        collab.generate(tiny_model(), [1, 2, 3], template=None, strategy="parathinker", workers=9, tokenizer=CharTokenizer())


def test_markers_helpers_run_beside_the_parent_and_join_on_wait():
    lead = "split. <spawn>find a</spawn><spawn>find b</spawn> I check. <wait>"
    scripts = [lead + "\nboth found. <done>", "\nHelper task: find a\na=1 <done>", "\nHelper task: find b\nb=2 <done>"]
    model, tok, r = scripted_run("adaptive", scripts, finisher=False)
    root, h1, h2 = r.workers
    assert [h1.head, h2.head] == ["\nHelper task: find a\n", "\nHelper task: find b\n"]
    assert h1.spawn_step < h2.spawn_step  # spawned as each marker closed, while the lead kept writing
    assert root.finish_reason.startswith("done marker") and root.join_steps
    segments, _, _ = root.views[-1]
    assert {h1.blocks[0], h2.blocks[0]} <= {s.block for s in segments}
    check_exact_and_fed_once(model, r)


@pytest.mark.parametrize("tag", ["<spawn>find a\nfind b</spawn>", "<spawn>\n find a \n\nfind b\n</spawn>"])
def test_one_markers_spawn_tag_with_a_task_per_line_starts_a_helper_per_line_together(tag):
    scripts = ["split. " + tag + " <wait>\nboth found. <done>", "\nHelper task: find a\na=1 <done>",
               "\nHelper task: find b\nb=2 <done>"]
    model, tok, r = scripted_run("adaptive", scripts, finisher=False)
    root, h1, h2 = r.workers
    assert [h1.head, h2.head] == ["\nHelper task: find a\n", "\nHelper task: find b\n"]
    assert h1.spawn_step == h2.spawn_step and h1.parent == h2.parent == root.index
    assert h1.views[0][0] == h2.views[0][0]  # the same parent prefix: the whole tag
    assert root.finish_reason.startswith("done marker")
    assert sorted(c for e in r.events if e.kind == "join" for c in e.info["children"]) == [h1.index, h2.index]
    check_exact_and_fed_once(model, r)


@pytest.mark.parametrize("ending, reason", [(" ok <done>", "done marker '<done>'"), (" ok", "eos")])
def test_a_helper_done_before_its_own_helpers_takes_them_in_first(ending, reason):
    """A helper writes <done> (or EOS) while its own helper still runs: it waits for it, joins
    it, then retires, so its parent's join sees the grandchild's work too (none left unjoined)."""
    lead = "plan. <spawn>part a</spawn> I wait. <wait>"
    scripts = [lead + "\ngot it. <done>", "\nHelper task: part a\nsplit <spawn>part a1</spawn>" + ending,
               "\nHelper task: part a1\na1 is 1, checked twice over. <done>"]
    model, tok, r = scripted_run("adaptive", scripts, finisher=False)
    root, helper, inner = r.workers
    assert helper.parent == root.index and inner.parent == helper.index
    kinds = [e.kind for e in r.events if e.worker == helper.index and e.kind in ("wait", "join", "done")]
    assert kinds == ["wait", "join", "done"] and helper.finish_reason == reason
    assert helper.retire_step >= inner.retire_step and helper.join_steps
    joins = [e.info["children"] for e in r.events if e.kind == "join"]
    assert joins == [[inner.index], [helper.index]]
    segments, _, _ = root.views[-1]
    assert {helper.blocks[0], inner.blocks[0]} <= {s.block for s in segments}
    assert text(tok, r.blocks[root.blocks[-1]]).startswith("\ngot it.")
    check_exact_and_fed_once(model, r)


def test_finisher_reads_everything_and_gives_the_answer():
    lead = "<spawn>add</spawn><wait>"
    scripts = [lead + "\nso the answer is 3 <done>", "\nHelper task: add\n1+2=3 <done>",
               "\n\nTime is up. Based on all the work above, the final answer is: 3"]
    model, tok, r = scripted_run("adaptive", scripts, finisher=True, finisher_tokens=8)
    fin = r.finisher
    assert fin is not None and r.answer == "3"
    segments, _, _ = fin.views[0]
    blocks = {s.block for s in segments}
    assert all(b in blocks for w in r.workers if w is not fin for b in w.blocks)
    check_exact_and_fed_once(model, r)


def test_skeleton_outline_points_then_join():
    outline = "1. first\n2. second\n\n"
    scripts = [outline + "\nCombining the points above, the answer is:\ndone", "Point 1: first\nA", "Point 2: second\nB"]
    model, tok, r = scripted_run("skeleton", scripts)
    assert [w.head for w in r.workers[1:]] == ["Point 1: first\n", "Point 2: second\n"]
    check_exact_and_fed_once(model, r)


def test_limits_hold_when_the_model_spawns_without_end():
    spawns = "".join(f"<spawn>t{i}</spawn>" for i in range(40))
    limits = {"max_workers": 6, "max_concurrent": 3, "max_depth": 1, "max_total_tokens": 600}

    class Endless(Script):
        def __call__(self, input_ids, scores):
            own = "".join(chr(i) for i in input_ids[0, self.prompt_len :].tolist())
            if own.startswith("\nHelper task:"):  # helpers try to spawn too (refused: depth)
                self.scripts = [own.split("\n", 2)[0] + "\n" + own.split("\n", 2)[1] + "\n" + spawns]
                return Script.__call__(self, input_ids, scores)
            self.scripts = [spawns]
            return Script.__call__(self, input_ids, scores)

    model = tiny_model(vocab_size=128, eos_token_id=3)
    r = collab.generate(
        model, PROMPT, tokenizer=CharTokenizer(), strategy="adaptive", workers=1, template=None, max_new_tokens=300,
        finisher=False, limits=limits, output_logits=True, logits_processor=[Endless(len(PROMPT), [])],
    )
    assert len(r.workers) <= 6 and max(w.depth for w in r.workers) <= 1
    per_step = {}
    for step, worker, *_, sampled in r.trace:
        if sampled and worker >= 0:
            per_step.setdefault(step, set()).add(worker)
    assert max(len(v) for v in per_step.values()) <= 3
    kinds = [e.kind for e in r.events]
    assert "refused" in kinds and r.stats.generated_tokens <= 600 + 3
    reasons = " ".join(e.info.get("reason", "") for e in r.events if e.kind == "refused")
    assert "limits.max_depth=1" in reasons and "limits.max_concurrent=3" in reasons
    assert r.complete


def test_malformed_markers_through_the_runtime_never_raise():
    scripts = ["<spawn></spawn> <spawn>a <spawn>b</spawn> <wait> <Goal> <spawn>" + "z" * 620 + " end"]
    model, tok, r = scripted_run("adaptive", scripts, finisher=False, max_new_tokens=700, context=1024)
    reasons = [e.info["reason"] for e in r.events if e.kind == "malformed"]
    assert any("empty" in x for x in reasons) and any("nested" in x for x in reasons)
    assert any("unclosed" in x for x in reasons) and any("no helpers" in x for x in reasons)
    assert len(r.workers) == 1 and r.complete


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(ValueError, match="valid strategies are 'hogwild', 'self_consistency', 'best_of_n'"):
        collab.generate(tiny_model(), [1, 2, 3], template=None, strategy="beam")


def test_best_of_n_needs_a_scorer():
    with pytest.raises(ValueError, match="needs scorer="):
        collab.generate(tiny_model(), [1, 2, 3], template=None, strategy="best_of_n")


def test_asyncthink_joins_one_worker_while_the_others_run():
    """The organizer forks two workers, keeps writing, joins worker 2 (done: at once) and then
    worker 1 (still running: it waits for that one only)."""
    root = "plan <FORK1>sum a long list</FORK1><FORK2>x</FORK2> meanwhile I think. <JOIN2>"
    scripts = [root + "\ngot 2. <JOIN1>\nall in.", "\n" + "1 + " * 60 + "1 = 61.", "\n2 ok"]

    class InOrder(Script):  # both workers start from the same head: each new one takes the next script
        def __call__(self, input_ids, scores):
            out = Script.__call__(self, input_ids, scores)
            if input_ids.shape[1] == self.prompt_len + 1 and int(input_ids[0, -1]) == ord("\n"):  # a worker's first token
                self.scripts = [self.scripts[0], *self.scripts[2:], self.scripts[1]]
            return out

    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=2048)
    tok = CharTokenizer()
    r = collab.generate(model, PROMPT, tokenizer=tok, strategy="asyncthink", template=None, max_new_tokens=400, seed=0,
                        output_logits=True, logits_processor=[InOrder(len(PROMPT), scripts)])
    org, w1, w2 = r.workers
    assert [w1.head, w2.head] == ["\n", "\n"] and w1.finish_reason == w2.finish_reason == "eos"
    n = len(PROMPT)
    assert w1.views[0][0] == (Segment(0, n, 0), Segment(org.blocks[0], root.index("<FORK2>"), n))  # through </FORK1>
    assert w1.spawn_step < w2.spawn_step < org.sample_steps[-1]
    joins = [e for e in r.events if e.kind == "join"]
    assert [e.info["children"] for e in joins] == [[w2.index], [w1.index]]  # one at a time, in the order asked
    assert joins[0].step < w1.retire_step  # worker 2 joined while worker 1 still ran
    waits = [e for e in r.events if e.kind == "wait" and e.worker == org.index]
    assert len(waits) == 1 and waits[0].step > w2.retire_step  # only <JOIN1> had to wait
    after_first = org.views[[s for s in org.sample_steps].index(next(s for s in org.sample_steps if s > joins[0].step))][0]
    assert w2.blocks[0] in {s.block for s in after_first} and w1.blocks[0] not in {s.block for s in after_first}
    assert {w1.blocks[0], w2.blocks[0]} <= {s.block for s in org.views[-1][0]}
    assert text(tok, r.blocks[org.blocks[-1]]) == "\nall in."
    check_exact_and_fed_once(model, r)


@pytest.mark.parametrize("text, reason", [
    ("<JOIN3>", "join of '3'"),
    ("<FORK1>a</FORK1><FORK1>b</FORK1>", "a second worker named '1'"),
    ("<FORK1> </FORK1>", "empty"),
])
def test_asyncthink_malformed_forks_and_joins(text, reason):
    from collab.controller import Controller, Limits
    c = Controller(AsyncThink(), Limits(**AsyncThink.limits))
    c.add(0, None)
    notes = [d for d in c.observe(0, text) if getattr(d, "kind", None) == "malformed"]
    assert notes and reason in notes[0].reason


def test_npr_steps_run_apart_and_the_takeaway_reads_them():
    guide = "<guideline>\n<plan>1: left</plan>\n<plan>2: right</plan>\n</guideline>"
    scripts = [guide + "<takeaway>\nboth 3\n</takeaway>\n\\boxed{3}", "\n<step>\n1: l=3\n</step>\n", "\n<step>\n2: r=3\n</step>\n"]
    model, tok, r = scripted_run("npr", scripts)
    root, s1, s2 = r.workers
    assert [s1.head, s2.head] == ["\n<step>\n1:", "\n<step>\n2:"]
    assert all(s.finish_reason == "done marker '</step>'" and text(tok, s.header_ids + s.token_ids).endswith("</step>\n") for s in (s1, s2))
    segments, block, _ = root.views[-1]
    seen = "".join(text(tok, r.blocks[s.block][s.start : s.start + s.length]) for s in segments[1:])
    assert seen == guide + scripts[1] + scripts[2][1:] and text(tok, r.blocks[block]).startswith("<takeaway>\n")
    check_exact_and_fed_once(model, r)
    many = "<guideline>" + "".join(f"<plan>{i}: p</plan>" for i in range(1, 7)) + "</guideline>"
    (done,) = NPR().scan(many, 0, False, {})[0]
    assert done.marker == "</guideline> with more than 5 plans"


# -- markers helpers blind to each other (the views collab.train teaches on) ----------------------
SIBLINGS = ["<spawn>t0</spawn><spawn>t1</spawn><wait>\n6<done>", "\nHelper task: t0\nabc<done>", "\nHelper task: t1\nxyz<done>"]


def helper_logits(result):
    return [torch.stack(w.logits) for w in result.workers[1:]]


def test_a_model_trained_on_depth_1_traces_has_its_helpers_spawns_refused():
    """An adapter's `collab_views.json` says its traces never nest: a helper's spawn marker is
    refused (a note, no worker) when the protocol comes by name; a `limits=` the caller passes wins."""
    lead = "plan. <spawn>part a</spawn> I wait. <wait>"
    scripts = [lead + "\ngot it. <done>", "\nHelper task: part a\nsplit <spawn>part a1</spawn> a is 1 <done>",
               "\nHelper task: part a1\na1 is 1 <done>"]
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=1024)
    model.collab_views = {"protocol": "markers", "siblings": False, "max_depth": 1}
    run = dict(tokenizer=CharTokenizer(), strategy="adaptive", template=None, seed=0, finisher=False, max_new_tokens=120)
    capped = collab.generate(model, PROMPT, logits_processor=[Script(len(PROMPT), scripts)], **run)
    assert len(capped.workers) == 2 and capped.workers[1].finish_reason.startswith("done marker")
    assert [e.info["reason"] for e in capped.events if e.kind == "refused"] == ["nesting depth 2 exceeds limits.max_depth=1"]
    deeper = collab.generate(model, PROMPT, logits_processor=[Script(len(PROMPT), scripts)], limits={"max_depth": 2}, **run)
    assert len(deeper.workers) == 3


def test_markers_siblings_off_hides_helpers_from_each_other_and_stays_exact():
    from collab.protocols import Markers

    kw = dict(finisher=False, max_new_tokens=64)
    _, _, seen = scripted_run("adaptive", SIBLINGS, visibility="full", **kw)
    model, _, blind = scripted_run("adaptive", SIBLINGS, visibility="full", protocol=Markers(siblings=False), **kw)
    _, _, none = scripted_run("adaptive", SIBLINGS, visibility="none", **kw)
    assert [w.text for w in blind.workers] == [w.text for w in seen.workers] and len(blind.workers) == 3
    check_exact_and_fed_once(model, blind)
    # one root: hiding the siblings is what visibility "none" does to them, logit for logit
    assert all(torch.equal(a, b) for a, b in zip(helper_logits(blind), helper_logits(none)))
    assert not all(torch.equal(a, b) for a, b in zip(helper_logits(blind), helper_logits(seen)))
    assert repr(Markers(siblings=False)) == "Markers(siblings=False)"
    with pytest.raises(TypeError, match="siblings='no'"):
        Markers(siblings="no")


def test_a_trained_adapter_brings_its_views_to_a_protocol_named_by_strategy():
    from collab.models import trained_protocol
    from collab.protocols import Markers

    class Model:
        collab_views = {"protocol": "markers", "siblings": False, "max_depth": 1}

    chosen = trained_protocol(Model(), "markers")
    assert isinstance(chosen, Markers) and chosen.siblings_visible is False
    assert chosen.limits["max_depth"] == 1 and Markers.limits.get("max_depth") != 1  # the instance's, not the class's
    assert trained_protocol(Model(), Markers(siblings=True)) is None  # a configured instance stays as given
    assert trained_protocol(Model(), "multiverse") is None and trained_protocol(object(), "markers") is None
