"""Typed events of `collab.stream`: what a live UI renders. Plain data, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .result import Result, Stats


@dataclass(slots=True, frozen=True)
class TokenDelta:
    """A worker sampled a token; `text` is what it adds to the worker's decoded text (empty
    while a multi-byte character is incomplete; that text arrives with a later token)."""

    step: int
    worker: int
    name: str
    token_id: int
    text: str
    kind: str = "token"


@dataclass(slots=True, frozen=True)
class Spawn:
    step: int
    worker: int  # the parent
    children: tuple[int, ...]
    heads: tuple[str, ...]  # each child's task text
    names: tuple[str, ...]
    kind: str = "spawn"


@dataclass(slots=True, frozen=True)
class Join:
    step: int
    worker: int  # the parent, which now sees its children's blocks
    children: tuple[int, ...]
    kind: str = "join"


@dataclass(slots=True, frozen=True)
class Done:
    step: int
    worker: int
    name: str
    reason: str  # "eos", "max_new_tokens", "context", a done marker, "stopped", ...
    kind: str = "done"


@dataclass(slots=True, frozen=True)
class Note:
    """Any other run event (a start, a wait, a step end, a refused spawn): `Result.events` items."""

    step: int
    worker: int | None
    what: str
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "note"


@dataclass(slots=True, frozen=True)
class Answer:
    text: str | None  # the final answer (None when the strategy gives none)
    answers: tuple[str | None, ...] = ()  # per root worker, when voted
    kind: str = "answer"


@dataclass(slots=True, frozen=True)
class Finished:
    """The last event: the stats and the whole result (`complete` is False when stopped)."""

    stats: Stats
    result: Result
    kind: str = "finished"


StreamEvent = TokenDelta | Spawn | Join | Done | Note | Answer | Finished
