"""Command line: `python -m collab "a question"`, `python -m collab bench`, `eval`, `ablate` and `train`."""

from __future__ import annotations

import argparse
import sys

from .config import MAX_WORKERS
from .strategies import STRATEGIES


def _generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m collab", description="Several workers of one model answer together.")
    p.add_argument("prompt", help="the question or task")
    p.add_argument("--model", default=None, help="model id or local path (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--workers", type=int, default=2, help=f"concurrent workers, 1..{MAX_WORKERS} (default 2)")
    p.add_argument("--visibility", default=None, help="full, none, step, combined or lag:K (default: the strategy's, else full)")
    p.add_argument("--strategy", default=None, choices=sorted(STRATEGIES), help="a preset (default: none)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--raw", action="store_true", help="raw mode: no chat template, no worker headers")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop-repeats", type=int, default=None, metavar="N",
                   help="end a worker once a span of its tokens repeats N times in a row (a greedy loop); default off")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--adapter", default=None, help='a LoRA adapter: "parallel" (shipped) or a peft adapter folder')
    p.add_argument("--tp", action="store_true",
                   help="under torchrun --nproc-per-node N: shard the model over the N processes (transformers' tensor "
                        "parallelism, tp_plan='auto'); rank 0 prints")
    return p


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m collab train",
                                description="Teach a model a protocol's markers: LoRA SFT on solver-written traces.")
    p.add_argument("--out", required=True, help="run folder: checkpoints, rows.jsonl, collab_train.json, adapter/")
    p.add_argument("--model", default=None, help="base model (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--protocol", default="markers")
    p.add_argument("--tasks", default="compound=300,countdown4=150,countdown3=50,simple=200",
                   help="task=problems,... (tasks: countdown3, countdown4, compound, simple)")
    p.add_argument("--traces", default="parallel", choices=["parallel", "sequential"])
    p.add_argument("--heads", default="task",
                   help="what a spawn line says: 'task' (the helper's task) or 'index' (its number, 'part 2', with the helper "
                        "restating its task); per task as task=kind,... (e.g. compound=index; the others keep 'task')")
    p.add_argument("--fanout", nargs="?", const="all", default=None, metavar="TASKS",
                   help="markers: the root starts a fork's helpers with one <spawn> tag, a task per line (not a tag each); "
                        "alone for every task, or for the tasks named (e.g. --fanout compound)")
    p.add_argument("--spawn-first", default="", metavar="TASKS",
                   help="tasks whose forking root spawns at its first token, without the plan line before its fork "
                        "(e.g. compound)")
    p.add_argument("--trace-file", default=None, help="a JSONL of your own traces (collab.tasks.files), trained besides --tasks")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--epochs", type=float, default=None, help="passes over the data (sets the steps; overrides --steps)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--save-steps", type=int, default=25)
    p.add_argument("--max-tokens", type=int, default=768, help="longest example kept, in tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from the last checkpoint")
    p.add_argument("--init", default=None, metavar="ADAPTER",
                   help='start from an adapter\'s weights ("parallel" or a peft folder): more passes over its data')
    return p


def _heads(spec: str) -> str | dict[str, str]:
    """One spawn-line kind (`index`) or one per task (`compound=index,simple=index`)."""
    if "=" not in spec:
        return spec
    out = {}
    for item in spec.split(","):
        name, _, kind = (s.strip() for s in item.partition("="))
        if not name or not kind:
            raise ValueError(f"--heads item {item!r}: write task=kind, e.g. compound=index")
        out[name] = kind
    return out


def _names(spec: str | None) -> bool | tuple[str, ...]:
    """A task list option: absent (False), given alone ("all": True), or task names, comma-separated."""
    if spec is None:
        return False
    if spec == "all":
        return True
    return tuple(s.strip() for s in spec.split(",") if s.strip())


def train_main(argv: list[str]) -> int:
    from . import models
    from .tasks import counts
    from .train import DataConfig, TrainConfig, train

    args = _train_parser().parse_args(argv)
    tasks = counts(args.tasks, "--tasks") if args.tasks else {}
    data = DataConfig(protocol=args.protocol, tasks=tasks, traces=args.traces, heads=_heads(args.heads), seed=args.seed,
                      max_tokens=args.max_tokens, file=args.trace_file, fanout=_names(args.fanout),
                      spawn_first=_names(args.spawn_first) or ())
    config = TrainConfig(data=data, steps=args.steps, epochs=args.epochs, batch=args.batch, lr=args.lr, rank=args.rank,
                         save_steps=args.save_steps, seed=args.seed, init=args.init)  # validated before loading
    model, tokenizer = models.load(args.model)
    output = train(model, tokenizer, config, args.out, resume=not args.fresh)
    print(f"trained {output.global_step} steps, final loss {output.training_loss:.4f}; adapter in {args.out}/adapter")
    return 0


def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m collab bench", description="collab against HF generate, side by side.")
    p.add_argument("--model", default=None, help="model id or local path (default: the embedded model)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--context", type=int, nargs="+", default=[256], help="prompt lengths in tokens")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per worker")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best is kept")
    p.add_argument("--json", default=None, help="where to write the results (default bench-results.json, gpu-check.json)")
    p.add_argument("--gpu-check", action="store_true",
                   help="on a CUDA GPU: the Triton kernel's bandwidth against the card's peak (4k and 32k context, 4 workers), "
                        "exactness against the reference kernel, tokens/s against HF generate in bf16; one JSON file")
    p.add_argument("--max-minutes", type=float, default=8.0, help="--gpu-check: skip the sections left after this long")
    return p


def _ablate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m collab ablate", description="A visibility x workers x budget x seed grid.")
    p.add_argument("--tasks", default="builtin", help="'builtin', a JSONL file (question, answer), or hf:NAME[:SPLIT]")
    p.add_argument("--limit", type=int, default=None, help="use only the first N tasks")
    p.add_argument("--model", default=None, help="model id or local path (default: the embedded model)")
    p.add_argument("--visibility", nargs="+", default=["full", "none", "step"])
    p.add_argument("--workers", type=int, nargs="+", default=[2])
    p.add_argument("--budgets", type=int, nargs="+", default=[32, 64], help="max new tokens per worker")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--strategy", default="hogwild", help="the preset each run uses (default hogwild: a finisher answers)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding (default: sampling, temperature 0.7)")
    p.add_argument("--out", default="ablation", help="output folder (runs.jsonl, summary.csv, plots)")
    p.add_argument("--baseline", metavar="ARM",
                   help="also compare every arm with this one on the runs both made (paired differences, paired.csv)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true")
    return p


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m collab eval",
        description="Arms (models x strategies x visibility x workers x budgets x samples x siblings x repetition "
                    "penalties x loop stops) x tasks x seeds.")
    p.add_argument("--tasks", default="tasks:countdown4=10,compound=10,simple=10",
                   help="'tasks:NAME=N,...[@split]' (collab's generators, held-out split), 'builtin', a JSONL file or hf:NAME[:SPLIT]")
    p.add_argument("--limit", type=int, default=None, help="use only the first N tasks")
    p.add_argument("--task-seed", type=int, default=0, help="seed of the generated problems")
    p.add_argument("--models", nargs="+", default=["default"],
                   help="NAME=MODEL[+ADAPTER] (MODEL: 'default' for the embedded model, a hub id or folder; "
                        "ADAPTER: 'parallel' or a peft folder), or just MODEL")
    p.add_argument("--strategy", nargs="+", default=["adaptive"])
    p.add_argument("--visibility", nargs="+", default=["full"])
    p.add_argument("--workers", type=int, nargs="+", default=[1])
    p.add_argument("--budgets", type=int, nargs="+", default=[256], help="new tokens per worker (the per-thread limit)")
    p.add_argument("--samples", type=int, nargs="+", default=[1], help="> 1: sampled runs voted (self-consistency)")
    p.add_argument("--siblings", nargs="+", default=["trained"], choices=["trained", "on", "off"],
                   help="markers helpers see each other's live work (adaptive strategy)")
    p.add_argument("--repetition-penalty", type=float, nargs="+", default=[None], metavar="R",
                   help="transformers' repetition penalty (> 0; 1.0 disables it); default none")
    p.add_argument("--stop-repeats", type=int, nargs="+", default=[None], metavar="N",
                   help="end a worker once a span of its tokens repeats N times in a row (>= 2; reason 'repeats'); default off")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--sample", action="store_true", help="sample (temperature 0.7) instead of greedy decoding")
    p.add_argument("--finisher", choices=["preset", "on", "off"], default="off",
                   help="a final-answer pass: as the strategy preset says, or forced")
    p.add_argument("--max-minutes", type=float, default=60.0, help="refuse a grid estimated to run longer (see --yes)")
    p.add_argument("--yes", action="store_true", help="run even when the estimate is over --max-minutes")
    p.add_argument("--out", default="eval", help="output folder (runs.jsonl, summary.csv, plots)")
    p.add_argument("--report", action="store_true",
                   help="only summarize and plot the rows already in --out (every runs*.jsonl there, merged)")
    p.add_argument("--baseline", metavar="ARM",
                   help="also compare every arm with this one on the runs both made (paired differences, paired.csv)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true")
    return p


DEVICE_HELP = ("where each process loads its model: 'auto' (this process's GPU, cuda:LOCAL_RANK under torchrun or "
               "accelerate launch, when CUDA is there; else the CPU), 'cpu', or a device such as 'cuda:1'")


def _device(name: str) -> str:
    """The device this process loads its model on (one model per process under a launcher)."""
    import os

    import torch

    if name != "auto":
        return name
    if not torch.cuda.is_available():
        return "cpu"
    local = os.environ.get("LOCAL_RANK", "0")
    if not local.isdigit() or int(local) >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK={local!r} but {torch.cuda.device_count()} GPU(s) are visible: launch at most one "
                         "process per GPU (torchrun --nproc-per-node, accelerate launch --num_processes), or pass --device")
    return f"cuda:{local}"


def _load(model, adapter, device: str):
    from . import models

    if device == "cpu":
        return models.load(model, adapter=adapter)
    return models.load(model, adapter=adapter, device_map={"": device})


def _model_specs(specs: list[str]) -> dict[str, tuple[str | None, str | None]]:
    out = {}
    for spec in specs:
        name, eq, rest = spec.partition("=")
        name, rest = (name, rest) if eq else (spec, spec)
        model, _, adapter = rest.partition("+")
        if not name or not model:
            raise ValueError(f"--models item {spec!r}: write NAME=MODEL[+ADAPTER], e.g. par=default+parallel")
        if name in out:
            raise ValueError(f"--models: the name {name!r} is given twice")
        out[name] = (None if model == "default" else model, adapter or None)
    return out


def eval_main(argv: list[str]) -> int:
    from . import evaluation, models

    args = _eval_parser().parse_args(argv)
    if args.report:
        evaluation.report(None, args.out, baseline=args.baseline)
        print(f"wrote {args.out}/summary.csv and the plots")
        return 0
    specs = _model_specs(args.models)
    finisher = {"preset": None, "on": True, "off": False}[args.finisher]
    arms = evaluation.grid(list(specs), args.strategy, args.visibility, args.workers, args.budgets, args.samples,
                           args.siblings, args.sample, finisher, args.repetition_penalty,
                           args.stop_repeats)
    for arm in arms:  # validated before loading
        arm.check(specs)
    tasks = evaluation.load_tasks(args.tasks, args.limit, seed=args.task_seed)
    for model, adapter in specs.values():
        if adapter is not None:
            models.adapter_path(adapter)
    shard, device = evaluation.Shard.from_env(), _device(args.device)
    loaded = {name: _load(model, adapter, device) for name, (model, adapter) in specs.items()}
    evaluation.run(loaded, tasks, arms, args.out, seeds=args.seeds, progress=not args.no_progress,
                   max_minutes=args.max_minutes, yes=args.yes, shard=shard, baseline=args.baseline)
    print(f"wrote {args.out}/{shard.rows_file}" + (", summary.csv and the plots" if shard.rank == 0 else ""))
    return 0


def space_main(argv: list[str]) -> int:
    from . import space

    p = argparse.ArgumentParser(prog="python -m collab space", description="Write a Hugging Face Space folder that deploys as pushed.")
    p.add_argument("out", help="the folder to write (new or empty)")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    args = p.parse_args(argv)
    wheel = space.build(args.out, force=args.force)
    print(f"wrote the Space to {args.out} (collab as {wheel.name}); push the folder to a Space repository")
    return 0


def ablate_main(argv: list[str]) -> int:
    from . import ablate, evaluation

    args = _ablate_parser().parse_args(argv)
    grid = ablate.Grid(args.visibility, args.workers, args.budgets, args.seeds)  # validated before loading
    tasks = ablate.load_tasks(args.tasks, args.limit)
    shard = evaluation.Shard.from_env()
    model, tokenizer = _load(args.model, None, _device(args.device))
    ablate.run(model, tokenizer, tasks, grid, args.out, strategy=args.strategy, sample=not args.greedy,
               progress=not args.no_progress, shard=shard, baseline=args.baseline)
    done = ", summary.csv, accuracy_vs_forward_passes.png, tokens_per_solved.png" if shard.rank == 0 else ""
    print(f"wrote {args.out}/{shard.rows_file}{done}")
    return 0


def generate_main(argv: list[str]) -> int:
    from . import api, models
    from .tensor_parallel import reports

    args = _generate_parser().parse_args(argv)
    adapter = args.adapter
    if adapter is None and args.model is None and args.strategy == "adaptive" and models.has_adapter("parallel"):
        adapter = "parallel"  # the default model taught to spawn with the markers protocol
    model, tokenizer = models.load(args.model, adapter=adapter, tp_plan="auto" if args.tp else None)
    try:
        result = api.generate(
            model,
            args.prompt,
            tokenizer=tokenizer,
            workers=args.workers,
            visibility=args.visibility,
            strategy=args.strategy,
            template=None if args.raw else "default",
            max_new_tokens=args.max_new_tokens,
            do_sample=args.sample or None,
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            stop_repeats=args.stop_repeats,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except api.Interrupted as stop:  # Ctrl-C: what each worker wrote so far, marked, exit 130
        if reports(model):
            show(stop.result)
            print("--- interrupted: the run stopped early; above is what each worker wrote", file=sys.stderr)
        return 130
    if reports(model):  # a tensor-parallel run: every rank has the result, rank 0 prints it
        show(result)
    return 0


def show(result) -> None:
    """Each worker's text, the answer and the stats, as the command line prints a run."""
    for worker in result.workers:
        parent = f", child of {result.workers[worker.parent].name}" if worker.parent is not None else ""
        print(f"=== {worker.name} ({len(worker.token_ids)} tokens, {worker.finish_reason}{parent})")
        print((worker.text or "").strip())
        print()
    if result.answer is not None:
        print(f"=== answer: {result.answer}")
    s = result.stats
    print(
        f"--- {len(result.workers)} workers, {s.generated_tokens} tokens in {s.wall_time_s:.1f} s "
        f"({s.tokens_per_s:.1f} tok/s), {s.forward_passes} forward passes, "
        f"{s.kv_tokens} KV tokens ({s.kv_bytes / 2**20:.1f} MiB), seed {result.seed}"
        + ("" if result.complete else ", partial (interrupted)")
    )


def bench_main(argv: list[str]) -> int:
    from . import bench, models

    args = _bench_parser().parse_args(argv)
    if args.gpu_check:  # refused before anything loads where there is no CUDA GPU
        from . import gpu_check

        return gpu_check.run(args.json or "gpu-check.json", args.model, args.max_minutes)
    path = args.json or "bench-results.json"
    model, tokenizer = models.load(args.model)
    bench.check_args(model, args.workers, args.context, args.tokens)
    print(f"model {args.model or models.DEFAULT_MODEL}, {args.tokens} new tokens per worker, greedy, EOS ignored")
    rows = bench.run(model, tokenizer, args.workers, args.context, args.tokens, args.rounds)
    bench.write_json(rows, path, args.model or models.DEFAULT_MODEL)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "bench":
            return bench_main(argv[1:])
        if argv and argv[0] == "ablate":
            return ablate_main(argv[1:])
        if argv and argv[0] == "space":
            return space_main(argv[1:])
        if argv and argv[0] == "eval":
            return eval_main(argv[1:])
        if argv and argv[0] == "train":
            return train_main(argv[1:])
        return generate_main(argv)
    except (ValueError, TypeError, ModuleNotFoundError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"collab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
