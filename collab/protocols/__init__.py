"""Marker protocols, selected by name. Pure Python, no torch."""

from .apr import APR
from .asyncthink import AsyncThink
from .base import Action, DoneMark, JoinLayout, Malformed, Protocol, SpawnMark, WaitMark
from .markers import Markers
from .multiverse import Multiverse
from .npr import NPR
from .parallel_r1 import ParallelR1
from .parathinker import ParaThinker
from .skeleton import Skeleton
from .threadweaver import ThreadWeaver

PROTOCOLS: dict[str, type[Protocol]] = {
    p.name: p for p in (Markers, Multiverse, ThreadWeaver, APR, ParaThinker, ParallelR1, AsyncThink, NPR, Skeleton)
}


def resolve_protocol(name) -> Protocol:
    """A protocol from its name, or a configured instance as is (e.g. `ThreadWeaver(join="rl")`)."""
    if isinstance(name, Protocol):
        return name
    if not isinstance(name, str) or name not in PROTOCOLS:
        valid = ", ".join(repr(k) for k in PROTOCOLS)
        raise ValueError(f"unknown protocol {name!r}; valid protocols are {valid}")
    return PROTOCOLS[name]()


__all__ = [
    "APR", "Action", "AsyncThink", "Done", "Join", "Malformed", "Markers", "Multiverse", "NPR", "PROTOCOLS", "ParaThinker",
    "ParallelR1", "Protocol", "Skeleton", "Spawn", "ThreadWeaver", "Wait", "resolve_protocol",
]
