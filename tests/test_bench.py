"""The benchmark's plumbing (its numbers live in the README, never in a timed test)."""

import pytest
from scripted import CharTokenizer

from collab import bench
from conftest import tiny_model


def test_bench_runs_every_column_on_a_tiny_model(tmp_path):
    model = tiny_model(vocab_size=128)
    rows = bench.run(model, CharTokenizer(), workers=[1, 2], contexts=[16], tokens=2, rounds=1, log=lambda s: None)
    assert [(r.context, r.workers) for r in rows] == [(16, 1), (16, 2)]
    for r in rows:
        assert min(r.hf_batch1_tok_s, r.hf_batchw_tok_s, r.collab_tok_s, r.floor_step_ms, r.collab_step_ms) > 0
    bench.write_json(rows, tmp_path / "b.json", "tiny")
    assert "collab_step_vs_floor" in (tmp_path / "b.json").read_text()


@pytest.mark.parametrize(
    "workers,contexts,tokens,match",
    [([0], [16], 4, "--workers must be >= 1"), ([1], [0], 4, "--context must be >= 1"),
     ([1], [16], 0, "--tokens must be >= 1"), ([8], [500], 64, "exceeds the model's context of 512")],
)
def test_bench_flags_out_of_range(workers, contexts, tokens, match):
    with pytest.raises(ValueError, match=match):
        bench.check_args(tiny_model(), workers, contexts, tokens)
