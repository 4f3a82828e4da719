"""`python -m collab bench --gpu-check`: refused clearly without CUDA; its arithmetic, its JSON
file and every section's code on CPU (the Triton kernel under TRITON_INTERPRET=1, a tiny model),
so that the check runs untouched the first time a GPU is there."""

import json

import pytest
import torch
from scripted import CharTokenizer

from collab import gpu_check
from collab.__main__ import main
from conftest import tiny_model

pytest.importorskip("triton")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the check instead of refusing it")
def test_without_cuda_the_check_is_refused_clearly_before_loading(tmp_path, capsys):
    path = tmp_path / "gpu.json"
    assert main(["bench", "--gpu-check", "--json", str(path)]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "CUDA build of torch" in err and "Traceback" not in err
    assert not path.exists()


def test_peak_bandwidth_from_the_bus_and_clock_else_the_data_sheet():
    assert gpu_check.dram_peak(6144, 3_201_000) == pytest.approx(4.917e12, rel=1e-3)  # H200's properties
    assert gpu_check.peak_bandwidth("NVIDIA H100 80GB HBM3", 5120, 2_619_000)[0] == pytest.approx(3.352e12, rel=1e-3)
    assert gpu_check.peak_bandwidth("NVIDIA H100 NVL", 0, 0) == (3.9e12, "data sheet (NVIDIA H100 NVL)")
    assert gpu_check.peak_bandwidth("NVIDIA L40S", None, None)[0] == 8.64e11  # not "L4"
    peak, source = gpu_check.peak_bandwidth("Some Card", None, None)
    assert peak is None and "unknown" in source


def test_the_bytes_a_decode_step_reads():
    """4 workers over a 4k prompt, 256 tokens each: every key once is the prompt, the 4 blocks and
    the 4 new tokens; one program per token loads what its view holds."""
    _, plan, _ = gpu_check.decode_step(4096, 4, 256, head_dim=64)
    moved = gpu_check.kv_bytes(plan.counts, plan.firsts, kv_heads=3, head_dim=64, itemsize=2)
    per_key = 2 * 3 * 64 * 2
    assert moved["unique"] == (4096 + 4 * 257) * per_key
    assert moved["loaded"] == 4 * (4096 + 4 * 256 + 1) * per_key


def test_the_file_is_valid_json_with_inf_and_nan_as_null(tmp_path):
    path = tmp_path / "deep" / "gpu.json"
    gpu_check.write_json({"a": float("inf"), "b": [float("nan"), 1.5, (2, 3)], "c": {"d": torch.float32}}, path)
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1.5, [2, 3]], "c": {"d": "torch.float32"}}
    assert not list(path.parent.glob("*.tmp"))


def cpu_timer(fn):
    import time

    fn()
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def test_the_kernel_section_on_cpu_under_the_interpreter():
    out = gpu_check.kernel_section(8e12, 2000.0, device="cpu", shapes={"tiny": (4, 2, 16)}, contexts=(40,), workers=2,
                                   own=5, timer=cpu_timer, log=lambda s: None)
    assert [(e["dtype"], e["ok"]) for e in out["exactness"]] == [("float32", True), ("bfloat16", True)]
    (row,) = out["rows"]
    assert row["kv_bytes_unique"] == (40 + 2 * 6) * 2 * 2 * 16 * 2
    assert row["triton_gb_s"] > 0 and row["triton_vs_peak"] == pytest.approx(row["triton_gb_s"] / 8000)
    assert row["reference_us"] > 0 and row["sdpa_separate_caches_us"] > 0 and row["sdpa_gb_s"] > 0


def tiny(dtype):
    return tiny_model(vocab_size=128, max_position_embeddings=256).to(getattr(torch, dtype)), CharTokenizer()


def test_the_exactness_and_throughput_sections_on_a_tiny_model():
    out = gpu_check.exactness_section(tiny, workers=2, tokens=4, context=12, log=lambda s: None)
    fp32 = out["float32"]
    assert fp32["attention"] == ["triton", "reference"] and fp32["tokens_equal"] and fp32["ok"]
    assert fp32["one_worker_vs_hf_generate"]["tokens_equal"] and fp32["one_worker_vs_hf_generate"]["max_logit_diff"] < 1e-3
    assert "max_logit_diff" in out["bfloat16"] and "ok" not in out["bfloat16"]
    e2e = gpu_check.throughput_section(tiny, contexts=(16, 300), workers=(1, 2), tokens=2, rounds=1, log=lambda s: None)
    assert [(r["context"], r["workers"]) for r in e2e["rows"]] == [(16, 1), (16, 2)]  # 300 is past the model's context
    assert all(r["collab_tok_s"] > 0 and r["hf_batchw_tok_s"] > 0 for r in e2e["rows"])


def test_a_failing_section_is_recorded_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "unavailable", lambda: None)
    monkeypatch.setattr(gpu_check, "device_section", lambda: {"name": "fake", "peak_bandwidth_gb_s": 4800.0,
                                                               "copy_bandwidth_gb_s": 4000.0})
    seen = {}

    def kernel(peak, copy, log):
        seen["kernel"] = (peak, copy)
        return {"exactness": [{"shape": "s", "context": 4096, "dtype": "bfloat16", "ok": True}], "rows": []}

    def exactness(load, log):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(gpu_check, "kernel_section", kernel)
    monkeypatch.setattr(gpu_check, "exactness_section", exactness)
    monkeypatch.setattr(gpu_check, "throughput_section", lambda load, log: {"rows": []})
    path = tmp_path / "gpu.json"
    assert main(["bench", "--gpu-check", "--json", str(path)]) == 1
    report = json.loads(path.read_text())
    assert seen["kernel"] == (4.8e12, 4000.0)
    assert set(report["sections"]) == {"device", "kernel", "throughput"} and not report["passed"]
    assert "RuntimeError: out of memory" in report["errors"]["exactness"]
    assert "exactness" in capsys.readouterr().out
