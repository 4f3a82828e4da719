"""The evaluation harness (`python -m collab eval`, `collab.eval`): arms (model, strategy,
visibility, workers, per-worker budget, samples, helpers' sibling visibility) x tasks x seeds.
Each run is one JSONL row with every worker's text; the summary gives accuracy with its
interval, tokens, decode steps on the critical path, forward passes, wall time, spawned workers,
spawning where none is needed, and duplicated work; plots in the shape of APR's figures.
`python -m collab ablate` is this harness over a visibility x workers x budget grid.

- `sources.py`: tasks (generators' held-out splits, builtin, JSONL, a local dataset);
- `grid.py`: `Arm`, `grid(...)`, checks before compute;
- `runner.py`: `run(models, tasks, arms, out, seeds=...)`, rows, resume, the time estimate;
- `shard.py`: the grid split over the processes torchrun or `accelerate launch` starts, merged;
- `summary.py`, `plots.py`: the table, intervals, duplicated work, figures.
"""

from .grid import Arm, grid
from .runner import critical_steps, report, run, run_one
from .shard import Shard
from .sources import Task, load_tasks
from .summary import format_table, overlap, paired, summarize, write_summary

__all__ = ["Arm", "Shard", "Task", "critical_steps", "format_table", "grid", "load_tasks", "overlap", "paired", "report", "run", "run_one", "summarize", "write_summary"]
