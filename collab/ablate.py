"""The visibility ablation: `python -m collab ablate`, the evaluation harness
(`collab.evaluation`) over a grid of visibility x workers x token budgets x seeds for one model.
Same rows, summary and plots as `python -m collab eval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import evaluation
from .evaluation import Task, load_tasks, summarize  # noqa: F401  (the ablation's names, kept)
from .views import resolve_visibility


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

    def arms(self, strategy: str = "hogwild", sample: bool = True) -> list[evaluation.Arm]:
        return evaluation.grid(strategies=[strategy], visibility=self.visibility, workers=self.workers,
                               budgets=self.budgets, sample=sample)


def run(model, tokenizer, tasks: list[Task], grid: Grid, out, *, strategy: str = "hogwild", sample: bool = True,
        progress: bool = True, generate: Callable | None = None, log=print, **kw) -> list[dict]:
    """The grid on one model; rows in out/runs.jsonl, out/summary.csv, plots. Returns every row."""
    return evaluation.run({"model": (model, tokenizer)}, tasks, grid.arms(strategy, sample), out, seeds=grid.seeds,
                          progress=progress, generate=generate, log=log, **kw)
