"""The critical path a parallel trace format allows at best: the solver's own traces of held-out
compound problems, forced token by token through the runtime (`collab.train.views.replay`), for
the sequential trace and the parallel one with two kinds of spawn line: the helper's task
(`heads="task"`, what the shipped adapter was trained on) and its number (`heads="index"`,
`collab.tasks.trace.index_heads`). No model decides anything here, so a trained model's critical
path is at best these. Prints decode steps until the final answer per problem and the ratios.

    python examples/critical_path_floor.py --n 30
"""

import argparse

from transformers import AutoTokenizer

from collab.evaluation import critical_steps
from collab.models import default_model_path
from collab.tasks import make, render
from collab.tasks.trace import index_heads
from collab.train.data import prompt_ids
from collab.train.views import replay


def steps(trace, question: str, tokenizer, protocol: str) -> int:
    result = replay(render(trace, protocol), tokenizer, prompt_ids(question, tokenizer, protocol), visibility="none")
    return critical_steps(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30, help="held-out compound problems")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    rows = []
    print("parts | sequential | task heads | index heads")
    for p in make("compound", args.n, seed=args.seed, split="test"):
        row = (len(p.info["parts"]), *(steps(t, p.question, tokenizer, "markers")
                                       for t in (p.sequential, p.parallel, index_heads(p.parallel))))
        rows.append(row)
        print(" | ".join(map(str, row)), flush=True)
    for label, keep in (("all", lambda r: True), ("4-6 parts", lambda r: r[0] >= 4)):
        kept = [r for r in rows if keep(r)]
        if kept:
            seq = sum(r[1] for r in kept)
            print(f"{label} ({len(kept)}): task heads {sum(r[2] for r in kept) / seq:.2f}x, "
                  f"index heads {sum(r[3] for r in kept) / seq:.2f}x the sequential critical path")


if __name__ == "__main__":
    main()
