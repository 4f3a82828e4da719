"""Soak: thousands of spawn/retire cycles, checking that KV pages are reused and that resident
memory stays flat instead of growing with the number of cycles. Each test prints what it
measured, so CI logs show the growth. Sized for CI: about half a minute in all on one thread.

Where pages can be reused: inside one protocol run nothing is freed (every fed token stays in
some worker's view: a joined child in its parent's trail, a retired helper beside its siblings),
so a long protocol run holds KV in proportion to its tokens by design. Blocks are freed, and
their pages handed out again, when a search prunes forks (`Run.collect`) and when a step moves
into the shared history. Across runs, each run's arena must be released with the run.
"""

from __future__ import annotations

import gc

import pytest
from scripted import EOS, CharTokenizer, Script

import collab
from collab.protocols.parallel_r1 import ParallelR1
from conftest import tiny_model

pytestmark = pytest.mark.soak

PROMPT = "Q: 1+2?\n"
MB = 2**20


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def page_bytes(model, page_size: int) -> int:
    """Arena bytes one page takes over all layers (keys and values, fp32)."""
    c = model.config
    return c.num_hidden_layers * 2 * c.num_key_value_heads * page_size * c.head_dim * 4


def test_soak_short_runs_with_spawn_join_cycles_release_their_memory():
    """125 Parallel-R1 runs on one model, 16 paths each: 2,000 spawn/done/join cycles through
    the controller and the runtime. Every run reserves the same arena (nothing carried over
    from the runs before), and resident memory stays flat once the first runs have warmed up."""
    paths, runs = 16, 125
    model = tiny_model(vocab_size=128, eos_token_id=EOS)
    attention = model.config._attn_implementation
    scripts = ["<Parallel></Parallel>\n<Summary>ok", "<Path>x</Path>"]

    def run():
        return collab.generate(
            model, PROMPT, tokenizer=CharTokenizer(), template=None, protocol=ParallelR1(paths=paths), workers=1,
            limits=collab.Limits(max_concurrent=paths, max_workers=paths + 1), max_new_tokens=16, page_size=4,
            seed=0, progress=False, logits_processor=[Script(len(PROMPT), scripts)],
        )

    reserved, cycles = set(), 0
    for k in range(runs):
        result = run()
        joined = {c for e in result.events if e.kind == "join" for c in e.info["children"]}
        cycles += sum(w.index in joined and w.finish_reason.startswith("done marker") for w in result.workers)
        reserved.add(result.stats.kv_reserved_bytes)
        if k == 10:  # allocator pools and lazy imports have settled
            gc.collect()
            start = rss()
    gc.collect()
    growth = rss() - start
    print(f"\nsoak runs: {runs} runs, {cycles} spawn/done/join cycles; arena per run {sorted(reserved)} bytes; "
          f"RSS growth over the last {runs - 11} runs {growth / MB:.1f} MiB")
    assert cycles == runs * paths, "every path spawned, ended at its marker and was joined"
    assert len(reserved) == 1, f"the arena a run reserves changed from run to run: {sorted(reserved)}"
    assert growth < 8 * MB, f"resident memory grew {growth / MB:.1f} MiB over {runs - 11} identical runs"
    assert model.config._attn_implementation == attention


def mcts_forks(model, forks: int, callback=None):
    """One MCTS run whose every fork is a leaf (max_depth=1): forked from the root 8 at a time,
    3 tokens each, scored, then pruned and its block freed; `forks` spawn/retire cycles."""
    search = dict(branching=forks, width=8, max_depth=1, step_tokens=3, max_tokens=10**6)
    return collab.generate(
        model, PROMPT, tokenizer=CharTokenizer(), template=None, strategy="mcts", scorer=lambda text: 0.5,
        search=search, max_new_tokens=8, page_size=4, seed=0, progress=False, callback=callback,
    )


def test_soak_search_forks_reuse_kv_pages():
    """2,000 forks each open a block of their own; pruning frees it. The arena stays at a few
    pages (what one round's forks hold, doubled at most) instead of growing with the forks."""
    model = tiny_model(vocab_size=128, eos_token_id=EOS)
    result = mcts_forks(model, 2000)
    forks = sum(w.fork_of is not None for w in result.workers)
    opened = sum(len(w.blocks) for w in result.workers)
    reserved = result.stats.kv_reserved_bytes // page_bytes(model, 4)
    live = max(pages for _, _, pages in result.search.memory)
    need = 2 + 8 * 1  # the prompt's 2 pages, and one page for each of a round's 8 forks
    print(f"\nsoak search: {forks} forks opened {opened} blocks; arena {reserved} pages "
          f"({result.stats.kv_reserved_bytes} bytes); at most {live} pages in use after a round")
    assert forks == 2000 and opened >= forks
    assert result.search.memory[-1][1] == len(result.prompt_ids)  # only the prompt's KV is left
    assert reserved <= 2 * need, f"{reserved} pages reserved for {forks} forks: freed pages were not reused"


def test_soak_search_forks_keep_resident_memory_flat():
    """800 forks on a model with a 64k vocabulary: resident memory, sampled as the run goes,
    grows by what the result records per fork (a few KiB), not by a logits row per fork."""
    model = tiny_model(vocab_size=65536, eos_token_id=EOS)
    samples = []  # (workers so far, RSS)

    def sample(update):
        if update.step % 10 == 0:
            samples.append((len(update.result.workers), rss()))

    mcts_forks(model, 40)  # warm up
    gc.collect()
    mcts_forks(model, 800, callback=sample)
    (w0, r0), (w1, r1) = samples[len(samples) // 10], samples[-1]  # after the first rounds warmed up
    per_fork = (r1 - r0) / (w1 - w0)
    print(f"\nsoak search memory: RSS {r0 / MB:.1f} -> {r1 / MB:.1f} MiB over {w1 - w0} forks: "
          f"{per_fork / 1024:.1f} KiB per fork (a logits row is {65536 * 4 // 1024} KiB)")
    assert per_fork < 32 * 1024, f"{per_fork / 1024:.1f} KiB of resident memory per fork"
