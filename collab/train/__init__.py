"""Supervised fine-tuning that teaches a model to write a protocol's markers: task problems
(`collab.tasks`) rendered in the protocol, each worker trained on the view collab gives it
(`views`), LoRA with the transformers `Trainer` (`recipe`). `python -m collab train` runs it."""

from .data import DataConfig, build, prompt_ids
from .recipe import TrainConfig, collate, train
from .views import IGNORE, Example, examples, from_result

__all__ = ["DataConfig", "Example", "IGNORE", "TrainConfig", "build", "collate", "examples", "from_result", "prompt_ids",
           "train"]
