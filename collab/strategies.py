"""Strategy presets: thin configurations of the same runtime. Pure Python, no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    visibility: str = "full"
    protocol: str | None = None  # marker protocol read by the controller
    system: str | None = "collaborate.md"  # system prompt file for template="default"
    headers: bool = True  # each root worker's block starts with its name
    single_root: bool = False  # one root that spawns; `workers` then sizes fixed paths only
    finisher: bool = False  # a final-answer pass over the whole cache
    aggregate: str | None = None  # "vote" (majority of extracted answers) or "best" (a scorer picks)
    sample: bool = False  # sample by default (independent workers need it to differ)
    search: str | None = None  # a search over forked steps (collab.search)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("hogwild", finisher=True),
        Strategy("self_consistency", visibility="none", system=None, headers=False, aggregate="vote", sample=True),
        Strategy("best_of_n", visibility="none", system=None, headers=False, aggregate="best", sample=True),
        Strategy("skeleton", protocol="skeleton", system="skeleton.md", headers=False, single_root=True),
        Strategy("adaptive", protocol="markers", system="markers.md", headers=False, single_root=True, finisher=True),
        Strategy("multiverse", protocol="multiverse", system="multiverse.md", headers=False, single_root=True),
        Strategy("threadweaver", protocol="threadweaver", system="threadweaver.md", headers=False, single_root=True),
        Strategy("apr", protocol="apr", system="apr.md", headers=False, single_root=True),
        Strategy("parathinker", protocol="parathinker", system="parathinker.md", headers=False, single_root=True),
        Strategy("parallel_r1", protocol="parallel_r1", system="parallel_r1.md", headers=False, single_root=True),
        Strategy("asyncthink", protocol="asyncthink", system="asyncthink.md", headers=False, single_root=True),
        Strategy("npr", protocol="npr", system="npr.md", headers=False, single_root=True),
        Strategy("tree_of_thoughts", visibility="none", system="search.md", headers=False, single_root=True, sample=True,
                 search="tree_of_thoughts"),
        Strategy("mcts", visibility="none", system="search.md", headers=False, single_root=True, sample=True, search="mcts"),
    )
}

PLAIN = Strategy("plain")  # no preset: `workers` roots with the collaboration prompt


def resolve_strategy(name: str | None) -> Strategy:
    if name is None:
        return PLAIN
    if not isinstance(name, str) or name not in STRATEGIES:
        valid = ", ".join(repr(k) for k in STRATEGIES)
        raise ValueError(f"unknown strategy {name!r}; valid strategies are {valid}")
    return STRATEGIES[name]
