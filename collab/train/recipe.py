"""The recipe: LoRA (peft) on a model's attention projections, trained with the transformers
`Trainer` on `data.build` rows, loss on each worker's own sampled tokens only. Checkpoints every
`save_steps`, resumes from the last one, seeds the data and the run, shows a progress bar with
the loss, and saves the run's config beside the adapter.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data import DataConfig, build, save_rows
from ..models import VIEWS, adapter_digest, base_fingerprint, check_base
from .views import IGNORE


@dataclass(slots=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 300  # optimizer steps
    epochs: float | None = None  # if given, the steps are the passes over the data it makes (rounded up)
    batch: int = 8  # examples per optimizer step (gradient accumulation over single examples)
    lr: float = 2e-4
    rank: int = 16
    alpha: int = 32
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    save_steps: int = 25
    seed: int = 0
    init: str | None = None  # an adapter (shipped name or folder) whose weights training starts from: more passes

    def __post_init__(self):
        for name in ("steps", "batch", "rank", "save_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: give an int >= 1")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, float))
                                        or not 0 < self.epochs <= 1000):
            raise ValueError(f"epochs={self.epochs!r}: give a number of passes over the data, > 0")
        if self.init is not None and not isinstance(self.init, str):
            raise ValueError(f"init={self.init!r}: give a shipped adapter's name or a peft adapter folder")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r}: give a positive learning rate")


def collate(rows: list[dict]) -> dict:
    """Right-pad a batch: pad tokens are masked out and carry no loss."""
    import torch

    n = max(len(r["input_ids"]) for r in rows)
    pad = lambda key, value: torch.tensor([r[key] + [value] * (n - len(r[key])) for r in rows])  # noqa: E731
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (n - len(r["input_ids"])) for r in rows])
    return {"input_ids": pad("input_ids", 0), "labels": pad("labels", IGNORE), "position_ids": pad("position_ids", 0),
            "attention_mask": mask}


def train(model, tokenizer, config: TrainConfig, out: str | Path, resume: bool = True, callbacks=()):
    """Train a LoRA adapter on `model` (left as it was: the adapter is trained on a copy's
    wrappers and saved to `out`); returns the `Trainer`'s final training output."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    out = Path(out)
    init = check_base(config.init, model) if config.init is not None else None  # refused before any compute
    if init is not None:
        rank = json.loads((init / "adapter_config.json").read_text()).get("r")
        if rank != config.rank:
            raise ValueError(f"rank={config.rank} but the init adapter {config.init!r} has rank {rank}: pass --rank {rank}")
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    data = build(config.data, tokenizer)
    if len(data) == 0:
        raise ValueError(f"no example fits data.max_tokens={config.data.max_tokens}: raise it or use shorter tasks")
    save_rows(data, out / "rows.jsonl")
    steps = config.steps if config.epochs is None else math.ceil(config.epochs * len(data) / config.batch)
    (out / "collab_train.json").write_text(json.dumps({"train": asdict(config), "examples": len(data),
                                                       "tokens": sum(len(r) for r in data["input_ids"]), "steps": steps,
                                                       "base": base_fingerprint(model),
                                                       "init": init and f"{init.name}@{adapter_digest(init)}"},
                                                      indent=1, default=list))
    grads, training = {n: p.requires_grad for n, p in model.named_parameters()}, model.training
    if init is None:
        lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=list(config.targets), lora_dropout=0.0,
                          task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, lora)
    else:  # the adapter's own LoRA config (its alpha and targets, not the config's) and weights, trainable
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, str(init), is_trainable=True)
    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=1,
        gradient_accumulation_steps=config.batch, learning_rate=config.lr, lr_scheduler_type="cosine",
        warmup_steps=min(20, steps // 10), logging_steps=5, save_steps=config.save_steps, save_total_limit=2,
        seed=config.seed, data_seed=config.seed, report_to=[], use_cpu=True, remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=peft_model, args=args, train_dataset=data.remove_columns(["task", "key", "worker"]),
                      data_collator=collate, callbacks=list(callbacks))
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    output = trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None)
    peft_model.save_pretrained(out / "adapter")
    (out / "adapter" / "collab_base.json").write_text(json.dumps(base_fingerprint(model)))
    # helpers are trained blind to their siblings (data.build's views): runs by protocol name use the same
    (out / "adapter" / VIEWS).write_text(json.dumps({"protocol": config.data.protocol, "siblings": False, "max_depth": 1}))
    peft_model.unload()  # the caller's model as it was: no LoRA layers, its flags restored
    for name, p in model.named_parameters():
        p.requires_grad_(grads[name])
    model.train(training)
    return output
