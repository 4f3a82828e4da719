"""`Result.plot`: who wrote what when. Needs matplotlib (`pip install collab[plots]`), imported
only when a plot is drawn.

One figure, two panels sharing the worker lanes: on the left the timeline (x = decode step; a
dot per token a worker sampled, a tick per token fed into the cache, spawn and join arrows,
reasoning-step ends, retire points), on the right the tokens each worker sampled and fed.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING

from .display import color

if TYPE_CHECKING:  # renderers read results; results import no renderer at module level
    from .result import Result, Worker

SAMPLED_Y, FED_Y = -0.14, 0.16  # offsets from a lane's center (lanes run top to bottom)


def plot(result: Result, path=None):
    """Draw the run's timeline and tokens per worker; save a PNG to `path` when given.

    Returns a matplotlib Figure: `fig.axes[0]` is the timeline, `fig.axes[1]` tokens per
    worker; the lanes follow the spawn tree (each child under its parent). The figure is not
    registered with pyplot: Jupyter shows it when it ends a cell, elsewhere save it (`path`, or
    `fig.savefig`); `plt.show()` does not see it.

    >>> fig = result.plot("run.png")  # doctest: +SKIP
    """
    workers = result.tree_order()
    lane = {w.index: i for i, w in enumerate(workers)}
    fig = _figure_class()(figsize=(11, 2.2 + 0.45 * len(workers)), layout="constrained")
    timeline, tokens = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [5, 1]})
    _timeline(timeline, result, workers, lane)
    _tokens(tokens, workers, lane)
    timeline.set_yticks(range(len(workers)), [w.name for w in workers])
    timeline.set_ylim(len(workers) - 0.5, -0.5)  # first lane at the top
    fig.legend(handles=_legend(), loc="outside lower center", ncol=6, fontsize=8, frameon=False)
    title = f"collab run: {result.strategy or 'no strategy'}, visibility {result.visibility}"
    fig.suptitle(title + ("" if result.complete else " (partial)"), fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


@functools.cache
def _figure_class():
    """A Figure built without pyplot (no backend chosen, no global figure list), which shows
    itself in Jupyter as a PNG whatever the backend."""
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise ModuleNotFoundError("Result.plot needs matplotlib: pip install collab[plots]") from None

    class RunFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100)
            return buffer.getvalue()

    return RunFigure


def _timeline(ax, result: Result, workers: list[Worker], lane: dict[int, int]) -> None:
    for w in workers:
        y, c = lane[w.index], color(w.index)
        start = min(w.feed_steps[:1] + w.sample_steps[:1], default=w.spawn_step)
        end = w.retire_step if w.retire_step is not None else result.stats.steps
        ax.plot([start, end], [y, y], color=c, alpha=0.25, linewidth=6, solid_capstyle="butt")  # alive
        ax.scatter(w.sample_steps, [y + SAMPLED_Y] * len(w.sample_steps), s=9, color=c, linewidths=0)
        ax.scatter(w.feed_steps, [y + FED_Y] * len(w.feed_steps), s=16, color=c, marker="|", linewidths=0.8)
        if w.retire_step is not None:
            ax.scatter([w.retire_step], [y], s=60, marker="X", color=c, edgecolors="black", linewidths=0.6, zorder=3)
            ax.annotate(_short(w.finish_reason), (w.retire_step, y), xytext=(6, -2), textcoords="offset points",
                        fontsize=7, va="center", alpha=0.8)
    _events(ax, result, lane)
    last = max([result.stats.steps] + [s for w in workers for s in w.feed_steps[-1:] + w.sample_steps[-1:]])
    ax.set_xlim(-0.5, last * 1.1 + 3)  # room for the retire labels
    ax.set_xlabel("decode step")
    ax.grid(axis="x", alpha=0.25)


def _events(ax, result: Result, lane: dict[int, int]) -> None:
    """Spawn arrows parent -> child, join arrows child -> parent, reasoning-step ends."""
    workers = result.workers
    for e in result.events:
        if e.kind == "spawn":
            for child in e.info.get("children", ()):
                w = workers[child]
                to = w.feed_steps[0] if w.feed_steps else e.step
                _arrow(ax, (e.step, lane[e.worker]), (to, lane[child]), color(e.worker))
        elif e.kind == "join":
            for child in e.info.get("children", ()):
                w = workers[child]
                since = w.retire_step if w.retire_step is not None else e.step
                _arrow(ax, (since, lane[child]), (e.step, lane[e.worker]), color(child), dashed=True)
        elif e.kind == "step_end" and e.worker is not None:
            y = lane[e.worker]
            ax.plot([e.step, e.step], [y - 0.38, y + 0.38], color="gray", linewidth=1, linestyle=":")


def _arrow(ax, start, end, c, dashed=False) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(
        arrowstyle="-|>", color=c, linewidth=1.2, linestyle="--" if dashed else "-",
        connectionstyle="arc3,rad=0.15", shrinkA=2, shrinkB=4))


def _legend():
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], marker="o", linestyle="", color="gray", markersize=4, label="token sampled"),
        Line2D([], [], marker="|", linestyle="", color="gray", markersize=7, label="token fed"),
        Line2D([], [], color="gray", label="spawn (parent → child)"),
        Line2D([], [], color="gray", linestyle="--", label="join (child → parent)"),
        Line2D([], [], color="gray", linestyle=":", label="reasoning step end"),
        Line2D([], [], marker="X", linestyle="", color="gray", markeredgecolor="black", label="retired"),
    ]


def _tokens(ax, workers: list[Worker], lane: dict[int, int]) -> None:
    ys = [lane[w.index] for w in workers]
    fed = [len(w.feed_steps) for w in workers]
    sampled = [len(w.token_ids) for w in workers]
    ax.barh(ys, fed, height=0.7, color="none", edgecolor=[color(w.index) for w in workers], linewidth=1)
    ax.barh(ys, sampled, height=0.45, color=[color(w.index) for w in workers])
    for y, n, m in zip(ys, sampled, fed):
        ax.annotate(str(n), (max(n, m), y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("tokens (solid: sampled,\noutline: fed)")
    ax.set_xlim(0, max(fed + sampled + [1]) * 1.25)
    ax.tick_params(axis="y", left=False)


def _short(reason: str | None, width: int = 18) -> str:
    reason = reason or "running"
    return reason if len(reason) <= width else reason[: width - 1] + "…"
