"""The runs tests/test_tensor_parallel.py compares between one process and a tensor-parallel model.

Under a launcher, each rank loads the model sharded and writes what it got:

    torchrun --standalone --nproc-per-node 2 tests/tensor_parallel_runs.py MODEL_FOLDER OUT_FOLDER

writes OUT_FOLDER/rank{r}.json; the test imports `runs` for the one-process reference.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # scripted

import collab
from collab import memory, tensor_parallel
from scripted import CharTokenizer, Script

QUESTION = "What is 2 + 3?"
SPAWN_PROMPT = "Q: add 1 and 2, then double.\n"
SPAWN_SCRIPTS = [  # the root spawns two helpers, waits for them, joins them and ends
    "split. <spawn>find a</spawn><spawn>find b</spawn> I check. <wait>\nboth found. <done>",
    "\nHelper task: find a\na=1 <done>",
    "\nHelper task: find b\nb=2 <done>",
]


class RankSkew:
    """A logits processor that, on ranks other than 0, makes token 42 the likeliest: what a rank
    whose logits drifted would draw. The tokens are rank 0's all the same."""

    def __call__(self, input_ids, scores):
        if os.environ.get("RANK", "0") != "0":
            scores = scores.clone()
            scores[:, 42] = scores.max() + 10.0
        return scores


def settings(tokenizer, drawn_seed=None) -> dict:
    """Each run's arguments: greedy and sampled, "full" and "none", and a spawning protocol.
    "sampled-none" runs with `drawn_seed`: None under the launcher (each rank draws one, rank 0's
    is used), then rank 0's seed in the one-process reference."""
    chat = dict(prompt=QUESTION, tokenizer=tokenizer, workers=2, max_new_tokens=12, finisher=False)
    return {
        "greedy-full": dict(chat, visibility="full"),
        "greedy-none": dict(chat, visibility="none"),
        "sampled-full": dict(chat, visibility="full", do_sample=True, temperature=1.0, seed=7),
        "sampled-none": dict(chat, visibility="none", do_sample=True, temperature=1.0, seed=drawn_seed),
        "skewed": dict(chat, visibility="full", logits_processor=[RankSkew()]),
        "spawning": dict(prompt=SPAWN_PROMPT, tokenizer=CharTokenizer(), template=None, strategy="adaptive",
                         finisher=False, max_new_tokens=120,
                         logits_processor=[Script(len(SPAWN_PROMPT), SPAWN_SCRIPTS)]),
    }


def runs(model, tokenizer, drawn_seed=None) -> dict:
    """What each run of `collab.generate` gave: every worker's tokens, the events, the KV
    figures, the callback's calls; and, for a stream of the first run, its arena's head count
    and whether it showed progress."""
    out = {"kv_heads": tensor_parallel.kv_heads(model), "bytes_per_token": memory.bytes_per_token(model)}
    for name, kw in settings(tokenizer, drawn_seed).items():
        calls = []
        r = collab.generate(model, kw.pop("prompt"), callback=calls.append, **{"seed": 0, "progress": False, **kw})
        out[name] = {
            "workers": [[w.name, w.parent, w.token_ids, w.finish_reason] for w in r.workers],
            "events": [[e.kind, e.worker, e.step] for e in r.events],
            "seed": r.seed,
            "kv_tokens": r.stats.kv_tokens,
            "kv_bytes": r.stats.kv_bytes,  # from the arena's shapes
            "callbacks": len(calls),
        }
    kw = {"seed": 0, **settings(tokenizer)["greedy-full"]}
    calls = []
    with collab.stream(model, kw.pop("prompt"), progress=True, callback=calls.append, **kw) as stream:
        for _ in stream:
            pass
        run = stream._run  # the run's arena and options, beyond what the result says
    out["stream"] = {
        "workers": [[w.name, w.parent, w.token_ids, w.finish_reason] for w in stream.result.workers],
        "arena_heads": sorted({k.shape[1] for k in run.runner.cache.keys if k is not None}),
        "progress": run.options.progress,
        "callbacks": len(calls),
    }
    return out


def main(model_folder: str, out_folder: str) -> None:
    model, tokenizer = collab.load(model_folder, tp_plan="auto")
    got = runs(model, tokenizer)
    got["tp_size"] = tensor_parallel.degree(model)
    Path(out_folder, f"rank{os.environ['RANK']}.json").write_text(json.dumps(got))


if __name__ == "__main__":
    main(*sys.argv[1:])
