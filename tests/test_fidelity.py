"""Fidelity to the reference engines: each trace in ../shared/fidelity/traces is replayed through
the real runtime with its text forced, and every worker's materialized context (the tokens of its
view, in view order, then its own block) must equal, byte for byte, the context the format's own
engine gives the model at the same point:

- each child at its first sampled token (the engine's child prompt);
- each parent at its first sampled token after every join (the engine's rebuilt context);
- the root at its last token (the engine's final text);

with the same number of children and the same heads at every fork.

The reference contexts are rebuilt here from each engine's rules (Multiverse-Engine's SGLang
scheduler, ThreadWeaver's SFT evaluation and RL agent loop, APR's eval driver, ParaThinker's vLLM
fork), from the trace text alone; none of collab's protocol code is used to build them. A
tokenizer built from the traces' own pieces (words, spaces, single other characters) decodes back
to the exact text, so the check is on exact bytes. The traces are read in place and skipped when absent.

What is compared is text, in view order; positions (Multiverse's and ParaThinker's overlapping
paths) are not. Known departures, kept out of the references on purpose: ParaThinker's engine pads
a finished path with `<vllm_pad>` to its KV block size (collab does not; see `parathinker_case`),
and APR's engine prepends the *string* "<s>" (one BOS token here). Every trace is replayed whole
(about 30 s for the file on 2 cores).
"""

from __future__ import annotations

import ast
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import collab
from collab.protocols import ThreadWeaver
from conftest import tiny_model

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "fidelity" / "traces"
if not TRACES.is_dir():
    pytest.skip(f"no reference traces at {TRACES}", allow_module_level=True)

PAD, BOS, EOS = 0, 1, 3
BOS_TEXT = "<s>"  # what APR's engine writes before every prompt (the Llama-2 tokenizer's bos_token)


# -- text <-> tokens ------------------------------------------------------------------------------
# Words with their leading space, every other character alone: about a third of the tokens of a
# character tokenizer (the runs are one decode step per token), and every marker, head and join
# text starts and ends on a token boundary, so encode(a + b) == encode(a) + encode(b) wherever the
# runtime joins texts (a head and what follows it, a fed join text and what precedes it).
PIECES = re.compile(r" ?\w+| ?[^\w\s]|\s")


def pieces(text: str) -> list[str]:
    return PIECES.findall(text)


class Pieces:
    """One token per piece of `pieces` (ids from 4; the vocabulary is every piece of `texts`),
    BOS = 1 (decoded "<s>"), EOS = 3. decode(encode(t)) == t."""

    eos_token_id = EOS
    bos_token_id = BOS

    def __init__(self, texts):
        vocab = sorted({p for t in texts for p in pieces(t)})
        self.id = {p: i + 4 for i, p in enumerate(vocab)}
        self.piece = {i: p for p, i in self.id.items()}
        self.vocab_size = len(vocab) + 4

    def encode(self, text: str) -> list[int]:
        return [self.id[p] for p in pieces(text)]

    def __call__(self, text, add_special_tokens=False):
        return SimpleNamespace(input_ids=self.encode(text))

    def decode(self, ids, skip_special_tokens=False):
        special = {BOS: BOS_TEXT, EOS: "</s>", PAD: "<pad>"}
        return "".join(("" if skip_special_tokens else special[i]) if i in special else self.piece[i] for i in ids)


class Force:
    """Forces each worker's own stream (prompt excluded: its heads, sampled tokens and the join
    texts fed to it) to follow the script it is a prefix of; EOS at a script's end.

    Several workers may start alike (Multiverse's sequential forks all have paths `1`, `2`): a
    script counts as used once a stream has reached its last token, and unused scripts are
    preferred, so the k-th path `1` follows the k-th script that starts with `\\n<Path>\\n1:`."""

    def __init__(self, prompt_len: int, scripts: list[list[int]]):
        self.n = prompt_len
        self.scripts = [torch.tensor(s, dtype=torch.long) for s in scripts]
        self.used: set[int] = set()

    def __call__(self, input_ids, scores):
        own = input_ids[0, self.n :]
        k = own.numel()
        pick = fallback = None
        for i, s in enumerate(self.scripts):
            if s.numel() > k and torch.equal(s[:k], own):
                if i not in self.used:
                    pick = i
                    break
                if fallback is None:
                    fallback = i
        pick = fallback if pick is None else pick
        target = EOS if pick is None else int(self.scripts[pick][k])
        if pick is not None and k + 1 >= self.scripts[pick].numel():
            self.used.add(pick)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, target] = 0.0
        return forced


# -- what each engine's model sees: a tree of workers --------------------------------------------
@dataclass
class Node:
    script: str  # the worker's own stream (head, what it writes, what it is fed)
    start: str | None = None  # its context at its first sampled token (children)
    head: str | None = None
    forks: list["Fork"] = field(default_factory=list)
    reason: str = "eos"  # why the engine ends it


@dataclass
class Fork:
    children: list[Node]
    joined: str  # the parent's context at its first sampled token after the join


@dataclass
class Case:
    prompt: str  # the prompt's text (raw mode: template=None)
    bos: bool  # the prompt starts with the BOS token (APR; its reference texts then start with "<s>")
    root: Node
    final: str  # the engine's final text: the root's context after its last token
    protocol: object
    workers: int = 1
    note: str = ""


def _count(node: Node) -> int:
    return 1 + sum(_count(c) for f in node.forks for c in f.children)


def _scripts(node: Node) -> list[str]:
    out = [node.script]
    for f in node.forks:
        for c in f.children:
            out += _scripts(c)
    return out


# Multiverse-Engine (Swapnil-Gandhi/Multiverse-Engine, schedule_batch.py `check_finished`,
# `filter_batch`; scheduler.py `merge_zombie_batch_to_run`).
OUTLINE_RE = re.compile(r"<Outline>\s*([0-9]+(?:\.[0-9]+)*)\s*:")
CONCLUSION = "<Conclusion>\n"
DONE_PATH = "done marker '</Path>'"


def multiverse_case(full: str, plen: int) -> Case:
    """`full` = prompt + the engine's output text. Replays the engine over it: at `</Goal>` one
    child per outline id, context = the forking request's own context through `</Goal>` + the
    head `\\n<Path>\\n{id}:`; a child ends one token after `</Path>` (kept); the parent continues
    from child 0's whole context + each later child's context from its `<Path>` token (its
    leading newline dropped) + `<Conclusion>\\n`."""

    def run(ctx: str, own: str, pos: int, child: bool):
        forks = []
        while True:
            g = full.find("</Goal>", pos)
            p = full.find("</Path>", pos) if child else -1
            if p != -1 and (g == -1 or p < g):  # this path ends (the caller adds the kept token)
                end = p + len("</Path>")
                return ctx + full[pos:end], own + full[pos:end], end, forks
            if g == -1:
                return ctx + full[pos:], own + full[pos:], len(full), forks
            goal_end = g + len("</Goal>")
            ctx, own, pos = ctx + full[pos:goal_end], own + full[pos:goal_end], goal_end
            ids = OUTLINE_RE.findall(ctx[ctx.rfind("<Goal>") :])
            children, contexts, cur = [], [], goal_end
            for i, n in enumerate(ids):
                head = f"\n<Path>\n{n}:"
                shown = head if i == 0 else head[1:]  # later paths are linearised from `<Path>`
                assert full.startswith(shown, cur), (cur, full[cur : cur + 40])
                c_ctx, c_own, end, c_forks = run(ctx + head, head, cur + len(shown), True)
                nxt = f"<Path>\n{ids[i + 1]}:" if i + 1 < len(ids) else CONCLUSION
                k = full.find(nxt, end)
                kept = full[end:k]  # the one token the engine keeps after `</Path>`
                assert k != -1 and len(pieces(kept)) == 1, (end, full[end : end + 30])
                children.append(Node(c_own + kept, start=ctx + head, head=head, forks=c_forks, reason=DONE_PATH))
                contexts.append(c_ctx + kept)
                cur = k
            assert full.startswith(CONCLUSION, cur)
            for c in contexts[1:]:
                assert c.startswith(ctx + "\n<Path>")
            joined = contexts[0] + "".join(c[len(ctx) + 1 :] for c in contexts[1:]) + CONCLUSION
            forks.append(Fork(children, joined))
            ctx, own, pos = joined, own + CONCLUSION, cur + len(CONCLUSION)

    final, own, _, forks = run(full[:plen], "", plen, False)
    assert final == full  # the engine's output is the linearised tree
    note = f"{len(list(_forks(forks)))} forks, {_depth(forks)} level(s)"
    return Case(full[:plen], False, Node(own, forks=forks), final, "multiverse", note=note)


def _forks(forks):
    for f in forks:
        yield f
        for c in f.children:
            yield from _forks(c.forks)


def _depth(forks) -> int:
    """Levels of forks (1: none inside a path)."""
    return max((1 + max((_depth(c.forks) for c in f.children), default=0) for f in forks), default=0)


def multiverse_xml(name: str) -> Case:
    text = (TRACES / name).read_text(encoding="utf-8")
    prompt = "<|im_start|>assistant\n"  # the site's traces are the output only; any prompt will do
    return multiverse_case(prompt + text, len(prompt))


def multiverse_engine_txt(name: str) -> Case:
    raw = (TRACES / name).read_text(encoding="utf-8")
    full = raw[raw.index("模型解答: ") + len("模型解答: ") : raw.index("\n\n提取的答案")]  # prompt + output
    plen = full.index("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    return multiverse_case(full, plen)


# ThreadWeaver (facebookresearch/threadweaver: threadweaver_sft/src/simple_eval.py
# `branching_generate`; threadweaver_rl/.../single_turn_agent_loop.py, no_conclusion=False).
def threadweaver_case(name: str) -> Case:
    d = json.loads((TRACES / name).read_text(encoding="utf-8"))
    prompt, resp = d["prompt"], d["response"]  # the chat prefix is not in the trace: the question stands for it
    rl = d["join"] == "agent_loop_conclusion"
    join_text = "\n<Conclusion>\n" if rl else "\n"
    fork = resp.index("</Outlines>") + len("</Outlines>")
    parent = prompt + resp[:fork]
    ids = OUTLINE_RE.findall(resp[resp.rfind("<Outlines>", 0, fork) : fork])
    if rl:
        ids = list(dict.fromkeys(ids))
    children, blocks, cur = [], [], fork
    for i, n in enumerate(ids):
        head = f"\n<Thread>\n{n}:"
        shown = head if i == 0 else head[1:]  # merged as `</Thread><Thread>`
        assert resp.startswith(shown, cur)
        end = resp.index("</Thread>", cur) + len("</Thread>")
        written = resp[cur + len(shown) : end]
        children.append(Node(head + written, start=parent + head, head=head, reason="done marker '</Thread>'"))
        blocks.append(shown + written)
        cur = end
    assert resp.startswith(join_text, cur)
    joined = parent + "".join(blocks) + join_text
    root = Node(resp[:fork] + join_text + resp[cur + len(join_text) :], forks=[Fork(children, joined)])
    return Case(prompt, False, root, prompt + resp, ThreadWeaver(join="rl") if rl else "threadweaver",
                note=f"{'RL' if rl else 'SFT'} join")


# APR (Parallel-Reasoning/APR: src/eval/eval_apr.py `get_prefix`, `generate`, `decode_trace`,
# `call_search`; src/eval/parallel_infernce_utils.py).
def _apr_nodes(text: str) -> dict[str, dict]:
    nodes, lines = {}, text.split("\n")
    for line, state in zip(lines, lines[1:]):
        if "Moving to Node #" in line and "Current State:" in state:
            nid = line.split("Moving to Node #")[1].strip()
            numbers = state.split("Current State:")[1].split("],")[0].strip()
            nodes[nid] = {"node": f"#{nid}", "target": int(numbers.split(":")[0]),
                          "nums": ast.literal_eval(numbers.split(":")[1].strip() + "]"),
                          "operations": ast.literal_eval(state.split("Operations:")[1].strip())}
    for line in lines:
        if "Generated Node" in line:
            nid = line.split(":")[0].split("#")[1]
            if nid in nodes:
                continue
            rest = line.split(":", 1)[1].strip()
            numbers, op = rest.split("Operation:")[0].strip(), rest.split("Operation:")[1].strip()
            parent = nodes[",".join(nid.split(",")[:-1])]
            nodes[nid] = {"node": f"#{nid}", "target": int(numbers.split(":")[0]),
                          "nums": ast.literal_eval(numbers.split(":")[1].strip()),
                          "operations": parent["operations"] + [op]}
    return nodes


def _apr_result(child_text: str) -> str | None:
    if child_text.count("Goal Reached") < 2:
        return None
    at = [k for k in range(len(child_text)) if child_text.startswith("Goal Reached", k)][-2]
    return child_text[at:].strip()[13:]


def apr_case(name: str) -> Case:
    d = json.loads((TRACES / name).read_text(encoding="utf-8"))
    calls, subs = d["trace_dict"]["main_calls"], d["trace_dict"]["sub_calls"]
    prompt = f"Moving to Node #0\nCurrent State: {d['target']}:{d['nums']}, Operations: []"
    first = calls[0]
    assert first.startswith(prompt + "\n") and len(subs) == 1  # one round of sub-searches
    parent_text = first[:-1] if first.split("\n")[-1] == "" else first  # decode_trace drops one "\n"
    assert "<End Calling Sub Searches>" in parent_text.split("\n")[-1]
    nodes = _apr_nodes(parent_text)
    section = parent_text.split("<Calling Sub Searches>\n")[-1].split("\n<End Calling Sub Searches>")[0]
    called = [nodes[line.split("Moving to Node #")[1].strip()] for line in section.split("\n")
              if "<Start Sub Search" in line and "Moving to Node" in line]
    children = []
    for node, sub in zip(called, subs[0], strict=True):
        head = (f"Moving to Node {node['node']}\nCurrent State: {node['target']}:"
                f"[{', '.join(map(str, node['nums']))}], Operations: {node['operations']}")
        text = sub["main_calls"][0]  # the child's prompt + what it wrote (to its EOS)
        assert text.startswith(head)
        children.append(Node(text, start=BOS_TEXT + head, head=head))
    before = "<Calling Sub Searches>\n".join(parent_text.split("<Calling Sub Searches>\n")[:-1])
    fed = "<Sub Searches>\n"
    for i, (node, child) in enumerate(zip(called, children)):
        found = _apr_result(child.script)
        if found is None:
            fed += f"<No Solution in Sub Search {i} at level 1 at Node {node['node']}>\n"
        else:
            fed += f"<Goal Reached in Sub Search {i} at level 1 at Node {node['node']}>\n{found}\n"
    fed += "<End Sub Searches>\n"
    resumed = before + fed  # the parent's next request (then "<s>" + it is sent)
    assert calls[1].startswith(resumed)
    written = parent_text[len(prompt) :]  # the root wrote its call block, then paused
    root = Node(written + fed + calls[1][len(resumed) :], forks=[Fork(children, BOS_TEXT + resumed)])
    return Case(prompt, True, root, BOS_TEXT + calls[1], "apr",
                note=f"{len(children)} sub-searches, {sum(_apr_result(c.script) is not None for c in children)} found")


# ParaThinker (LeslieKid/vllm-parathinker: examples/parathinker/example.py, single_step.py,
# stop_checker.py, sequence.py `is_think_stage_finished`).
SUMMARY = "<summary>By analyzing multiple reasoning processes above, I concluded that: The final answer is"


def parathinker_case(name: str, pad_to: int = 1) -> Case:
    """Paths `<think{i}>` straight after the prompt; all advance one token a step; the first to
    end (`</think{i}>`, then padded to a multiple of `pad_to` tokens) ends thinking, the others
    are cut at the same length; the summary sees the prompt, every path in order, then the forced
    summary prefix. collab does not write the engine's `<vllm_pad>` tokens (its protocol says so):
    the reference is built with pad_to=1, the engine's rule for a KV block size of one token."""
    d = json.loads((TRACES / name).read_text(encoding="utf-8"))
    prompt = d["prompt"]
    assert d["summary_template"] == SUMMARY
    whole = [f"<think{i}>{p}</think{i}>" for i, p in enumerate(d["paths"], 1)]
    tokens = [pieces(w) for w in whole]  # the paths in tokens (see `Pieces`)
    n = min(len(t) for t in tokens)  # the first path to end; all advance in lockstep
    length = -(-n // pad_to) * pad_to
    blocks = ["".join(t) + "<vllm_pad>" * (length - n) if len(t) == n else "".join(t[:length]) for t in tokens]
    children = [Node(w, start=prompt + f"<think{i}>", head=f"<think{i}>",
                     reason=f"done marker '</think{i}>'" if len(t) == n else "cut")
                for i, (w, t) in enumerate(zip(whole, tokens), 1)]
    summary = prompt + "".join(blocks) + SUMMARY
    root = Node(SUMMARY + d["summary_continuation"], forks=[Fork(children, summary)], reason="done marker '</summary>'")
    return Case(prompt, False, root, summary + d["summary_continuation"], "parathinker", workers=len(whole),
                note=f"path blocks of {length} tokens")


# -- the runtime's side --------------------------------------------------------------------------
def replay(case: Case, tok: Pieces):
    prompt_ids = [BOS] * case.bos + tok.encode(case.prompt)
    for node in _walk(case.root):  # the runtime encodes heads alone: scripts must split there
        if node.head is not None:
            assert tok.encode(node.script)[: len(tok.encode(node.head))] == tok.encode(node.head)
    strategy = case.protocol if isinstance(case.protocol, str) else case.protocol.name
    scripts = [tok.encode(s) for s in _scripts(case.root)]
    longest = max(len(s) for s in scripts) + 2
    model = tiny_model(vocab_size=tok.vocab_size, eos_token_id=EOS, layers=1, hidden_size=32, intermediate_size=32,
                       max_position_embeddings=len(prompt_ids) + len(case.final) + longest + 64)
    return collab.generate(
        model, prompt_ids, tokenizer=tok, strategy=strategy, protocol=case.protocol, workers=case.workers, template=None,
        max_new_tokens=longest, output_logits=True, seed=0, progress=False, page_size=256,
        logits_processor=[Force(len(prompt_ids), scripts)],
    )


class Contexts:
    """Materialized contexts of one worker: at its j-th sampled token, the tokens of each segment
    of its view (`worker.views[j]`), in list order, then its own block's tokens fed before it."""

    def __init__(self, result, tok: Pieces, w):
        self.result, self.tok, self.w = result, tok, w
        self.owned = [(b, t) for b in w.blocks for t in result.blocks[b]]  # in feed order
        assert len(self.owned) == len(w.feed_steps)
        assert len(w.views) == len(w.sample_steps) == len(w.token_ids)

    def __len__(self):
        return len(self.w.views)

    def block(self, j: int) -> int:
        return self.w.views[j][1]

    def __getitem__(self, j: int) -> str:
        segments, block, _ = self.w.views[j]
        step, blocks = self.w.sample_steps[j], self.result.blocks
        ids = [t for seg in segments for t in blocks[seg.block][seg.start : seg.start + seg.length]]
        ids += [t for (b, t), fed in zip(self.owned, self.w.feed_steps) if b == block and fed <= step]
        return self.tok.decode(ids)


def _diff(got: str, want: str) -> str:
    k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return (f"first difference at character {k} of {len(want)} (got {len(got)}):\n"
            f"  collab:    {got[max(0, k - 60) : k + 60]!r}\n  reference: {want[max(0, k - 60) : k + 60]!r}")


def check(result, tok: Pieces, node: Node, w, where: str, seen: list) -> None:
    ctx = Contexts(result, tok, w)
    assert w.finish_reason == node.reason, f"{where}: ended by {w.finish_reason!r}, the engine's ends by {node.reason!r}"
    if node.start is not None:
        assert len(ctx), f"{where}: sampled nothing"
        assert ctx[0] == node.start, f"{where}: child context at its first token\n" + _diff(ctx[0], node.start)
        seen.append(f"{where} start")
    spawns = [e for e in result.events if e.kind == "spawn" and e.worker == w.index]
    assert len(spawns) == len(node.forks), f"{where}: {len(spawns)} forks, the engine makes {len(node.forks)}"
    for k, (event, fork) in enumerate(zip(spawns, node.forks)):
        heads = [c.head for c in fork.children]
        assert event.info["heads"] == heads, f"{where} fork {k}: heads"
        for j, (index, child) in enumerate(zip(event.info["children"], fork.children, strict=True)):
            check(result, tok, child, result.workers[index], f"{where}.{k}.{j}", seen)
        assert len(w.blocks) > k + 1, f"{where} fork {k}: never joined"
        after = next((j for j in range(len(ctx)) if ctx.block(j) == w.blocks[k + 1]), None)
        assert after is not None, f"{where} fork {k}: sampled nothing after the join"
        got = ctx[after]
        assert got == fork.joined, f"{where} fork {k}: parent context after the join\n" + _diff(got, fork.joined)
        seen.append(f"{where} join {k}")


def tokenizer(case: Case) -> Pieces:
    texts = [case.prompt, case.final, *_scripts(case.root)]
    return Pieces(texts + [n.start for n in _walk(case.root) if n.start] + [f.joined for n in _walk(case.root) for f in n.forks])


def run_case(case: Case) -> list[str]:
    tok = tokenizer(case)
    result = replay(case, tok)
    assert result.complete
    assert len(result.workers) == _count(case.root), [w.finish_reason for w in result.workers]
    assert not [e for e in result.events if e.kind in ("refused", "malformed")]
    seen: list[str] = []
    root = result.workers[0]
    check(result, tok, case.root, root, "root", seen)
    ctx = Contexts(result, tok, root)
    last = ctx[len(ctx) - 1] + tok.decode([root.token_ids[-1]], skip_special_tokens=True)
    assert last == case.final, "root's final context\n" + _diff(last, case.final)
    return seen


def _walk(node: Node):
    yield node
    for f in node.forks:
        for c in f.children:
            yield from _walk(c)


# -- the traces -------------------------------------------------------------------------------
CASES = {
    "multiverse_engine_math500_prealgebra_1458": lambda: multiverse_engine_txt("multiverse_engine_math500_prealgebra_1458.txt"),
    "multiverse_site_4": lambda: multiverse_xml("multiverse_site_4.xml"),
    "multiverse_site_5": lambda: multiverse_xml("multiverse_site_5.xml"),
    "multiverse_site_16": lambda: multiverse_xml("multiverse_site_16.xml"),
    "multiverse_site_19": lambda: multiverse_xml("multiverse_site_19.xml"),
    "threadweaver_site_format": lambda: threadweaver_case("threadweaver_site_format.json"),
    "threadweaver_conclusion": lambda: threadweaver_case("threadweaver_conclusion.json"),
    "apr_countdown_43": lambda: apr_case("apr_countdown_43.json"),
    "apr_countdown_89": lambda: apr_case("apr_countdown_89.json"),
    "parathinker_constructed": lambda: parathinker_case("parathinker_constructed.json"),
}


@pytest.fixture(autouse=True)
def one_thread():
    """The model is tiny: one thread is fastest, and OpenMP threads that spin-wait make every
    small matmul ~300x slower when another process shares the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(CASES))
def test_trace_contexts_equal_the_reference_engine(name):
    case = CASES[name]()
    t0 = time.perf_counter()
    seen = run_case(case)
    print(f"{name}: {len(seen)} contexts equal ({case.note}) in {time.perf_counter() - t0:.1f}s")


def test_a_roots_first_token_is_recorded_with_the_prompt_as_its_view():
    case = CASES["threadweaver_site_format"]()
    tok = tokenizer(case)
    result = replay(case, tok)
    root = result.workers[0]
    assert root.sample_steps[0] == 0  # sampled from the prefill's logits: conditioned on the whole prompt
    assert Contexts(result, tok, root)[0] == case.prompt
