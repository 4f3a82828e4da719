"""Task sources for the evaluation harness: collab's generators (held-out splits), the builtin
set, a JSONL file, or a local `datasets` dataset. Pure Python, no torch.

    >>> [t.kind for t in load_tasks("tasks:simple=2,countdown3=1")]
    ['countdown3', 'simple', 'simple']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..answers import equivalent
from ..tasks import TASKS, correct, counts, make


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    question: str
    answer: str
    kind: str = "qa"  # the generator's name, or "qa" for question/answer files
    parallel: bool | None = None  # does the problem gain from going parallel (None: not stated)
    problem: object = None  # a generator's `Problem`: checked by its own rule (a Countdown expression)

    def correct(self, answer: str | None) -> bool:
        if answer is None:
            return False
        return correct(self.problem, answer) if self.problem is not None else equivalent(answer, self.answer)


def load_tasks(source: str, limit: int | None = None, seed: int = 0) -> list[Task]:
    """'builtin'; 'tasks:NAME=N,...[@split]' (collab's generators, held-out 'test' split by
    default); a JSONL path (`question`, `answer`, optional `id` and `parallel`); or
    'hf:NAME[:SPLIT]' (a dataset `datasets` can load locally, `question` and `answer` columns).
    Errors name the line and the fix."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"task source {source!r}: give 'builtin', 'tasks:NAME=N,...', a JSONL path or 'hf:NAME'")
    if source == "builtin":
        text = resources.files("collab").joinpath("tasks/builtin.jsonl").read_text(encoding="utf-8")
        tasks = _parse_jsonl(text, "builtin tasks")
    elif source.startswith("tasks:"):
        tasks = _generated(source[6:], seed)
    elif source.startswith("hf:"):
        tasks = _from_datasets(source[3:])
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"task file {source!r} does not exist; pass a JSONL path, 'builtin', "
                                    "'tasks:NAME=N' or 'hf:NAME'")
        tasks = _parse_jsonl(path.read_text(encoding="utf-8"), str(path))
    if not tasks:
        raise ValueError(f"{source!r} holds no tasks")
    return tasks[:limit] if limit else tasks


def _generated(spec: str, seed: int) -> list[Task]:
    spec, _, split = spec.partition("@")
    asked = counts(spec, "task source 'tasks:'")
    # each task drawn from its own seed (its place among all tasks): the same problems whatever else is asked
    names = sorted(TASKS)
    return [Task(p.key, p.question, p.answer, name, name != "simple", p)
            for name, n in sorted(asked.items())
            for p in make(name, n, seed=seed + 1000 * names.index(name), split=split or "test")]


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
        answer = row["answer"]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
            raise ValueError(f"{name} line {n}: answer {answer!r} cannot be compared; give a non-empty string or a number")
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise ValueError(f"{name} line {n}: question {row['question']!r} must be non-empty text")
        parallel = row.get("parallel")
        if parallel is not None and not isinstance(parallel, bool):
            raise ValueError(f"{name} line {n}: parallel={parallel!r} must be true, false or absent")
        task = Task(str(row.get("id", n)), row["question"], str(answer), str(row.get("kind", "qa")), parallel)
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
    missing = [c for c in ("question", "answer") if c not in data.column_names]
    if missing:
        raise ValueError(f"dataset {name!r} has no column(s) {', '.join(missing)}; it needs 'question' and 'answer'")
    return [Task(str(i), str(r["question"]), str(r["answer"])) for i, r in enumerate(data)]
