"""Runs the grid: every arm on every task for every seed, one JSONL row per run (resumable),
then the summary (CSV, printed table) and the plots. A crash in one run is a row; the grid goes on.
Under torchrun or `accelerate launch` each process runs its share (`shard.py`) and rank 0 merges.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from ..answers import majority
from ..models import weights
from ..strategies import resolve_strategy
from .grid import Arm
from .shard import ROWS_GLOB, Shard, drop_torn_tail, key, merged_rows
from .sources import Task
from .summary import format_paired, format_table, overlap, paired, summarize, write_summary

SAMPLE_TEMPERATURE = 0.7
POLL_S = 2.0  # rank 0, its share done: how often it looks for the other ranks' rows


def run(models: dict, tasks: list[Task], arms: list[Arm], out, *, seeds=(0,), progress: bool = True,
        generate: Callable | None = None, max_minutes: float | None = None, yes: bool = False, plots: bool = True,
        log=print, shard: Shard | None = None, baseline: str | None = None) -> list[dict]:
    """Run `arms` x `tasks` x `seeds`; append rows to out/runs.jsonl, skipping runs that any
    out/runs*.jsonl already holds; write out/summary.csv and the plots. `models`: name ->
    (model, tokenizer). With `max_minutes`, a grid estimated to run longer is refused (its runs
    and estimated time named) unless `yes`; `baseline` (an arm's name) adds the paired comparison
    of `report`. Returns every row (old and new).

    Several processes (`shard`; default: RANK and WORLD_SIZE as torchrun and `accelerate
    launch` set them) each run every world-th run of the grid and append to
    out/runs.rank{r}.jsonl; rank 0 then waits for the other ranks' rows and writes the summary
    and plots of all of them."""
    from tqdm.auto import tqdm

    from ..api import generate as collab_generate

    generate = generate or collab_generate
    shard = Shard.from_env() if shard is None else shard
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise ValueError(f"seeds must be ints, got {s!r}")
    for arm in arms:
        arm.check(models)
    names = [a.name for a in arms]
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline={baseline!r} is not an arm of this grid; its arms: {names}")
    out = Path(out)
    cells = [(a, t, s) for a in arms for s in seeds for t in tasks]
    rows = merged_rows(out)
    _check_weights(rows, models, set(names), out)
    done = {key(r) for r in rows}
    todo = [c for c in shard.take(cells) if _key(c) not in done]
    where = f" ({shard})" if shard.world > 1 else ""
    if done:
        log(f"resuming: {len(done)} runs already in {out / ROWS_GLOB}, {len(todo)} to go{where}")
    elif shard.world > 1:
        log(f"{shard}: {len(todo)} of the grid's {len(cells)} runs")
    if generate is collab_generate:
        _dry_run(models, arms, tasks[0])
        if max_minutes is not None:
            minutes = estimate_minutes(models, todo)
            if minutes > max_minutes and not yes:
                raise ValueError(f"this grid is {len(todo)} runs{where}, estimated at {minutes:.0f} min, over the stated budget of "
                                 f"{max_minutes:g} min: shrink it (fewer tasks, arms, seeds or budgets) or pass --yes / yes=True")
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / shard.rows_file
    drop_torn_tail(rows_path)
    with rows_path.open("a") as f:
        for arm, task, seed in tqdm(todo, disable=not progress or shard.rank != 0, desc=f"eval{where}", unit="run"):
            row = run_one(generate, models, arm, task, seed)
            f.write(json.dumps(row) + "\n")
            f.flush()  # a process killed now loses only the run it was on
            rows.append(row)
    if shard.rank != 0:
        log(f"{shard}: {len(todo)} rows written to {rows_path}; rank 0 writes the summary")
        return rows
    if shard.world > 1:
        rows = _wait_for(out, {_key(c) for c in cells}, log)
    order = {_key(c): i for i, c in enumerate(cells)}
    rows.sort(key=lambda r: order.get(key(r), len(order)))  # the grid's order, whichever rank wrote a row
    report(rows, out, plots=plots, log=log, baseline=baseline)
    return rows


def _check_weights(rows: list[dict], models: dict, arms: set, out: Path) -> None:
    """Refuse to resume runs that other weights made (a retrained adapter under the same name):
    their rows would count as done and mix two models in one summary. Rows without the field
    (written before it existed) are taken as they are."""
    for r in rows:
        have = r.get("weights")
        if have is None or r["arm"] not in arms or r.get("model") not in models:
            continue
        now = weights(models[r["model"]][0])
        if have != now:
            raise ValueError(f"{out} holds runs of arm {r['arm']!r} made with other weights ({have}) than model "
                             f"{r['model']!r} has now ({now}): write to a fresh --out, or move those rows away")


def _key(cell) -> tuple:
    arm, task, seed = cell
    return (task.id, arm.name, seed)


def _wait_for(out: Path, keys: set, log) -> list[dict]:
    """Rank 0, its share done: every row of out/runs*.jsonl once each run of the grid has one.
    (A rank that dies stops the launch: torchrun ends the other processes, and the same command
    resumes.)"""
    announced = False
    while True:
        rows = merged_rows(out)
        missing = keys - {key(r) for r in rows}
        if not missing:
            return rows
        if not announced:
            log(f"rank 0: waiting for the other ranks' {len(missing)} runs ({out / ROWS_GLOB})")
            announced = True
        time.sleep(POLL_S)


def report(rows, out, plots: bool = True, log=print, baseline: str | None = None) -> list[dict]:
    """The summary (out/summary.csv, printed) and the plots of `rows`, or of every runs*.jsonl in
    `out` when `rows` is None (rows written by several processes, merged; a run written twice
    counts once). With `baseline` (an arm's name), also each arm against it on the runs both
    made (out/paired.csv, printed; `summary.paired`)."""
    out = Path(out)
    if rows is None:
        rows = merged_rows(out)
        if not rows:
            raise FileNotFoundError(f"no rows in {out / ROWS_GLOB}: run the grid first")
    pairs = paired(rows, baseline) if baseline is not None else None  # an unknown arm is refused before writing
    table = summarize(rows)
    write_summary(table, out / "summary.csv")
    log(format_table(table))
    if pairs is not None:
        write_summary(pairs, out / "paired.csv")
        log(format_paired(pairs))
    if plots:
        from .plots import plot

        plot(table, out)
    return table


def _options(arm: Arm, seed: int) -> dict:
    kw = {"strategy": arm.strategy, "workers": arm.workers, "visibility": arm.visibility, "max_new_tokens": arm.budget,
          "seed": seed, "progress": False}
    if arm.sample or arm.samples > 1:
        kw |= {"do_sample": True, "temperature": SAMPLE_TEMPERATURE}
    elif not resolve_strategy(arm.strategy).sample:  # presets that sample (self_consistency) keep their way
        kw["do_sample"] = False
    if arm.finisher is not None:
        kw["finisher"] = arm.finisher
    if arm.repetition_penalty is not None:
        kw["repetition_penalty"] = float(arm.repetition_penalty)
    if arm.stop_repeats is not None:
        kw["stop_repeats"] = int(arm.stop_repeats)
    protocol = arm.protocol()
    if protocol is not None:
        kw["protocol"] = protocol
    return kw


def _dry_run(models: dict, arms: list[Arm], task: Task) -> None:
    """Every arm's options through `collab.generate`'s checks on a real model (no forward pass):
    a configuration the model cannot run is refused before the grid starts."""
    import inspect

    from ..api import _prepare, generate

    signature = inspect.signature(generate)
    for arm in arms:
        model, tokenizer = models[arm.model]
        bound = signature.bind(model, task.question, tokenizer=tokenizer, **_options(arm, 0))
        bound.apply_defaults()
        options = dict(bound.arguments)
        options.pop("transformers_options")
        try:
            _prepare(**options)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"arm {arm.name!r} cannot run on model {arm.model!r}: {exc}") from None


def estimate_minutes(models: dict, todo) -> float:
    """A rough time for the runs left: decode steps (budget, per sample) times a measured decode
    step of each model at the arm's width."""
    import torch

    per_step = {}
    for arm, _, _ in todo:
        width = arm.workers
        if (arm.model, width) not in per_step:
            model, _ = models[arm.model]
            device = next(model.parameters()).device
            ids = torch.zeros((width, 64), dtype=torch.long, device=device)
            with torch.inference_mode():
                best = float("inf")
                for _ in range(2):
                    t0 = time.perf_counter()
                    model(input_ids=ids[:, :1])
                    best = min(best, time.perf_counter() - t0)
            per_step[arm.model, width] = best
    spawns = lambda arm: 2.0 if resolve_strategy(arm.strategy).protocol else 1.0  # noqa: E731  (helpers about double the steps)
    return sum(arm.budget * arm.samples * spawns(arm) * per_step[arm.model, arm.workers] for arm, _, _ in todo) / 60


def run_one(generate, models: dict, arm: Arm, task: Task, seed: int) -> dict:
    model, tokenizer = models.get(arm.model, (None, None))
    row = {"task": task.id, "kind": task.kind, "parallel": task.parallel, "seed": seed, **arm.fields(),
           "weights": weights(model), "gold": task.answer}
    t0 = time.perf_counter()
    try:
        results = [generate(model, task.question, tokenizer=tokenizer, **_options(arm, seed * 1000 + i if arm.samples > 1 else seed))
                   for i in range(arm.samples)]
    except Exception as exc:  # one crash is a row; the grid goes on
        return row | {"answer": None, "correct": False, "tokens": 0, "critical_steps": 0, "forward_passes": 0,
                      "wall_time_s": time.perf_counter() - t0, "spawned": 0, "helpers_done": None, "fed_once": None, "overlap": None,
                      "error": f"{type(exc).__name__}: {exc}"}
    answer = results[0].answer if arm.samples == 1 else majority([r.answer for r in results])
    traces = [_trace(r) for r in results]
    overlaps = [o for o in (overlap(t["workers"]) for t in traces) if o is not None]
    return row | {
        "answer": answer,
        "correct": task.correct(answer),
        "tokens": sum(r.stats.generated_tokens for r in results),
        # decode steps until the answer: every worker of a run advances in the same steps; samples run side by side
        "critical_steps": max(critical_steps(r) for r in results),
        "forward_passes": sum(r.stats.forward_passes for r in results),
        "wall_time_s": sum(r.stats.wall_time_s for r in results),
        "spawned": sum(sum(1 for w in r.workers if w.parent is not None) for r in results) / len(results),
        "helpers_done": _helpers_done(results),
        "stopped_repeating": sum(w.finish_reason == "repeats" for r in results for w in r.workers) / len(results),
        # each token's K/V stored once: what was fed equals the distinct tokens the blocks hold
        "fed_once": all(r.stats.tokens_fed == sum(len(t) for t in r.blocks.values()) for r in results),
        "overlap": sum(overlaps) / len(overlaps) if overlaps else None,
        "trace": traces[0] if arm.samples == 1 else traces,
    }


def _helpers_done(results) -> bool | None:
    """Every spawned helper ended at its done marker and was joined (None: none was spawned)."""
    helpers = [(r, w) for r in results for w in r.workers if w.parent is not None and w.role == "worker"]
    if not helpers:
        return None
    joined = {(id(r), c) for r in results for e in r.events if e.kind == "join" for c in e.info["children"]}
    return all(w.finish_reason.startswith("done marker") and (id(r), w.index) in joined for r, w in helpers)


def critical_steps(result) -> int:
    """Decode steps until the final answer: the root's last step, or the finisher's."""
    steps = [w.retire_step for w in result.workers if w.parent is None and getattr(w, "retire_step", None)]
    return max(steps) if steps and not any(w.role == "finisher" for w in result.workers) else result.stats.steps


def _trace(result) -> dict:
    return {
        "workers": [{"name": w.name, "role": w.role, "parent": w.parent, "text": w.text, "reason": w.finish_reason}
                    for w in result.workers],
        "events": [{"kind": e.kind, "step": e.step, "worker": e.worker, **e.info} for e in result.events],
    }
