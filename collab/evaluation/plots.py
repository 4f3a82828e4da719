"""Plots of a summary (matplotlib's object API: a notebook's backend stays as it was).

- accuracy_vs_budget.png: accuracy (95% interval) against the per-worker token budget, one line
  per arm without its budget (APR's accuracy against context);
- accuracy_vs_latency.png: accuracy against mean wall time per problem, same lines;
- accuracy_vs_forward_passes.png and tokens_per_solved.png: cost views of the same arms.
"""

from __future__ import annotations

from pathlib import Path


def _line(r: dict) -> str:
    """The arm without its budget, and the task kind: one line of a plot."""
    arm = " ".join(p for p in r["arm"].split(" ") if not (p.startswith("b") and p[1:].isdigit()))
    return f"{arm} [{r['kind']}]"


def _lines(table):
    out: dict[str, list[dict]] = {}
    for r in table:
        out.setdefault(_line(r), []).append(r)
    return out


def _accuracy_against(ax, table, x: str, label: str) -> None:
    for name, rs in _lines(table).items():
        rs = sorted(rs, key=lambda r: r[x])
        ys = [r["accuracy"] for r in rs]
        err = [[max(0.0, y - r["accuracy_lo"]) for y, r in zip(ys, rs)], [max(0.0, r["accuracy_hi"] - y) for y, r in zip(ys, rs)]]
        ax.errorbar([r[x] for r in rs], ys, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy (95% interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7)


def plot(table: list[dict], out: Path) -> list[Path]:
    from matplotlib.figure import Figure

    out = Path(out)
    paths = []
    for name, x, label, title in (
        ("accuracy_vs_budget.png", "budget", "tokens per worker (per-thread limit)", "Accuracy against per-thread budget"),
        ("accuracy_vs_latency.png", "mean_wall_time_s", "wall time per problem (s)", "Accuracy against latency"),
        ("accuracy_vs_forward_passes.png", "mean_forward_passes", "forward passes per problem", "Accuracy against forward passes"),
    ):
        fig = Figure(figsize=(6.5, 4))
        ax = fig.subplots()
        _accuracy_against(ax, table, x, label)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        paths.append(out / name)
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    ax.bar(range(len(table)), [r["tokens_per_solved"] or 0 for r in table])
    ax.set_xticks(range(len(table)), [(r["arm"] + " " + r["kind"]).replace(" ", "\n", 2) for r in table], fontsize=6)
    ax.set_ylabel("tokens per solved problem (0: none solved)")
    ax.set_title("Tokens per solved problem")
    fig.tight_layout()
    fig.savefig(out / "tokens_per_solved.png", dpi=120)
    return paths + [out / "tokens_per_solved.png"]
