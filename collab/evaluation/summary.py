"""Rows to a summary: per arm, accuracy with a 95% Wilson interval, means with 95% normal
intervals over problems and seeds, spawning, duplicated work; and each arm against a baseline arm
on the runs both made (paired differences). Pure Python, no torch.

    >>> overlap([{"parent": 0, "text": "a\\nb"}, {"parent": 0, "text": "b\\nc"}, {"parent": None, "text": "x"}])
    0.25
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from pathlib import Path

Z = 1.96  # 95%
MARKER = re.compile(r"<[^<>]*>")  # a line that is only a marker
ARM = ("arm", "model", "strategy", "visibility", "workers", "budget", "samples", "siblings", "repetition_penalty",
       "stop_repeats")


def overlap(workers: list[dict]) -> float | None:
    """Duplicated work among workers that ran side by side (the roots, or the helpers of one
    parent): of the distinct lines each wrote (whitespace-normalized; lines that are only a
    marker such as `<done>` left out), the share that repeats a line a sibling also wrote. None
    when no two workers share a parent."""
    groups: dict = {}
    for w in workers:
        if w.get("role", "worker") == "worker":
            lines = {" ".join(line.split()) for line in w["text"].splitlines()}
            groups.setdefault(w["parent"], []).append({x for x in lines if x and not MARKER.fullmatch(x)})
    total = repeated = 0
    for lines in (g for g in groups.values() if len(g) > 1):
        counts = Counter(line for own in lines for line in own)
        total += sum(counts.values())
        repeated += sum(c - 1 for c in counts.values())
    return repeated / total if total else None


def _share(flags: list) -> float | None:
    """The share of True among the flags that are not None (None: none is)."""
    known = [f for f in flags if f is not None]
    return sum(map(bool, known)) / len(known) if known else None


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p, d = k / n, 1 + Z * Z / n
    centre, half = (p + Z * Z / (2 * n)) / d, Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / d
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def mean_ci(values: list[float]) -> tuple[float | None, float | None]:
    """(mean, half-width of its 95% interval)."""
    if not values:
        return (None, None)
    m = sum(values) / len(values)
    if len(values) < 2:
        return (m, None)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return (m, Z * sd / math.sqrt(len(values)))


def summarize(rows: list[dict]) -> list[dict]:
    """One line per arm and task kind (a generator's name, or "qa"), in the order first seen."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["arm"], r.get("kind", "qa")), []).append(r)
    table = []
    for (name, kind), rs in groups.items():
        n, solved = len(rs), sum(bool(r["correct"]) for r in rs)
        lo, hi = wilson(solved, n)
        steps, steps_ci = mean_ci([r["critical_steps"] for r in rs])
        dup, dup_ci = mean_ci([r["overlap"] for r in rs if r.get("overlap") is not None])
        unneeded = [r for r in rs if r.get("parallel") is False]
        tokens = sum(r["tokens"] for r in rs)
        table.append({
            **{k: rs[0].get(k) for k in ARM}, "kind": kind, "runs": n, "errors": sum("error" in r for r in rs),
            "accuracy": solved / n, "accuracy_lo": lo, "accuracy_hi": hi,
            "mean_tokens": tokens / n, "critical_steps": steps, "critical_steps_ci": steps_ci,
            "mean_forward_passes": sum(r["forward_passes"] for r in rs) / n,
            "mean_wall_time_s": sum(r["wall_time_s"] for r in rs) / n,
            "spawned_per_problem": sum(r.get("spawned", 0) for r in rs) / n,
            "spawn_rate": sum(r.get("spawned", 0) > 0 for r in rs) / n,
            "helpers_done": _share([r.get("helpers_done") for r in rs]),
            "stopped_repeating": sum(r.get("stopped_repeating") or 0 for r in rs) / n,  # workers per problem
            "fed_once": all(r.get("fed_once") is not False for r in rs),
            "spawn_rate_unneeded": sum(r.get("spawned", 0) > 0 for r in unneeded) / len(unneeded) if unneeded else None,
            "overlap": dup, "overlap_ci": dup_ci,
            "tokens_per_solved": tokens / solved if solved else None,
        })
    return table


PAIRED = ("correct", "overlap", "critical_steps", "tokens")  # the metrics `paired` compares


def paired(rows: list[dict], baseline: str, metrics=PAIRED) -> list[dict]:
    """Each arm against `baseline` on the runs both made (the same task and seed): per metric, the
    mean of (arm - baseline) over those pairs with its 95% interval, and the pairs it counts. Two
    arms run on the same problems differ where the paired interval excludes 0, which can hold while
    the arms' own intervals (spread over problems of unequal difficulty) overlap.

    >>> rows = [{"arm": a, "task": t, "seed": 0, "overlap": v} for a, t, v in
    ...         [("b", 1, 0.1), ("b", 2, 0.5), ("a", 1, 0.2), ("a", 2, 0.6), ("a", 3, 0.9)]]
    >>> [(d["arm"], d["overlap_pairs"], round(d["overlap"], 2), round(d["overlap_ci"], 2)) for d in paired(rows, "b", ["overlap"])]
    [('a', 2, 0.1, 0.0)]
    """
    base = {(r["task"], r["seed"]): r for r in rows if r["arm"] == baseline}
    if not base:
        raise ValueError(f"no rows of the baseline arm {baseline!r}; the arms here: {sorted({r['arm'] for r in rows})}")
    table = []
    for arm in dict.fromkeys(r["arm"] for r in rows if r["arm"] != baseline):
        pairs = [(r, base[r["task"], r["seed"]]) for r in rows if r["arm"] == arm and (r["task"], r["seed"]) in base]
        if not pairs:
            continue
        line = {"arm": arm, "baseline": baseline}
        for m in metrics:
            diffs = [float(a[m]) - float(b[m]) for a, b in pairs if a.get(m) is not None and b.get(m) is not None]
            line[m], line[f"{m}_ci"] = mean_ci(diffs)
            line[f"{m}_pairs"] = len(diffs)
        table.append(line)
    return table


def format_paired(table: list[dict], metrics=PAIRED) -> str:
    """The paired differences as text; a * marks an interval that excludes 0."""
    width = max([len(r["arm"]) for r in table] + [3])
    lines = [f"against {table[0]['baseline']!r} (arm - baseline, 95% interval over the runs both made; * excludes 0):"
             if table else "no arm shares runs with the baseline",
             f"{'arm':<{width}} " + " ".join(f"{m:>24}" for m in metrics)]
    for r in table:
        cells = []
        for m in metrics:
            d, ci, n = r[m], r[f"{m}_ci"], r[f"{m}_pairs"]
            star = "*" if d is not None and ci is not None and abs(d) > ci else " "
            cells.append(f"{'-' if d is None else f'{d:+.3f}'}{'' if ci is None else f'±{ci:.3f}'}{star} n={n}")
        lines.append(f"{r['arm']:<{width}} " + " ".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)


def write_summary(table: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else list(ARM))
        writer.writeheader()
        writer.writerows(table)


def _pm(value, ci, fmt="{:.0f}") -> str:
    if value is None:
        return "-"
    return fmt.format(value) + (f"±{fmt.format(ci)}" if ci is not None else "")


def format_table(table: list[dict]) -> str:
    width = max([len(r["arm"]) for r in table] + [3])
    kinds = max([len(r["kind"]) for r in table] + [4])
    lines = [f"{'arm':<{width}} {'kind':<{kinds}} {'runs':>4} {'acc [95% CI]':>17} {'tokens':>7} {'steps':>9} {'fwd':>6} {'wall s':>7} "
             f"{'spawned':>7} {'done':>5} {'unneeded':>8} {'overlap':>11} {'loops':>5}"]
    for r in table:
        acc = f"{r['accuracy']:.2f} [{r['accuracy_lo']:.2f},{r['accuracy_hi']:.2f}]"
        unneeded = "-" if r["spawn_rate_unneeded"] is None else f"{r['spawn_rate_unneeded']:.2f}"
        done = "-" if r["helpers_done"] is None else f"{r['helpers_done']:.2f}"
        lines.append(f"{r['arm']:<{width}} {r['kind']:<{kinds}} {r['runs']:>4} {acc:>17} {r['mean_tokens']:>7.1f} "
                     f"{_pm(r['critical_steps'], r['critical_steps_ci']):>9} {r['mean_forward_passes']:>6.1f} "
                     f"{r['mean_wall_time_s']:>7.2f} {r['spawned_per_problem']:>7.2f} {done:>5} {unneeded:>8} "
                     f"{_pm(r['overlap'], r['overlap_ci'], '{:.2f}'):>11} {r.get('stopped_repeating') or 0:>5.1f}")
    return "\n".join(lines)
