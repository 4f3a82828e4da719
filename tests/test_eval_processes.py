"""The evaluation grid over several processes: each rank runs a disjoint share and writes its own
rows file, rank 0 merges, a rerun resumes. In process with a stand-in `generate`, then for real:
`python -m collab eval` under torchrun and `accelerate launch` (2 CPU processes, a tiny random
model saved to a folder) gives the rows of one process."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collab import ablate, evaluation
from collab.evaluation import Shard
from conftest import tiny_model

TIMING = {"wall_time_s"}  # the only column that differs between two runs of the same grid


@pytest.mark.parametrize("env, shard", [
    ({}, Shard(0, 1)),
    ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, Shard(3, 4)),  # global, across nodes
    ({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, Shard(1, 2)),
])
def test_the_rank_comes_from_the_launchers_environment(env, shard):
    assert Shard.from_env(env) == shard


@pytest.mark.parametrize("env, match", [
    ({"RANK": "1"}, "RANK='1' and WORLD_SIZE=None"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "rank 2 of world size 2"),
    ({"LOCAL_RANK": "x", "LOCAL_WORLD_SIZE": "2"}, "must be ints"),
])
def test_a_bad_launch_environment_is_refused(env, match):
    with pytest.raises(ValueError, match=match):
        Shard.from_env(env)


def test_ranks_split_the_grid_disjointly():
    cells = list(range(11))
    shares = [Shard(r, 3).take(cells) for r in range(3)]
    assert sorted(c for s in shares for c in s) == cells and [len(s) for s in shares] == [4, 4, 3]


class FakeResult:
    def __init__(self, answer, tokens):
        from collab.result import Stats

        self.answer, self.workers, self.events, self.blocks = answer, [], [], {}
        self.stats = Stats(generated_tokens=tokens, forward_passes=tokens // 2, wall_time_s=0.01)


def counting_generate(calls):
    def generate(model, question, **kw):
        calls.append((question, kw["visibility"], kw["seed"]))
        return FakeResult("2" if kw["visibility"] == "full" else str(kw["seed"]), 10 + kw["seed"] + len(question))

    return generate


def deterministic(rows):
    return sorted((json.dumps({k: v for k, v in r.items() if k not in TIMING}, sort_keys=True) for r in rows))


def rows_of(out):
    return [json.loads(x) for p in sorted(out.glob("runs*.jsonl")) for x in p.read_text().splitlines()]


def test_ranks_write_their_own_rows_rank_0_merges_and_a_rerun_resumes(tmp_path):
    tasks = ablate.load_tasks("builtin", limit=3)
    grid = ablate.Grid(["full", "none"], [2], [16], [0, 1])
    quiet = dict(progress=False, plots=False, log=lambda s: None)
    one = ablate.run(None, None, tasks, grid, tmp_path / "one", generate=counting_generate([]), shard=Shard(), **quiet)
    assert len(one) == 12 and [p.name for p in (tmp_path / "one").glob("runs*")] == ["runs.jsonl"]

    out, calls = tmp_path / "two", []
    rank1 = ablate.run(None, None, tasks, grid, out, generate=counting_generate(calls), shard=Shard(1, 2), **quiet)
    assert len(rank1) == len(calls) == 6 and not (out / "summary.csv").exists()  # rank 1 writes rows only
    merged = ablate.run(None, None, tasks, grid, out, generate=counting_generate(calls), shard=Shard(0, 2), **quiet)
    assert len(calls) == 12 and len(set(calls)) == 12  # each run once, on one rank
    assert deterministic(merged) == deterministic(one) == deterministic(rows_of(out))
    assert [r["arm"] for r in merged] == [r["arm"] for r in one]  # the summary's order, whichever rank wrote a row
    with open(out / "summary.csv") as f:
        assert sum(int(row["runs"]) for row in csv.DictReader(f)) == 12  # rank 0 summarized both ranks' rows

    # rank 1 killed while writing its last row, rank 0 lost its last row: the rerun runs just those two
    path1 = out / "runs.rank1.jsonl"
    lines1 = path1.read_text().splitlines()
    path1.write_text("\n".join(lines1[:-1]) + "\n" + lines1[-1][: len(lines1[-1]) // 2])
    path0 = out / "runs.rank0.jsonl"
    path0.write_text("\n".join(path0.read_text().splitlines()[:-1]) + "\n")
    calls.clear()
    for rank in (1, 0):
        ablate.run(None, None, tasks, grid, out, generate=counting_generate(calls), shard=Shard(rank, 2), **quiet)
    assert len(calls) == 2
    assert deterministic(rows_of(out)) == deterministic(one)  # every line a whole row, each run once


def test_rank_0_waits_for_the_rows_of_a_rank_still_running(tmp_path, monkeypatch):
    import threading

    from collab.evaluation import runner

    monkeypatch.setattr(runner, "POLL_S", 0.05)
    tasks = ablate.load_tasks("builtin", limit=2)
    grid = ablate.Grid(["full"], [2], [16], [0])
    quiet = dict(progress=False, plots=False, log=lambda s: None)
    merged = []
    rank0 = threading.Thread(target=lambda: merged.extend(ablate.run(
        None, None, tasks, grid, tmp_path, generate=counting_generate([]), shard=Shard(0, 2), **quiet)))
    rank0.start()
    rank0.join(0.5)
    assert rank0.is_alive() and not (tmp_path / "summary.csv").exists()  # its share done, rank 1's row missing
    ablate.run(None, None, tasks, grid, tmp_path, generate=counting_generate([]), shard=Shard(1, 2), **quiet)
    rank0.join(10)
    assert not rank0.is_alive() and len(merged) == 2 and (tmp_path / "summary.csv").exists()


def test_a_whole_last_row_without_its_newline_is_kept(tmp_path):
    from collab.evaluation.shard import drop_torn_tail

    path = tmp_path / "runs.rank0.jsonl"
    path.write_text('{"task": "a", "arm": "x", "seed": 0}\n{"task": "b", "arm": "x", "seed": 0}')
    drop_torn_tail(path)
    assert path.read_text().endswith('"seed": 0}\n') and len(path.read_text().splitlines()) == 2
    path.write_text('{"task": "a", "arm": "x", "seed": 0}\n{"task": "b", "ar')
    drop_torn_tail(path)
    assert path.read_text() == '{"task": "a", "arm": "x", "seed": 0}\n'


def test_a_row_that_is_not_json_is_named(tmp_path):
    (tmp_path / "runs.rank0.jsonl").write_text('{"task": "a", "arm": "x", "seed": 0}\nnot json\n{}\n')
    with pytest.raises(ValueError, match="runs.rank0.jsonl line 2 is not a JSON row"):
        evaluation.report(None, tmp_path, plots=False, log=lambda s: None)


# -- for real: the launch commands of docs/scaling.md ------------------------------------------


def save_tiny_model(folder: Path) -> Path:
    """A tiny random Llama with a byte-level tokenizer and a chat template, loadable by path."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<pad>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(BPE(vocab=vocab, merges=[]))  # one token per byte
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}[assistant]{% endif %}")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        chat_template=template)
    tiny_model(vocab_size=len(vocab), eos_token_id=1, max_position_embeddings=2048).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env |= {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def tool(name):
    """The launcher installed beside this Python (torchrun and accelerate are console scripts)."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def test_torchrun_and_accelerate_launch_split_merge_and_resume_the_grid(tmp_path):
    save_tiny_model(tmp_path / "tiny")
    grid = ["eval", "--models", "tiny=./tiny", "--tasks", "tasks:simple=2,compound=1", "--strategy", "hogwild",
            "--visibility", "full", "none", "--workers", "2", "--budgets", "8", "--seeds", "0", "1", "--sample",
            "--finisher", "off", "--no-progress"]
    launch([sys.executable, "-m", "collab", *grid, "--out", "one"], tmp_path)
    one = [json.loads(x) for x in (tmp_path / "one" / "runs.jsonl").read_text().splitlines()]
    assert len(one) == 12 and not any("error" in r for r in one)

    launch([tool("torchrun"), "--standalone", "--nproc-per-node", "2", "-m", "collab", *grid, "--out", "two"], tmp_path)
    two = tmp_path / "two"
    files = sorted(p.name for p in two.glob("runs*.jsonl"))
    assert files == ["runs.rank0.jsonl", "runs.rank1.jsonl"]
    assert [len((two / f).read_text().splitlines()) for f in files] == [6, 6]
    assert deterministic(rows_of(two)) == deterministic(one)
    with open(two / "summary.csv") as f:
        assert sum(int(row["runs"]) for row in csv.DictReader(f)) == 12  # rank 0 merged both ranks

    # rank 1 died before writing its last row: the rerun (accelerate launch this time) runs only that row
    rank0, rank1 = (two / "runs.rank0.jsonl").read_text(), (two / "runs.rank1.jsonl").read_text().splitlines()
    (two / "runs.rank1.jsonl").write_text("\n".join(rank1[:-1]) + "\n")
    log = launch([tool("accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                  "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                  "-m", "collab", *grid, "--out", "two"], tmp_path)
    assert "resuming: 11 runs already" in log
    assert (two / "runs.rank0.jsonl").read_text() == rank0  # rank 0 had nothing left to run
    assert len((two / "runs.rank1.jsonl").read_text().splitlines()) == 6
    assert deterministic(rows_of(two)) == deterministic(one)
