"""The training set: task problems, their traces rendered in a protocol, each worker's examples
on the views collab gives it (`views.examples`), as a `datasets.Dataset`.

The prompt is the one `collab.generate` builds for the protocol's strategy preset (chat template,
the preset's system prompt), so a trained model sees at inference what it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..strategies import STRATEGIES
from ..tasks import TASKS, files, make, render
from ..tasks.trace import index_heads, spawn_first
from ..template import encode
from .views import examples

PRESET = {"markers": "adaptive"}  # the strategy that runs each protocol (others share its name)
TRACES = ("parallel", "sequential")
HEADS = ("task", "index")  # what a spawn line names: the helper's task, or its number (`index_heads`)
UNNUMBERED = ("countdown3", "countdown4")  # tasks whose forks are not the question's numbered parts


@dataclass(slots=True)
class DataConfig:
    protocol: str = "markers"
    tasks: dict[str, int] = field(default_factory=lambda: {"compound": 300, "countdown4": 150, "countdown3": 50, "simple": 200})
    traces: str = "parallel"  # or "sequential": the same problems, no forks (the baseline)
    seed: int = 0
    max_tokens: int = 768  # longest example kept (tokens); longer ones are dropped and counted
    file: str | None = None  # a JSONL of your own traces (`collab.tasks.files`), trained besides `tasks`
    heads: str | dict[str, str] = "task"  # "index": spawn lines say "part i", each helper restates its task first;
    # a dict chooses per task ({"compound": "index"}; tasks it leaves out keep "task")
    fanout: bool | tuple[str, ...] = False  # markers: one <spawn> tag starts a fork's helpers, a task per line (not a
    # tag each); True for every task, or the tasks that do (("compound",): Countdown keeps a tag per node)
    spawn_first: tuple[str, ...] = ()  # tasks whose forking root spawns at its first token (`spawn_first`: no plan line)

    def __post_init__(self):
        unknown = sorted(set(self.tasks) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown task {unknown[0]!r}; valid tasks are {', '.join(repr(t) for t in sorted(TASKS))}")
        if self.traces not in TRACES:
            raise ValueError(f"traces={self.traces!r}: choose 'parallel' or 'sequential'")
        chosen = self.heads.values() if isinstance(self.heads, dict) else [self.heads]
        for kind in chosen:
            if kind not in HEADS:
                raise ValueError(f"heads={kind!r}: choose 'task' (a spawn line says the helper's task) or 'index' (its number)")
        if isinstance(self.heads, dict):
            unknown = sorted(set(self.heads) - set(self.tasks))
            if unknown:
                raise ValueError(f"heads names task {unknown[0]!r}, which is not in tasks ({', '.join(map(repr, self.tasks))}); "
                                 f"name only tasks being trained")
        unnumbered = [t for t in UNNUMBERED if t in self.tasks and self.head(t) == "index"]
        if unnumbered:
            raise ValueError(f"heads='index' with task {unnumbered[0]!r}: its helpers' first moves are not numbered in the "
                             f"question, so 'part i' cannot tell a helper its move; leave it out, use heads='task', or "
                             f"choose per task (heads={{'compound': 'index'}})")
        if isinstance(self.fanout, list):
            self.fanout = tuple(self.fanout)
        if not (self.fanout in (False, True) or isinstance(self.fanout, tuple)) or (self.fanout and self.protocol != "markers"):
            raise ValueError(f"fanout={self.fanout!r} with protocol {self.protocol!r}: the one-tag spawn is the markers "
                             f"protocol's; give fanout=False (or protocol='markers'), True, or a tuple of task names")
        self.spawn_first = tuple(self.spawn_first) if isinstance(self.spawn_first, (list, tuple)) else self.spawn_first
        for name, chosen in (("fanout", self.fanout if isinstance(self.fanout, tuple) else ()),
                             ("spawn_first", self.spawn_first)):
            if not isinstance(chosen, tuple) or not all(isinstance(t, str) for t in chosen):
                raise ValueError(f"{name}={chosen!r}: give a tuple of task names, e.g. ('compound',)")
            unknown = sorted(set(chosen) - set(self.tasks))
            if unknown:
                raise ValueError(f"{name} names task {unknown[0]!r}, which is not in tasks ({', '.join(map(repr, self.tasks))}); "
                                 f"name only tasks being trained")
        strategy = PRESET.get(self.protocol, self.protocol)
        if strategy not in STRATEGIES or STRATEGIES[strategy].protocol != self.protocol:
            valid = sorted({s.protocol for s in STRATEGIES.values() if s.protocol})
            raise ValueError(f"unknown protocol {self.protocol!r}; valid protocols are {', '.join(map(repr, valid))}")
        if self.file is not None:
            files.load(self.file)  # a missing file or a malformed line is named before any compute
        if not isinstance(self.max_tokens, int) or self.max_tokens < 16:
            raise ValueError(f"max_tokens={self.max_tokens!r}: give an int >= 16 (the longest example kept, in tokens)")

    def head(self, task: str) -> str:
        """What a spawn line names in `task`'s traces: 'task' or 'index'."""
        return self.heads.get(task, "task") if isinstance(self.heads, dict) else self.heads

    def fans(self, task: str) -> bool:
        """Whether `task`'s forks start their helpers with one `<spawn>` tag."""
        return task in self.fanout if isinstance(self.fanout, tuple) else self.fanout


def prompt_ids(question: str, tokenizer, protocol: str) -> list[int]:
    """The prompt `collab.generate(..., strategy=<the protocol's preset>)` builds for `question`."""
    preset = STRATEGIES[PRESET.get(protocol, protocol)]
    return encode(question, "default", tokenizer, 1, system=preset.system, headers=preset.headers).prompt_ids


def build(config: DataConfig, tokenizer, split: str = "train"):
    """A `datasets.Dataset` of rows {input_ids, labels, position_ids, task, key, worker}."""
    from datasets import Dataset

    rows, dropped = [], 0
    problems = [p for offset, (task, n) in enumerate(sorted(config.tasks.items()))
                for p in make(task, n, seed=config.seed + 1000 * offset, split=split)]
    if config.file is not None:
        problems += files.load(config.file)
    for problem in problems:
        trace = problem.parallel if config.traces == "parallel" else problem.sequential
        if config.head(problem.task) == "index":
            trace = index_heads(trace)
        if problem.task in config.spawn_first:
            trace = spawn_first(trace)
        rendering = render(trace, config.protocol, config.fans(problem.task))
        for e in examples(rendering, tokenizer, prompt_ids(problem.question, tokenizer, config.protocol),
                          protocol=config.protocol, visibility="none"):
            if len(e.input_ids) > config.max_tokens:
                dropped += 1
                continue
            rows.append({"input_ids": e.input_ids, "labels": e.labels, "position_ids": e.position_ids,
                         "task": problem.task, "key": problem.key, "worker": e.worker})
    data = Dataset.from_list(rows)
    data.info.description = json.dumps({"config": asdict(config), "dropped": dropped})
    return data


def save_rows(data, path: Path) -> None:
    """The rows as JSON lines, one example a line (kept beside a run to reproduce it)."""
    with open(path, "w") as f:
        for row in data:
            f.write(json.dumps(row) + "\n")
