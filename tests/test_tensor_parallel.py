"""A model sharded by transformers' tensor parallelism (`tp_plan="auto"`) under `torchrun
--nproc-per-node 2` (gloo, CPU) runs under collab as in one process: the same tokens on both
ranks as without tensor parallelism, greedy and sampled, "full" and "none", and a protocol that
spawns; each rank's arena holds its share of the KV heads; only rank 0 reports. The refusals
(`device_map` with TP, a family without a plan, heads that do not split) are rows of
docs/reliability.md, checked by tests/test_limits.py."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from tensor_parallel_runs import runs
from test_eval_processes import save_tiny_model, tool

import collab
from collab.__main__ import main as cli

RUNS = Path(__file__).with_name("tensor_parallel_runs.py")
CLI = ["What is 2 + 3?", "--model", "./tiny", "--workers", "2", "--max-new-tokens", "12", "--seed", "0", "--no-progress"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The runs of tests/tensor_parallel_runs.py on each rank of a 2-process launch, and the
    command line's output, launched the way docs/scaling.md says."""
    folder = tmp_path_factory.mktemp("tp")
    save_tiny_model(folder / "tiny")  # 4 query heads over 2 KV heads: one KV head per rank
    (folder / "out").mkdir()
    torchrun = [tool("torchrun"), "--standalone", "--nproc-per-node", "2"]
    launch([*torchrun, str(RUNS), "./tiny", "out"], folder)
    ranks = [json.loads((folder / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    printed = launch([*torchrun, "-m", "collab", *CLI, "--tp"], folder)
    return folder, ranks, printed


@pytest.fixture(scope="module")
def one(launched):
    """The same runs in this process, the whole model loaded (the seed rank 0 drew for "sampled-none")."""
    folder, (rank0, _), _ = launched
    model, tokenizer = collab.load(str(folder / "tiny"))
    return runs(model, tokenizer, drawn_seed=rank0["sampled-none"]["seed"])


def launch(command, cwd) -> str:
    """The command's stdout; it must succeed."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env |= {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def tokens(run):
    return {k: run[k] for k in ("workers", "events", "seed", "kv_tokens")}


def test_tensor_parallel_ranks_give_the_tokens_of_one_process(launched, one):
    _, (rank0, rank1), _ = launched
    assert rank0["tp_size"] == rank1["tp_size"] == 2
    names = ["greedy-full", "greedy-none", "sampled-full", "sampled-none", "skewed", "spawning"]
    for name in names:
        assert tokens(rank0[name]) == tokens(rank1[name]) == tokens(one[name]), name
    spawning = one["spawning"]
    assert [w[1] for w in spawning["workers"]] == [None, 0, 0]  # the root spawned two helpers
    assert [e[0] for e in spawning["events"]].count("join") == 1
    assert one["sampled-full"]["workers"] != one["greedy-full"]["workers"]
    assert one["skewed"] == {**one["greedy-full"], "callbacks": one["skewed"]["callbacks"]}  # no skew on rank 0


def test_a_rank_that_would_draw_otherwise_writes_rank_0s_tokens(launched):
    _, (rank0, rank1), _ = launched
    assert 42 not in rank0["skewed"]["workers"][0][2]  # rank 1's processor asked for 42 every step
    assert rank1["skewed"]["workers"] == rank0["skewed"]["workers"] == rank0["greedy-full"]["workers"]


def test_each_rank_holds_its_share_of_the_kv_heads_and_counts_it(launched, one):
    _, ranks, _ = launched
    assert one["kv_heads"] == 2 and one["stream"]["arena_heads"] == [2]  # the whole model's 2 KV heads
    for rank in ranks:
        assert rank["kv_heads"] == 1 and rank["stream"]["arena_heads"] == [1]  # 1 per rank
        assert 2 * rank["bytes_per_token"] == one["bytes_per_token"]
        for name in ("greedy-full", "spawning"):
            run = rank[name]
            assert run["kv_bytes"] == run["kv_tokens"] * rank["bytes_per_token"]
            assert 2 * run["kv_bytes"] == one[name]["kv_bytes"]


def test_only_rank_0_reports(launched, capsys, monkeypatch):
    folder, (rank0, rank1), printed = launched
    for name in ("greedy-full", "spawning", "stream"):
        assert rank0[name]["callbacks"] > 0 and rank1[name]["callbacks"] == 0
    assert rank0["stream"]["progress"] is True and rank1["stream"]["progress"] is False
    assert rank1["stream"]["workers"] == rank0["stream"]["workers"] == rank0["greedy-full"]["workers"]
    monkeypatch.chdir(folder)  # the command line in one process, for the text it prints
    assert cli(CLI) == 0
    alone = capsys.readouterr().out
    assert printed.count("=== ") == alone.count("=== ") == 2  # each worker printed once, by rank 0
    assert _without_stats(printed) == _without_stats(alone)


def _without_stats(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if not line.startswith("--- "))
