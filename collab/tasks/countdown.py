"""Countdown, APR's task: reach a target from 3 or 4 numbers with + - * /, each number once, every
intermediate result a non-negative integer (as APR's generator combines: the larger number
first, division only when exact). Pure Python, no torch.

The solver is a depth-first search that writes one short line per step and stops after a budget
of lines (traces stay a few hundred characters): `74-15=59 [66, 50, 59]` takes an operation and
lists the numbers left, one space of indent per level; with two numbers left one line tries the
operations in turn and ends `Goal Reached` or `no`; a lower indent is a backtrack. Moves are tried
best first by APR's sum heuristic (the numbers' distance to the target); results above 200 are
not tried. A search that succeeds ends with
`Goal Reached: 74-15=59, 66-59=7, 50-7=43` (the second "Goal Reached" is what APR's engine looks
for to quote the path), one that fails with `No Solution`.

The parallel trace writes the root's state and its most promising first moves as APR's node lines
(`Generated Node #0,1: 43:[66, 50, 59] Operation: 74-15=59`), forks one helper per move
(`Node #0,1: reach 43 from [66, 50, 59]`), each searching from its node with a smaller budget,
and states the first helper's solution. Problems that either search misses within its budget are
drawn again (the set leans to problems the heuristic finds).

    >>> lines, ops, expr = search(24, (2, 3, 5, 7), budget=24)
    >>> lines[:3]
    ['7*3=21 [2, 5, 21]', ' 5*2=10 [21, 10]', '  21+10=31, 21-10=11 no']
    >>> ops, expr, valid(expr, (2, 3, 5, 7), 24)
    (['7*3=21', '5-2=3', '21+3=24'], '(7*3)+(5-2)', True)
"""

from __future__ import annotations

import ast
import itertools
import random
from dataclasses import dataclass
from fractions import Fraction

from .problem import Problem, split_of
from .trace import Fork, Text, Trace

SEQUENTIAL_BUDGET = {3: 12, 4: 24}  # lines a sequential search may write
CHILD_BUDGET = {3: 4, 4: 8}  # lines each helper's search may write
BRANCHES = 4  # helpers at most: the most promising first moves
LARGEST = 200  # a search never writes a result above this (targets are at most 100)
TARGETS = (10, 100)  # APR's CountDown(max_target=100)
QUESTIONS = (
    "Use the numbers {nums} to make {target} with +, -, * and /, each number exactly once.",
    "Reach {target} from {nums} using + - * / (use every number once).",
    "Countdown: combine {nums} with +, -, * and / to get {target}. Each number is used once.",
    "Make {target} out of {nums}; you may add, subtract, multiply and divide, using each number one time.",
)


@dataclass(frozen=True, slots=True)
class Move:
    op: str  # "74-66=8"
    nums: tuple[int, ...]  # the numbers left: the others in order, then the result
    exprs: tuple[str, ...]  # the expression each number stands for


def moves(nums: tuple[int, ...], exprs: tuple[str, ...]) -> list[Move]:
    """Every operation on a pair, in APR's order of pairs; the larger number first."""
    out = []
    for i, j in itertools.combinations(range(len(nums)), 2):
        (a, ea), (b, eb) = sorted(((nums[i], exprs[i]), (nums[j], exprs[j])), key=lambda x: -x[0])
        rest = [k for k in range(len(nums)) if k not in (i, j)]
        results = [(a + b, "+"), (a - b, "-"), (a * b, "*")] + ([(a // b, "/")] if b and a % b == 0 else [])
        for r, sign in results:
            expr = f"{_wrap(ea)}{sign}{_wrap(eb)}"
            out.append(Move(f"{a}{sign}{b}={r}", tuple(nums[k] for k in rest) + (r,), tuple(exprs[k] for k in rest) + (expr,)))
    return out


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


def heuristic(nums: tuple[int, ...], target: int) -> int:
    """How far the numbers are from the target, summed (lower first): APR's sum heuristic."""
    return sum(abs(x - target) for x in nums)


def options(nums: tuple[int, ...], exprs: tuple[str, ...], target: int) -> list[Move]:
    """The moves a search writes, best first; results above `LARGEST` are never tried."""
    return sorted((m for m in moves(nums, exprs) if m.nums[-1] <= LARGEST), key=lambda m: heuristic(m.nums, target))


def search(target: int, nums: tuple[int, ...], budget: int, exprs: tuple[str, ...] | None = None):
    """Depth-first search from `nums`, at most `budget` lines. Returns (lines, the operations
    found or None, the solution's expression or None)."""
    lines: list[str] = []

    def dfs(nums, exprs, path, depth):
        if len(nums) == 2:
            tried = []
            for m in options(nums, exprs, target):
                tried.append(m.op)
                if m.nums[0] == target:
                    lines.append(" " * depth + ", ".join(tried) + " Goal Reached")
                    return path + [m.op], m.exprs[0]
            lines.append(" " * depth + ", ".join(tried) + " no")
            return None
        for m in options(nums, exprs, target):
            if len(lines) >= budget:
                return None
            lines.append(" " * depth + f"{m.op} [{', '.join(map(str, m.nums))}]")
            found = dfs(m.nums, m.exprs, path + [m.op], depth + 1)
            if found:
                return found
        return None

    found = dfs(tuple(nums), tuple(exprs or map(str, nums)), [], 0)
    return (lines, *found) if found else (lines, None, None)


def valid(expr: str, numbers, target: int) -> bool:
    """Whether `expr` uses + - * / on exactly `numbers` (each once) and equals `target`."""
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return False
    used: list[int] = []

    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            used.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            return _OPS[type(node.op)](left, right)
        raise ValueError(f"not a Countdown expression: {ast.dump(node)}")

    try:
        result = value(tree)
    except (ValueError, ZeroDivisionError):
        return False
    return result == target and sorted(used) == sorted(numbers)


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def sample(rng: random.Random, size: int) -> tuple[int, tuple[int, ...]]:
    """A solvable problem, as APR's generator makes them: random numbers combined at random."""
    while True:
        nums = tuple(rng.randint(1, 99) for _ in range(size))
        left = nums
        while len(left) > 1:
            i, j = sorted(rng.sample(range(len(left)), 2))
            m = rng.choice(moves((left[i], left[j]), ("a", "b")))
            left = tuple(x for k, x in enumerate(left) if k not in (i, j)) + m.nums
        if TARGETS[0] <= left[0] <= TARGETS[1]:
            return left[0], nums


def generate(rng: random.Random, split: str, size: int = 4) -> Problem | None:
    """One Countdown problem of `split`, or None (the other split, or a search missed)."""
    target, nums = sample(rng, size)
    key = f"countdown:{target}:{sorted(nums)}"
    question = rng.choice(QUESTIONS).format(nums=", ".join(map(str, nums)), target=target)
    if split_of(key) != split:
        return None
    state = f"Moving to Node #0\nCurrent State: {target}:[{', '.join(map(str, nums))}], Operations: []"
    lines, ops, expr = search(target, nums, SEQUENTIAL_BUDGET[size])
    parallel = _parallel(target, nums, state)
    if ops is None or parallel is None:
        return None
    sequential = Trace.of("\n".join([state, *lines, f"Goal Reached: {', '.join(ops)}", f"\\boxed{{{expr}}}"]))
    return Problem(f"countdown{size}", key, question, expr, sequential, parallel, {"numbers": nums, "target": target})


def _parallel(target: int, nums: tuple[int, ...], state: str) -> Trace | None:
    first = options(nums, tuple(map(str, nums)), target)[:BRANCHES]
    nodes = [f"Generated Node #0,{k}: {target}:[{', '.join(map(str, m.nums))}] Operation: {m.op}" for k, m in enumerate(first)]
    tasks = tuple(f"Node #0,{k}: reach {target} from [{', '.join(map(str, m.nums))}]" for k, m in enumerate(first))
    children, solved = [], None
    for k, m in enumerate(first):
        lines, ops, expr = search(target, m.nums, CHILD_BUDGET[len(nums)], m.exprs)
        end = f"Goal Reached: {', '.join([m.op, *ops])}" if ops else "No Solution"
        children.append(Trace.of("\n".join([*lines, end])))
        if ops and solved is None:
            solved = (k, [m.op, *ops], expr)
    if solved is None:
        return None
    k, ops, expr = solved
    conclusion = f"Goal Reached at Node #0,{k}: {', '.join(ops)}"
    return Trace((Text("\n".join([state, *nodes])), Fork(tasks, tuple(children), conclusion), Text(f"\\boxed{{{expr}}}")))
