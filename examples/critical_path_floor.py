"""The critical path a parallel trace format allows at best: the solver's own traces of held-out
compound problems, forced token by token through the runtime (`collab.train.views.replay`), for
the sequential trace and the parallel one with two kinds of spawn line: the helper's task
(`heads="task"`, what the shipped adapter was trained on) and its number (`heads="index"`,
`collab.tasks.trace.index_heads`). No model decides anything here, so a trained model's critical
path is at best these. More columns shorten the forking root's own lines: one `<spawn>` tag
naming every helper, a number per line (the markers fan-out, `render(..., fanout=True)`; the
root's other lines as in the sequential trace); one tag with the helpers' tasks, with and without
the plan line before it (`spawn_first`: the format of `train --fanout compound --spawn-first
compound`); and, with a tag per helper, only the boxed answer after the join instead of
restating the parts' answers, then also no plan line before the spawns. Prints decode steps
until the final answer per problem and the ratios.

    python examples/critical_path_floor.py --n 30
"""

import argparse

from transformers import AutoTokenizer

from collab.evaluation import critical_steps
from collab.models import default_model_path
from collab.tasks import make, render
from collab.tasks.trace import Fork, Trace, index_heads, spawn_first
from collab.train.data import prompt_ids
from collab.train.views import replay


def steps(trace, question: str, tokenizer, protocol: str, fanout: bool = False) -> int:
    result = replay(render(trace, protocol, fanout), tokenizer, prompt_ids(question, tokenizer, protocol), visibility="none")
    return critical_steps(result)


def answer_only(trace: Trace, plan: bool = True) -> Trace:
    """The forking root's trace with the boxed answer as the fork's conclusion (no restating of
    the parts' answers), and without the plan line before the fork when `plan` is False."""
    *lines, boxed = trace.parts
    return Trace(tuple(Fork(p.tasks, p.children, boxed.text) if isinstance(p, Fork) else p
                       for p in lines if plan or isinstance(p, Fork)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30, help="held-out compound problems")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    rows = []
    labels = ("task heads", "index heads", "index heads, one tag", "task heads, one tag", "task heads, one tag, spawn first",
              "index heads, answer only", "index heads, answer only, no plan")
    print("parts | sequential | " + " | ".join(labels))
    for p in make("compound", args.n, seed=args.seed, split="test"):
        indexed = index_heads(p.parallel)
        row = (len(p.info["parts"]), *(steps(t, p.question, tokenizer, "markers", fanout)
                                       for t, fanout in ((p.sequential, False), (p.parallel, False), (indexed, False),
                                                         (indexed, True), (p.parallel, True),
                                                         (spawn_first(p.parallel), True), (answer_only(indexed), False),
                                                         (answer_only(indexed, plan=False), False))))
        rows.append(row)
        print(" | ".join(map(str, row)), flush=True)
    for label, keep in (("all", lambda r: True), ("4-6 parts", lambda r: r[0] >= 4)):
        kept = [r for r in rows if keep(r)]
        if kept:
            seq = sum(r[1] for r in kept)
            ratios = ", ".join(f"{name} {sum(r[i] for r in kept) / seq:.2f}x" for i, name in enumerate(labels, 2))
            print(f"{label} ({len(kept)}), the sequential critical path times: {ratios}")


if __name__ == "__main__":
    main()
