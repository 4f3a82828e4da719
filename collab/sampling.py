"""Per-worker sampling through transformers' `GenerationConfig` and `LogitsProcessor`s.

Each worker owns its processors' view of the sequence (prompt + its own block) and its own
`torch.Generator`, seeded from the run seed and the worker's index, so a worker's tokens do not
depend on how many other workers share its batch or in which order they are fed.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

_SEED_MIX = 0x9E3779B97F4A7C15  # golden-ratio increment: well-spread per-worker seeds


def resolve_config(model, **overrides) -> GenerationConfig:
    """The model's generation config (or `model` itself, when it is a GenerationConfig) with the
    non-None `overrides` applied."""
    base = model if isinstance(model, GenerationConfig) else getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    config.update(**{k: v for k, v in overrides.items() if v is not None})
    if config.do_sample is None:
        config.do_sample = False
    _check(config)
    return config


def _check(config: GenerationConfig) -> None:
    t, p, k, r = config.temperature, config.top_p, config.top_k, config.repetition_penalty
    if t is not None and not t > 0:
        raise ValueError(f"temperature must be > 0, got {t}; for greedy decoding pass do_sample=False")
    if p is not None and not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}; 1.0 disables it")
    if k is not None and k < 0:
        raise ValueError(f"top_k must be >= 0, got {k}; 0 disables it")
    if r is not None and not r > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {r}; 1.0 disables it")


def build_processors(config: GenerationConfig, user: list | None) -> LogitsProcessorList:
    """Repetition penalty, then the user's processors, then the sampling warpers (HF's order).
    transformers' classes validate their arguments and say what to pass instead."""
    out = LogitsProcessorList()
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(penalty=config.repetition_penalty))
    out.extend(user or [])
    if config.do_sample:
        if config.temperature is not None and config.temperature != 1.0:
            out.append(TemperatureLogitsWarper(config.temperature))
        if config.top_k is not None and config.top_k != 0:
            out.append(TopKLogitsWarper(top_k=config.top_k))
        if config.top_p is not None and config.top_p < 1.0:
            out.append(TopPLogitsWarper(top_p=config.top_p))
    return out


class ProcessorError(ValueError):
    """A logits processor returned something a token cannot be drawn from."""


def _name(processor) -> str:
    return getattr(processor, "__name__", None) or type(processor).__name__


def _checked(processor, scores, shape) -> torch.Tensor:
    """The scores a processor returned, if they are scores (checked on the host, no read-back)."""
    name = _name(processor)
    if not isinstance(scores, torch.Tensor):
        raise ProcessorError(f"logits processor {name} returned {type(scores).__name__}, not the scores: "
                             "return a tensor of the scores' shape (processors may edit scores in place and return them)")
    if scores.shape != shape:
        raise ProcessorError(f"logits processor {name} returned scores of shape {tuple(scores.shape)}, "
                             f"not {tuple(shape)}: keep one row of vocabulary scores")
    return scores


def draw_seed() -> int:
    return random.SystemRandom().randrange(2**62)


def worker_seed(seed: int, index: int) -> int:
    return (seed + _SEED_MIX * (index + 1)) % (2**63)


@dataclass(slots=True)
class WorkerSampler:
    processors: LogitsProcessorList
    do_sample: bool
    generator: torch.Generator

    @classmethod
    def create(cls, config: GenerationConfig, user: list | None, seed: int, index: int) -> "WorkerSampler":
        generator = torch.Generator().manual_seed(worker_seed(seed, index))
        return cls(build_processors(config, user), bool(config.do_sample), generator)

    def process(self, input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """input_ids [1, L] (prompt + own tokens), logits [1, V] fp32 -> the processed scores, a
        row of its own: rows may be shared (the prompt's last row, a fork's), and processors that
        edit scores in place would hand their edits to the next worker."""
        scores = logits.clone()
        for processor in self.processors:
            scores = _checked(processor, processor(input_ids, scores), logits.shape)
        return scores


def draw(samplers: list[WorkerSampler], scores: torch.Tensor, contexts: list[list[int]] | None = None) -> list[int]:
    """The next token of each worker from its row of `scores` ([n, V] fp32), each through its own
    processors and generator; one host read-back for the whole batch. All samplers come from one
    GenerationConfig (they differ in seed only)."""
    if samplers[0].processors:
        scores = torch.cat([s.process(torch.tensor([ids]), row[None]) for s, ids, row in zip(samplers, contexts, scores)])
        if not bool(torch.isfinite(scores.max(-1).values).all()):  # NaN anywhere, or nothing left above -inf
            names = ", ".join(_name(p) for p in samplers[0].processors)
            raise ProcessorError(f"logits processor {names} left no token to draw (NaN, or every score -inf): "
                                 "leave at least one finite score")
    if not samplers[0].do_sample:
        return scores.argmax(-1).tolist()
    probs = torch.softmax(scores.float(), dim=-1).cpu()  # one transfer; each generator draws on the host
    return [int(torch.multinomial(probs[i : i + 1], 1, generator=s.generator)) for i, s in enumerate(samplers)]
