"""A grid over many processes: `torchrun` or `accelerate launch` starts one process per device,
each loads its own model and takes a disjoint share of the (arm, task, seed) runs; each writes its
rows to its own file, and rank 0 merges every file into the summary. Pure Python, no torch and no
torch.distributed: the launcher's environment (RANK, WORLD_SIZE) is all a process reads.

    >>> Shard(1, 3).take(list("abcdefg"))
    ['b', 'e']
    >>> Shard().rows_file, Shard(1, 2).rows_file
    ('runs.jsonl', 'runs.rank1.jsonl')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ROWS_GLOB = "runs*.jsonl"  # every rows file in an output folder: one process's, or one per rank


def key(row: dict) -> tuple:
    """A run's identity: the same (task, arm, seed) is the same run, whichever process wrote it."""
    return (row["task"], row["arm"], row["seed"])


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's place among `world` processes (rank 0 merges)."""

    rank: int = 0
    world: int = 1

    def __post_init__(self):
        for name in ("rank", "world"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}={value!r}: give an int")
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} of world size {self.world}: need 0 <= rank < world size")

    @classmethod
    def from_env(cls, env=None) -> Shard:
        """RANK and WORLD_SIZE (set by torchrun and `accelerate launch`, across nodes too), else
        LOCAL_RANK and LOCAL_WORLD_SIZE; neither: one process."""
        env = os.environ if env is None else env
        for rank, world in (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE")):
            if rank in env or world in env:
                values = [env.get(rank), env.get(world)]
                if not all(v is not None and v.strip().isdigit() for v in values):
                    raise ValueError(f"{rank}={values[0]!r} and {world}={values[1]!r} in the environment: both must be "
                                     "ints; launch with torchrun or accelerate launch (they set both), or unset them")
                return cls(int(values[0]), int(values[1]))
        return cls()

    @property
    def rows_file(self) -> str:
        return "runs.jsonl" if self.world == 1 else f"runs.rank{self.rank}.jsonl"

    def take(self, cells: list) -> list:
        """This rank's share: every world-th cell from its rank on. The split is of the whole grid,
        not of what is left, so every rank agrees on it whenever it reads the rows files."""
        return cells[self.rank::self.world]

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world}"


def read_rows(path: Path) -> list[dict]:
    """The rows of one file. A last line cut short (its process was killed while writing it) is
    not a row: that run runs again."""
    text = path.read_text()
    lines = text.splitlines()
    torn = bool(lines) and not text.endswith("\n")
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if torn and n == len(lines):
                break
            raise ValueError(f"{path} line {n} is not a JSON row: move the file out of the output folder, "
                             "or delete that line (its run then runs again)") from None
    return rows


def merged_rows(out: Path) -> list[dict]:
    """Every row in every rows file of `out`; a run written twice counts once."""
    merged: dict[tuple, dict] = {}
    for path in sorted(Path(out).glob(ROWS_GLOB)):
        for row in read_rows(path):
            merged.setdefault(key(row), row)
    return list(merged.values())


def drop_torn_tail(path: Path) -> None:
    """Cut a last line left half-written by a killed process, so appended rows start on a line."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return
        tail = data[data.rfind(b"\n") + 1:]
        try:
            json.loads(tail)
            f.write(b"\n")  # a whole row that lacks only its newline stays
        except ValueError:
            f.truncate(len(data) - len(tail))
