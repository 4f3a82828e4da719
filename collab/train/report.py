"""How a trained model behaves on held-out problems: does it spawn where it should (and only
there), do its helpers end with their done marker and get joined, is each token stored once,
is the answer right, and how long is the critical path (decode steps until the root ends)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..tasks import correct, make


@dataclass(slots=True)
class Row:
    task: str
    key: str
    spawned: bool
    helpers: int
    helpers_done: bool  # every helper ended at its done marker and was joined
    fed_once: bool  # tokens fed == distinct tokens stored
    correct: bool
    steps: int  # decode steps until the root's last token (the critical path)
    tokens: int  # tokens sampled over all workers
    answer: str | None


def run_problem(model, tokenizer, problem, strategy: str = "adaptive", max_new_tokens: int = 256) -> Row:
    from .. import api

    r = api.generate(model, problem.question, tokenizer=tokenizer, strategy=strategy, finisher=False,
                     max_new_tokens=max_new_tokens, do_sample=False, progress=False, seed=0)
    root, helpers = r.workers[0], r.workers[1:]
    joined = {c for e in r.events if e.kind == "join" for c in e.info["children"]}
    done = all(h.finish_reason.startswith("done marker") and h.index in joined for h in helpers)
    stored = sum(len(t) for t in r.blocks.values())
    return Row(problem.task, problem.key, bool(helpers), len(helpers), done, r.stats.tokens_fed == stored,
               r.answer is not None and correct(problem, r.answer), root.retire_step or r.stats.steps,
               r.stats.generated_tokens, r.answer)


def evaluate(model, tokenizer, tasks: dict[str, int], seed: int = 0, split: str = "test", **kw) -> list[Row]:
    return [run_problem(model, tokenizer, p, **kw)
            for offset, (task, n) in enumerate(sorted(tasks.items()))
            for p in make(task, n, seed=seed + 1000 * offset, split=split)]


def summary(rows: list[Row]) -> dict[str, dict]:
    """Per task: spawn rate, helpers done and joined, fed once, accuracy, mean critical path."""
    out = {}
    for task in sorted({r.task for r in rows}):
        mine = [r for r in rows if r.task == task]
        n = len(mine)
        out[task] = {"problems": n, "spawn_rate": sum(r.spawned for r in mine) / n,
                     "helpers_done": all(r.helpers_done for r in mine), "fed_once": all(r.fed_once for r in mine),
                     "accuracy": sum(r.correct for r in mine) / n, "steps": sum(r.steps for r in mine) / n}
    return out


def as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
