"""The ablation harness: `python -m collab ablate`.

A grid of visibility x workers x token budgets x seeds over a task set (JSONL with `question`
and `answer`, the builtin set, or a local `datasets` dataset). One JSONL row per run (config,
answer, correct, tokens, forward passes, wall time, the trace); a summary table (CSV and
printed); plots of accuracy against forward passes per configuration and of tokens per solved
task. Rows already in the output are skipped on rerun; a crash in one run is recorded as a row
and the grid goes on.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from .answers import equivalent
from .views import resolve_visibility


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    question: str
    answer: str


def load_tasks(source: str, limit: int | None = None) -> list[Task]:
    """'builtin', a JSONL path, or 'hf:NAME[:SPLIT]' (a dataset `datasets` can load locally,
    with `question` and `answer` columns). Errors name the line and the fix."""
    if source == "builtin":
        text = resources.files("collab").joinpath("tasks/builtin.jsonl").read_text(encoding="utf-8")
        tasks = _parse_jsonl(text, "builtin tasks")
    elif source.startswith("hf:"):
        tasks = _from_datasets(source[3:])
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"task file {source!r} does not exist; pass a JSONL path, 'builtin' or 'hf:NAME'")
        tasks = _parse_jsonl(path.read_text(encoding="utf-8"), str(path))
    if not tasks:
        raise ValueError(f"{source!r} holds no tasks")
    return tasks[:limit] if limit else tasks


def _parse_jsonl(text: str, name: str) -> list[Task]:
    tasks, seen = [], set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} line {n}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(row, dict):
            raise ValueError(f"{name} line {n}: expected a JSON object with 'question' and 'answer'")
        missing = [k for k in ("question", "answer") if k not in row]
        if missing:
            raise ValueError(f"{name} line {n}: missing field(s) {', '.join(missing)}; each task needs 'question' and 'answer'")
        task = Task(str(row.get("id", n)), str(row["question"]), str(row["answer"]))
        if task.id in seen:
            raise ValueError(f"{name} line {n}: duplicate id {task.id!r}")
        seen.add(task.id)
        tasks.append(task)
    return tasks


def _from_datasets(spec: str) -> list[Task]:
    try:
        import datasets
    except ModuleNotFoundError:
        raise ModuleNotFoundError("'hf:' task sources need the datasets package: pip install datasets") from None
    name, _, split = spec.partition(":")
    data = datasets.load_dataset(name, split=split or "test")
    return [Task(str(i), str(r["question"]), str(r["answer"])) for i, r in enumerate(data)]


@dataclass(slots=True)
class Grid:
    visibility: list = None
    workers: list[int] = None
    budgets: list[int] = None
    seeds: list[int] = None

    def __post_init__(self):
        self.visibility = self.visibility or ["full", "none"]
        self.workers = self.workers or [2]
        self.budgets = self.budgets or [64]
        self.seeds = self.seeds if self.seeds is not None else [0]
        for w in self.workers:
            if isinstance(w, bool) or not isinstance(w, int) or w < 1:
                raise ValueError(f"workers must be ints >= 1, got {w!r}")
        for b in self.budgets:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise ValueError(f"budgets must be ints >= 1 (tokens per worker), got {b!r}")
        for v in self.visibility:  # every name, K and matrix checked before any compute
            for w in self.workers:
                resolve_visibility(v, w)

    def configs(self):
        return itertools.product(self.visibility, self.workers, self.budgets, self.seeds)


def _key(row: dict) -> tuple:
    return (row["task"], str(row["visibility"]), row["workers"], row["budget"], row["seed"])


def run(model, tokenizer, tasks: list[Task], grid: Grid, out: str | Path, *, strategy: str = "hogwild",
        sample: bool = True, progress: bool = True, generate: Callable | None = None, log=print) -> list[dict]:
    """Run the grid; append rows to out/runs.jsonl (skipping finished ones); write the summary
    and plots. Returns every row (old and new)."""
    from tqdm.auto import tqdm

    from .api import generate as collab_generate

    generate = generate or collab_generate
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "runs.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()] if rows_path.exists() else []
    done = {_key(r) for r in rows}
    todo = [(c, t) for c in grid.configs() for t in tasks if (t.id, str(c[0]), *c[1:]) not in done]
    if len(todo) < len(tasks) * len(list(grid.configs())):
        log(f"resuming: {len(done)} runs already in {rows_path}, {len(todo)} to go")
    with rows_path.open("a") as f:
        for (visibility, workers, budget, seed), task in tqdm(todo, disable=not progress, desc="ablate", unit="run"):
            row = {"task": task.id, "visibility": str(visibility), "workers": workers, "budget": budget, "seed": seed,
                   "gold": task.answer}
            t0 = time.perf_counter()
            try:
                r = generate(model, task.question, tokenizer=tokenizer, strategy=strategy, workers=workers,
                             visibility=visibility, max_new_tokens=budget, seed=seed,
                             do_sample=sample, finisher_tokens=32, progress=False)
                row |= {"answer": r.answer, "correct": equivalent(r.answer, task.answer),
                        "tokens": r.stats.generated_tokens, "forward_passes": r.stats.forward_passes,
                        "wall_time_s": r.stats.wall_time_s, "trace": _trace(r)}
            except Exception as exc:  # one crash is a row; the grid goes on
                row |= {"answer": None, "correct": False, "tokens": 0, "forward_passes": 0,
                        "wall_time_s": time.perf_counter() - t0, "error": f"{type(exc).__name__}: {exc}"}
            f.write(json.dumps(row) + "\n")
            f.flush()
            rows.append(row)
    table = summarize(rows)
    write_summary(table, out / "summary.csv")
    log(format_table(table))
    plot(table, out)
    return rows


def _trace(result) -> dict:
    return {
        "workers": [{"name": w.name, "role": w.role, "parent": w.parent, "text": w.text} for w in result.workers],
        "events": [{"kind": e.kind, "step": e.step, "worker": e.worker, **e.info} for e in result.events],
    }


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["visibility"], r["workers"], r["budget"]), []).append(r)
    table = []
    for (visibility, workers, budget), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
        solved = sum(bool(r["correct"]) for r in rs)
        tokens = sum(r["tokens"] for r in rs)
        table.append({
            "visibility": visibility, "workers": workers, "budget": budget, "runs": len(rs),
            "errors": sum("error" in r for r in rs), "accuracy": solved / len(rs),
            "mean_tokens": tokens / len(rs), "mean_forward_passes": sum(r["forward_passes"] for r in rs) / len(rs),
            "mean_wall_time_s": sum(r["wall_time_s"] for r in rs) / len(rs),
            "tokens_per_solved": tokens / solved if solved else None,
        })
    return table


def write_summary(table: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["visibility"])
        writer.writeheader()
        writer.writerows(table)


def format_table(table: list[dict]) -> str:
    lines = [f"{'visibility':>10} {'W':>2} {'budget':>6} {'runs':>4} {'acc':>5} {'tokens':>7} {'fwd':>6} {'tok/solved':>10}"]
    for r in table:
        per = f"{r['tokens_per_solved']:.0f}" if r["tokens_per_solved"] else "-"
        lines.append(f"{r['visibility']:>10} {r['workers']:>2} {r['budget']:>6} {r['runs']:>4} {r['accuracy']:>5.2f} "
                     f"{r['mean_tokens']:>7.1f} {r['mean_forward_passes']:>6.1f} {per:>10}")
    return "\n".join(lines)


def plot(table: list[dict], out: Path) -> list[Path]:
    """accuracy_vs_forward_passes.png (one line per visibility x workers, over budgets) and
    tokens_per_solved.png."""
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend stays as it was

    paths = [out / "accuracy_vs_forward_passes.png", out / "tokens_per_solved.png"]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for (visibility, workers), rs in itertools.groupby(table, key=lambda r: (r["visibility"], r["workers"])):
        rs = sorted(rs, key=lambda r: r["mean_forward_passes"])
        ax.plot([r["mean_forward_passes"] for r in rs], [r["accuracy"] for r in rs], marker="o", label=f"{visibility}, W={workers}")
    ax.set_xlabel("forward passes (mean per task)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Accuracy against forward-pass budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    labels = [f"{r['visibility']}\nW={r['workers']} b={r['budget']}" for r in table]
    ax.bar(range(len(table)), [r["tokens_per_solved"] or 0 for r in table])
    ax.set_xticks(range(len(table)), labels, fontsize=7)
    ax.set_ylabel("tokens per solved task (0: none solved)")
    ax.set_title("Tokens per solved task")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    return paths
