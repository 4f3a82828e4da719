"""Every strategy preset has a script in examples/presets/, and each runs on the default model
(a few tokens per worker) and prints the run and its answer."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import collab

pytestmark = pytest.mark.slow

PRESETS = Path(__file__).parents[1] / "examples" / "presets"
# what each script's output must show beyond the answer line: every worker's text under its
# name, or the search tree with the chosen root marked
SHOWS = {name: r"^\[Alice\]$" for name in collab.STRATEGIES}
SHOWS |= {
    "self_consistency": r"^votes: \[[^,\]]+, [^,\]]+, [^,\]]+\]$",  # three voters
    "best_of_n": r"^scores: \[\d+\.\d+, \d+\.\d+, \d+\.\d+\]$",
    "tree_of_thoughts": r"^\*\[0\] score=- ",
    "mcts": r"^\*\[0\] score=- ",
}


def test_one_script_per_preset():
    assert sorted(p.stem for p in PRESETS.glob("*.py")) == sorted(collab.STRATEGIES)


@pytest.mark.parametrize("name", sorted(collab.STRATEGIES))
def test_preset_script_runs(name):
    env = {**os.environ, "COLLAB_EXAMPLE_TOKENS": "8", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(PRESETS / f"{name}.py")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^answer: ", out, re.M), out
    assert re.search(SHOWS[name], out, re.M), out


def test_the_critical_path_floor_script_replays_the_solver_traces():
    script = Path(__file__).parents[1] / "examples" / "critical_path_floor.py"
    done = subprocess.run([sys.executable, str(script), "--n", "3"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [tuple(map(int, line.split(" | "))) for line in done.stdout.splitlines() if re.fullmatch(r"\d+( \| \d+){8}", line)]
    assert len(rows) == 3
    # helpers work side by side, a spawn line that names a number is shorter than one that names the task, one tag
    # for all of them shorter again, and each line the root no longer writes (the restated answers, then the plan)
    # shortens the path again
    assert all(index <= task < sequential for parts, sequential, task, index, *_ in rows if parts >= 4)
    assert all(one_tag < index and task_tag < task for _, _, task, index, one_tag, task_tag, *_ in rows)
    assert all(first < task_tag for *_, task_tag, first, _, _ in rows)
    assert all(no_plan < answer_only < index for _, _, _, index, _, _, _, answer_only, no_plan in rows)
    assert re.search(r"^all \(3\), the sequential critical path times: task heads 0\.\d\dx, index heads 0\.\d\dx, "
                     r"index heads, one tag 0\.\d\dx, task heads, one tag 0\.\d\dx, task heads, one tag, spawn first "
                     r"0\.\d\dx, index heads, answer only 0\.\d\dx, index heads, answer only, no plan 0\.\d\dx$",
                     done.stdout, re.M)
