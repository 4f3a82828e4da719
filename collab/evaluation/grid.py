"""The grid: each configuration an `Arm` (which model, strategy, visibility, workers, per-worker
token budget, samples voted, helpers' sibling visibility, decoding, repetition penalty), checked
before any compute. Pure Python, no torch.

    >>> [a.name for a in grid(models=["seq", "par"], budgets=[64])]
    ['seq hogwild full W2 b64', 'par hogwild full W2 b64']
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from .. import options
from ..protocols import Markers
from ..strategies import resolve_strategy
from ..views import resolve_visibility

SIBLINGS = ("trained", "on", "off")  # helpers see each other: as the model's adapter was trained, or forced


@dataclass(frozen=True, slots=True)
class Arm:
    model: str = "model"  # a key of the models the harness was given
    strategy: str | None = "hogwild"
    visibility: str = "full"
    workers: int = 2
    budget: int = 64  # new tokens per worker: the per-thread limit
    samples: int = 1  # > 1: independent sampled runs, majority vote (self-consistency of this arm)
    siblings: str = "trained"  # spawned helpers see each other's live work: "on", "off", or as trained
    sample: bool = False  # sample (temperature 0.7) instead of greedy
    finisher: bool | None = None  # None: as the strategy preset says
    repetition_penalty: float | None = None  # None: none (transformers' penalty on tokens already in the view)
    stop_repeats: int | None = None  # None: off; N: a worker whose newest tokens are a span written N times ends

    @property
    def name(self) -> str:
        parts = [self.model, str(self.strategy), str(self.visibility), f"W{self.workers}", f"b{self.budget}"]
        parts += [f"x{self.samples}"] if self.samples > 1 else []
        parts += [f"siblings-{self.siblings}"] if self.siblings != "trained" else []
        parts += ["sampled"] if self.sample and self.samples == 1 else []
        parts += [f"finisher-{'on' if self.finisher else 'off'}"] if self.finisher is not None else []
        parts += [f"rp{self.repetition_penalty}"] if self.repetition_penalty is not None else []
        parts += [f"sr{self.stop_repeats}"] if self.stop_repeats is not None else []
        return " ".join(parts)

    def fields(self) -> dict:
        return {"arm": self.name, **asdict(self)}

    def check(self, models=None) -> None:
        """Refuse a configuration that cannot run, naming the reason (before any compute)."""
        for name in ("workers", "budget", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"arm {self.name!r}: {name}={value!r}; give an int >= 1")
        try:  # collab.generate's own rules for the options
            options.check("repetition_penalty", self.repetition_penalty)
            options.check("stop_repeats", self.stop_repeats)
        except (TypeError, ValueError) as e:
            raise ValueError(f"arm {self.name!r}: {e}") from None
        if models is not None and self.model not in models:
            raise ValueError(f"arm {self.name!r}: no model named {self.model!r}; models given: {', '.join(map(repr, models))}")
        preset = resolve_strategy(self.strategy)
        policy = resolve_visibility(self.visibility, None if preset.single_root else self.workers)
        if self.siblings not in SIBLINGS:
            raise ValueError(f"arm {self.name!r}: siblings={self.siblings!r}; choose one of {', '.join(map(repr, SIBLINGS))}")
        if self.siblings != "trained" and preset.protocol != "markers":
            raise ValueError(f"arm {self.name!r}: siblings={self.siblings!r} sets the markers protocol's helpers; "
                             f"strategy {self.strategy!r} does not speak it (use strategy='adaptive')")
        if preset.protocol and policy.history:
            raise ValueError(f"arm {self.name!r}: visibility {self.visibility!r} keeps a shared history of steps, which "
                             f"protocol {preset.protocol!r} cannot fork from; use 'full', 'none' or 'lag:K'")
        if self.samples > 1 and preset.aggregate:
            raise ValueError(f"arm {self.name!r}: strategy {self.strategy!r} already aggregates its workers; samples=1")

    def protocol(self):
        """The protocol this arm passes to `collab.generate` (None: the strategy's, as trained)."""
        return None if self.siblings == "trained" else Markers(siblings=self.siblings == "on")


def grid(models=("model",), strategies=("hogwild",), visibility=("full",), workers=(2,), budgets=(64,), samples=(1,),
         siblings=("trained",), sample=False, finisher=None, repetition_penalty=(None,), stop_repeats=(None,)) -> list[Arm]:
    """Every combination, in the order given (models vary slowest)."""
    axes = (models, strategies, visibility, workers, budgets, samples, siblings, repetition_penalty, stop_repeats)
    return [Arm(m, s, v, w, b, k, sib, sample, finisher, rp, sr) for m, s, v, w, b, k, sib, rp, sr in itertools.product(*axes)]
