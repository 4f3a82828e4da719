"""`python -m collab bench --gpu-check`: what one CUDA GPU says about collab, in one JSON file,
in a few minutes (under 8 on a current data-centre card).

- `device`: the card, its peak memory bandwidth (bus width x memory clock from the device
  properties, else the vendor's figure for that card), and a measured device-to-device copy;
- `kernel`: the Triton decode kernel (`kernels/triton_decode.py`) on one decode step of 4
  workers over a 4k and a 32k prompt (bf16): time, and achieved bandwidth against the peak and
  the copy, beside the PyTorch reference kernel and sdpa over 4 separate caches (what HF's batch
  of 4 reads); its outputs against the reference in fp32 and bf16;
- `exactness`: collab end to end on the Triton path against the reference path (greedy tokens
  and logits, fp32 and bf16), and one worker against HF `generate`;
- `throughput`: `collab.bench` in bf16 on the GPU: tokens/s against HF `generate` (sdpa) at
  batch 1 and batch W.

Each section is timed and fails on its own: its error goes into the file and the exit status,
the others still run; the file is rewritten after every section, so an interrupted check keeps
what it measured.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
import traceback
from pathlib import Path

CONTEXTS = (4096, 32768)  # prompt tokens the 4 workers share, for the kernel
WORKERS = 4
OWN = 256  # tokens each worker has written so far
PAGE = 64  # collab.generate's default page_size
SHAPES = {  # one attention layer: (query heads, KV heads, head_dim)
    "SmolLM2-135M": (9, 3, 64),
    "Llama-3-8B": (32, 8, 128),
}
TOLERANCE = {"float32": 2e-5, "bfloat16": 2e-2}  # kernel against reference, as tests/test_kernel_triton.py
LOGITS_TOLERANCE = 1e-3  # fp32, Triton path against reference path, end to end
E2E_CONTEXTS = (512, 4096)
E2E_WORKERS = (1, 4)
E2E_TOKENS = 128

# Peak memory bandwidth (bytes/s) from vendors' data sheets, for when the device properties do
# not give bus width and memory clock (CUDA 13 dropped the clock). Matched by name, longest first.
SPEC_BANDWIDTH = {
    "H200": 4.8e12,
    "H100 SXM": 3.35e12,
    "H100 80GB HBM3": 3.35e12,
    "H100 NVL": 3.9e12,
    "H100 PCIe": 2.0e12,
    "A100-SXM4-80GB": 2.039e12,
    "A100 80GB PCIe": 1.935e12,
    "A100-SXM4-40GB": 1.555e12,
    "A100-PCIE-40GB": 1.555e12,
    "L40S": 8.64e11,
    "A10G": 6.0e11,
    "L4": 3.0e11,
    "T4": 3.2e11,
}


def unavailable() -> str | None:
    """Why the check cannot run here (None: it can). Nothing is loaded to find out."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return (f"the GPU check needs a CUDA GPU, and torch {torch.__version__} ({build}) sees none: run it on a "
                "machine with an NVIDIA GPU and a CUDA build of torch (docs/performance.md, 'A GPU check')")
    if importlib.util.find_spec("triton") is None:
        return "the GPU check times collab's Triton kernel: pip install triton (or collab[triton])"
    return None


def dram_peak(bus_width_bits: int, memory_clock_khz: int) -> float:
    """Peak DRAM bandwidth in bytes/s: double data rate, bus width in bits, clock in kHz (as
    cudaDeviceProp gives them). An H100 SXM (5120 bits, 2,619 MHz) gives 3.35e12.

    >>> round(dram_peak(5120, 2_619_000) / 1e12, 2)
    3.35
    """
    return 2 * bus_width_bits / 8 * memory_clock_khz * 1e3


def peak_bandwidth(name: str, bus_width_bits: int | None, memory_clock_khz: int | None) -> tuple[float | None, str]:
    """(bytes/s, where the figure comes from): the device properties, else the data sheet.

    >>> peak_bandwidth("NVIDIA H200", None, 0)
    (4800000000000.0, 'data sheet (NVIDIA H200)')
    """
    if bus_width_bits and memory_clock_khz:
        return dram_peak(bus_width_bits, memory_clock_khz), "device properties (bus width x memory clock x 2)"
    for card in sorted(SPEC_BANDWIDTH, key=len, reverse=True):
        if card.lower() in name.lower():
            return SPEC_BANDWIDTH[card], f"data sheet ({name})"
    return None, f"unknown for {name!r}: no bus width and clock in the device properties, no data-sheet entry"


def kv_bytes(counts, firsts, kv_heads: int, head_dim: int, itemsize: int) -> dict:
    """Bytes of keys and values one decode step reads. counts/firsts: [T, G] (the plan's visible
    keys of each page per token). `unique`: every visible key once (the least any kernel must
    read from memory); `loaded`: once per token, as one program per (token, KV head) loads them.

    >>> import torch
    >>> kv_bytes(torch.tensor([[4, 2], [4, 0]]), torch.tensor([[0, 0], [1, 0]]), 2, 8, 2)
    {'unique': 384, 'loaded': 576}
    """
    seen = counts > firsts
    hi = counts.masked_fill(~seen, 0).amax(0)
    lo = firsts.masked_fill(~seen, 1 << 30).amin(0)
    per_key = 2 * kv_heads * head_dim * itemsize  # K and V
    unique = int((hi - lo).clamp(min=0).sum()) * per_key
    loaded = int((counts - firsts).clamp(min=0).sum()) * per_key
    return {"unique": unique, "loaded": loaded}


def _clean(value):
    """JSON-safe: inf and nan become null, tuples lists, anything else odd its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def write_json(report: dict, path) -> None:
    """Write `report` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(report), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


# -- sections (CUDA only) --------------------------------------------------------------------


def device_section() -> dict:
    import torch
    import triton
    from triton.testing import do_bench

    props = torch.cuda.get_device_properties(0)
    bus, clock = getattr(props, "memory_bus_width", None), getattr(props, "memory_clock_rate", None)
    peak, source = peak_bandwidth(props.name, bus, clock)
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")  # 1 GiB, copied into another
    y = torch.empty_like(x)
    copy_ms = do_bench(lambda: y.copy_(x), warmup=10, rep=50, return_mode="median")
    del x, y
    try:
        from importlib.metadata import version

        flash = version("flash-attn")
    except Exception:
        flash = None
    return {
        "name": props.name, "capability": f"{props.major}.{props.minor}", "memory_gib": props.total_memory / 2**30,
        "multiprocessors": props.multi_processor_count, "memory_bus_width_bits": bus, "memory_clock_khz": clock,
        "peak_bandwidth_gb_s": peak / 1e9 if peak else None, "peak_source": source,
        "copy_bandwidth_gb_s": 2 * (1 << 30) / (copy_ms / 1e3) / 1e9,  # read + write
        "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton.__version__, "flash_attn": flash,
        "platform": platform.platform(),
    }


def decode_step(context: int, workers: int, own: int, head_dim: int, page_size: int = PAGE):
    """One decode step's plan: a prompt block of `context` tokens, `workers` blocks of `own`
    tokens each, full visibility, each worker feeding one token. Returns (table, plan, inv_freq)."""
    import torch

    from .blocks import BlockTable
    from .plan import Feed, build_plan
    from .views import Segment, View

    table = BlockTable(page_size)
    prompt = table.new_block(None).id
    table.append(prompt, context)
    blocks = [table.new_block(i).id for i in range(workers)]
    for b in blocks:
        table.append(b, own)
    feeds, views = [], {}
    for i, b in enumerate(blocks):
        segments, offset = [Segment(prompt, context, 0)], context
        for other in blocks:
            if other != b:
                segments.append(Segment(other, own, offset))
                offset += own
        views[i] = View(tuple(segments), offset)
        feeds.append(Feed(i, b, [1], *table.append(b, 1)))
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    return table, build_plan(feeds, views, table, inv_freq, backend="triton"), inv_freq


def _arena(table, kv_heads, head_dim, dtype, device, seed=0):
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    shape = (table.capacity, kv_heads, table.page_size, head_dim)
    return tuple(torch.randn(shape, generator=g, device=device).to(dtype) for _ in range(2))


def cuda_timer(fn, budget_ms: int = 100) -> float:
    """Median milliseconds of `fn` on the GPU over about `budget_ms` of calls (Triton's do_bench:
    warmed up, the L2 cache flushed before each call)."""
    from triton.testing import do_bench

    return do_bench(fn, warmup=10, rep=budget_ms, return_mode="median")


def kernel_section(peak: float | None, copy: float | None, *, device="cuda", shapes=SHAPES, contexts=CONTEXTS,
                   workers=WORKERS, own=OWN, timer=cuda_timer, log=print) -> dict:
    """The Triton kernel against the reference (fp32, bf16) and timed in bf16 beside the
    reference and sdpa. `peak`, `copy`: bytes/s and GB/s to set the achieved bandwidth against."""
    import torch
    import torch.nn.functional as F

    from .kernels import paged_attention
    from .kernels.triton_decode import decode_attention

    out = {"workers": workers, "own_tokens": own, "page_size": PAGE, "dtype": "bfloat16", "rows": [], "exactness": []}
    for shape, (heads, kv_heads, head_dim) in shapes.items():
        for context in contexts:
            table, plan, inv_freq = decode_step(context, workers, own, head_dim)
            p, freq = plan.on(torch.device(device)), inv_freq.to(device)
            scale, T = head_dim**-0.5, p.input_ids.shape[1]
            for dtype in (torch.float32, torch.bfloat16):  # outputs against the reference
                k, v = _arena(table, kv_heads, head_dim, dtype, device)
                q = torch.randn(T, heads, head_dim, device=device).to(dtype)
                got = decode_attention(q, k, v, p.pages, p.counts, p.firsts, p.delta, freq, scale)
                want = paged_attention(q.float(), k.float(), v.float(), p.page_ids, p.num_pages, p.bias, p.cos, p.sin, scale)
                err = (got.float() - want).abs().max().item()
                name = str(dtype).removeprefix("torch.")
                out["exactness"].append({"shape": shape, "context": context, "dtype": name, "max_abs_error": err,
                                         "tolerance": TOLERANCE[name], "ok": err <= TOLERANCE[name]})
            k, v = _arena(table, kv_heads, head_dim, torch.bfloat16, device)  # timed in bf16
            q = q.to(torch.bfloat16)
            triton_ms = timer(lambda: decode_attention(q, k, v, p.pages, p.counts, p.firsts, p.delta, freq, scale))
            reference_ms = timer(lambda: paged_attention(q, k, v, p.page_ids, p.num_pages, p.bias, p.cos, p.sin, scale))
            seen = context + workers * own + 1  # keys one worker's view holds, its new token included
            qs = torch.randn(workers, heads, 1, head_dim, device=device, dtype=torch.bfloat16)
            ks = torch.randn(workers, kv_heads, seen, head_dim, device=device, dtype=torch.bfloat16)
            vs = torch.randn_like(ks)
            sdpa_ms = timer(lambda: F.scaled_dot_product_attention(qs, ks, vs, scale=scale, enable_gqa=True))
            moved = kv_bytes(plan.counts, plan.firsts, kv_heads, head_dim, 2)
            sdpa_bytes = 2 * workers * kv_heads * seen * head_dim * 2
            row = {
                "shape": shape, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "context": context,
                "kv_bytes_unique": moved["unique"], "kv_bytes_loaded": moved["loaded"],
                "triton_us": 1e3 * triton_ms, "reference_us": 1e3 * reference_ms, "sdpa_separate_caches_us": 1e3 * sdpa_ms,
                **_bandwidth("triton", moved["unique"], triton_ms, peak, copy),
                "triton_loaded_gb_s": moved["loaded"] / triton_ms / 1e6,
                **_bandwidth("sdpa", sdpa_bytes, sdpa_ms, peak, copy),
            }
            out["rows"].append(row)
            log(f"kernel {shape:13s} ctx {context:6d}: triton {row['triton_us']:8.1f} us "
                f"({row['triton_gb_s']:7.1f} GB/s, {_pct(row['triton_vs_peak'])} of peak), "
                f"reference {row['reference_us']:8.1f} us, sdpa x{workers} caches {row['sdpa_separate_caches_us']:8.1f} us")
            del k, v, ks, vs
    return out


def _bandwidth(name: str, nbytes: int, ms: float, peak: float | None, copy: float | None) -> dict:
    """Achieved GB/s of `nbytes` read in `ms`, and its share of the peak (bytes/s) and of the copy (GB/s).

    >>> _bandwidth("k", 4_000_000, 0.001, 8e12, 2000.0)
    {'k_gb_s': 4000.0, 'k_vs_peak': 0.5, 'k_vs_copy': 2.0}
    """
    gb_s = nbytes / ms / 1e6
    return {f"{name}_gb_s": gb_s, f"{name}_vs_peak": gb_s / (peak / 1e9) if peak else None,
            f"{name}_vs_copy": gb_s / copy if copy else None}


def _pct(share) -> str:
    return "?" if share is None else f"{100 * share:.1f}%"


def _compare(a, b) -> dict:
    """Greedy runs of the same workers: do their tokens agree, where do they first part, and how
    far apart are the logits up to there (every worker's logits at a step come from contexts
    that were equal until that step)."""
    first = None
    for wa, wb in zip(a.workers, b.workers):
        n = next((i for i, (x, y) in enumerate(zip(wa.token_ids, wb.token_ids)) if x != y), None)
        if n is None and len(wa.token_ids) != len(wb.token_ids):
            n = min(len(wa.token_ids), len(wb.token_ids))
        if n is not None:
            first = n if first is None else min(first, n)
    diff = max((_max_diff(x, y) for wa, wb in zip(a.workers, b.workers) for i, (x, y) in enumerate(zip(wa.logits, wb.logits))
                if first is None or i <= first), default=0.0)
    return {"tokens_equal": first is None, "first_difference_at": first, "max_logit_diff": diff}


def _max_diff(x, y) -> float:
    """max |x - y| over the entries finite on both sides (a token masked to -inf on both is equal)."""
    x, y = x.float().cpu(), y.float().cpu()
    both = x.isfinite() & y.isfinite()
    if not bool((both == (x.isfinite() | y.isfinite())).all()):
        return float("inf")  # one side masked a token the other did not
    return (x[both] - y[both]).abs().max().item() if bool(both.any()) else 0.0


def exactness_section(load, *, workers=WORKERS, tokens=64, context=512, log=print) -> dict:
    """collab on the Triton path against the reference path, greedy, fp32 and bf16; in fp32 also
    one worker against HF `generate`. `load(dtype)` -> (model, tokenizer) on the GPU."""
    import torch

    from . import bench
    from .api import generate

    out = {}
    for dtype in ("float32", "bfloat16"):
        model, tokenizer = load(dtype)
        prompt = bench.make_prompt(tokenizer, context)
        kw = dict(template=None, workers=workers, max_new_tokens=tokens, do_sample=False, ignore_eos=True,
                  output_logits=True, progress=False)
        triton_run = generate(model, prompt, attention="triton", **kw)
        reference_run = generate(model, prompt, attention="reference", **kw)
        row = _compare(triton_run, reference_run) | {"attention": [triton_run.stats.attention, reference_run.stats.attention]}
        if dtype == "float32":
            row |= {"tolerance": LOGITS_TOLERANCE, "ok": row["tokens_equal"] and row["max_logit_diff"] <= LOGITS_TOLERANCE}
            row["one_worker_vs_hf_generate"] = _against_hf(model, prompt, generate(model, prompt, attention="triton",
                                                                                  **(kw | {"workers": 1})), tokens)
        else:
            row["note"] = "bf16: reported, not bounded (attention outputs round differently in the two kernels)"
        out[dtype] = row
        log(f"exactness {dtype}: triton vs reference tokens equal {row['tokens_equal']}, max |dlogit| {row['max_logit_diff']:.2e}")
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return out


def _against_hf(model, prompt: list[int], one, tokens: int) -> dict:
    """One collab worker against HF `generate` (greedy, raw logits) on the same prompt."""
    import torch

    ids = torch.tensor([prompt], device=model.device)
    with torch.inference_mode():
        hf = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                            do_sample=False, pad_token_id=0, output_logits=True, return_dict_in_generate=True)
    theirs, mine = hf.sequences[0, len(prompt):].tolist(), one.workers[0].token_ids
    n = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), None)
    upto = min(len(mine), len(theirs)) if n is None else n + 1
    diff = max((_max_diff(one.workers[0].logits[i], hf.logits[i][0]) for i in range(upto)), default=0.0)
    return {"tokens_equal": mine == theirs, "first_difference_at": n, "max_logit_diff": diff,
            "hf_attention": model.config._attn_implementation}


def throughput_section(load, *, contexts=E2E_CONTEXTS, workers=E2E_WORKERS, tokens=E2E_TOKENS, rounds=2, log=print) -> dict:
    """`collab.bench` in bf16: tokens/s of collab against HF `generate` at batch 1 and batch W."""
    from . import bench
    from .api import generate

    model, tokenizer = load("bfloat16")
    limit = model.config.max_position_embeddings
    contexts = [c for c in contexts if c + max(workers) * tokens <= limit]
    probe = generate(model, bench.make_prompt(tokenizer, 16), template=None, workers=2, max_new_tokens=2, progress=False)
    hf_attention = model.config._attn_implementation
    rows = bench.run(model, tokenizer, workers, contexts, tokens, rounds=rounds, log=lambda s: log("e2e " + s))
    return {"dtype": "bfloat16", "new_tokens": tokens, "collab_attention": probe.stats.attention, "hf_attention": hf_attention,
            "rows": [vars(r) | {"collab_vs_hf_batchw": r.vs_batchw, "collab_vs_hf_batch1": r.vs_batch1,
                                "collab_step_vs_floor": r.vs_floor} for r in rows]}


def run(path="gpu-check.json", model_name=None, max_minutes: float = 8.0, log=print) -> int:
    """The whole check; returns the exit status (0: every section ran and every bound held)."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    from . import models

    t0 = time.perf_counter()
    report = {"check": "python -m collab bench --gpu-check", "model": model_name or models.DEFAULT_MODEL,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sections": {}, "errors": {}}
    for name, section in _sections(model_name, log).items():
        if time.perf_counter() - t0 > 60 * max_minutes:
            report["errors"][name] = f"skipped: the check passed its {max_minutes:g} minutes"
            continue
        log(f"{name} ...")
        start = time.perf_counter()
        try:
            report["sections"][name] = section(report["sections"]) | {"seconds": time.perf_counter() - start}
        except Exception as exc:  # one section's failure is recorded; the others still run
            report["errors"][name] = "".join(traceback.format_exception(exc))
            log(f"{name}: failed ({type(exc).__name__}: {exc}); the traceback is in {path}")
        report["seconds"] = time.perf_counter() - t0
        write_json(report, path)
    failed = _failed_bounds(report["sections"])
    report["seconds"] = time.perf_counter() - t0
    report["passed"] = not report["errors"] and not failed
    report["failed_bounds"] = failed
    write_json(report, path)
    log(f"wrote {path} in {report['seconds']:.0f} s: " + ("every section ran, every bound held" if report["passed"] else
        f"errors in {', '.join(report['errors']) or 'none'}; bounds missed: {', '.join(failed) or 'none'}"))
    return 0 if report["passed"] else 1


def _sections(model_name, log) -> dict:
    """name -> section(the sections done so far) -> its results, in the order they run."""
    from . import models

    def load(dtype):
        return models.load(model_name, dtype=dtype, device_map={"": "cuda"})

    def kernel(done):
        device = done.get("device") or {}
        peak = device.get("peak_bandwidth_gb_s")
        return kernel_section(peak * 1e9 if peak else None, device.get("copy_bandwidth_gb_s"), log=log)

    return {"device": lambda done: device_section(), "kernel": kernel,
            "exactness": lambda done: exactness_section(load, log=log),
            "throughput": lambda done: throughput_section(load, log=log)}


def _failed_bounds(sections: dict) -> list[str]:
    failed = [f"kernel {e['shape']} ctx {e['context']} {e['dtype']}" for e in sections.get("kernel", {}).get("exactness", [])
              if not e["ok"]]
    fp32 = sections.get("exactness", {}).get("float32")
    if fp32 is not None and not fp32["ok"]:
        failed.append("end to end fp32, triton vs reference")
    return failed
