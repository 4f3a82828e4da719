"""Rich notebook display of a `Result`: one column per worker, the spawn tree, the answer and
the stats, as self-contained HTML (inline CSS; no scripts, no network). Plain Python, no torch.

>>> from collab.result import Result, Worker
>>> html = to_html(Result(prompt_ids=[1], workers=[Worker(0, "Alice", text="<b>hi</b>")]))
>>> "&lt;b&gt;hi&lt;/b&gt;" in html
True
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .memory import format_bytes

if TYPE_CHECKING:  # renderers read results; results import no renderer at module level
    from .result import Result, Worker

# One color per worker index, shared with `collab.plots` so a worker looks the same in the
# table and in the timeline. Mid-tone hues read on both white and near-black backgrounds.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MAX_IDS_SHOWN = 200  # a run without a tokenizer shows token ids; cap them so a long run stays light


def color(index: int) -> str:
    return COLORS[index % len(COLORS)]


# Text color is inherited from the notebook theme; every accent is a translucent color or a
# theme variable with a translucent fallback, so the same markup reads in light and dark themes.
_CSS = """
.collab-result { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: inherit; line-height: 1.4; }
.collab-result h4 { margin: 10px 0 4px; font-size: 13px; opacity: .8; }
.collab-result .collab-answer { padding: 6px 10px; border-left: 4px solid #2ca02c;
  background: rgba(44, 160, 44, .12); white-space: pre-wrap; }
.collab-result .collab-columns { display: flex; gap: 8px; overflow-x: auto; padding-bottom: 4px; }
.collab-result .collab-worker { flex: 1 0 16em; max-width: 32em; border: 1px solid rgba(128, 128, 128, .35);
  border-top-width: 4px; border-radius: 4px; }
.collab-result .collab-head { padding: 4px 8px; }
.collab-result .collab-meta { font-size: 11px; opacity: .75; }
.collab-result pre { margin: 0; padding: 6px 8px; max-height: 22em; overflow: auto; white-space: pre-wrap;
  word-break: break-word; font-size: 12px; background: transparent; color: inherit;
  border-top: 1px solid rgba(128, 128, 128, .25); }
.collab-result .collab-task { font-style: italic; }
.collab-result ul { margin: 2px 0; padding-left: 18px; }
.collab-result table { border-collapse: collapse; font-size: inherit; }
.collab-result td { padding: 1px 10px 1px 0; border: none; background: transparent; color: inherit; text-align: left; }
.collab-result .collab-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 4px; }
"""


def to_html(result: Result) -> str:
    """The whole result as one HTML fragment (what `Result._repr_html_` returns)."""
    parts = [
        f"<style>{_CSS}</style>",
        f'<div class="collab-result"><div><b>{escape(_summary(result))}</b></div>',
        _answer(result),
        "<h4>Workers</h4>",
        '<div class="collab-columns">' + "".join(_column(result, w) for w in result.tree_order()) + "</div>",
        "<h4>Spawn tree</h4>",
        _tree(result),
        *(["<h4>Search tree</h4>", result.search._repr_html_()] if result.search is not None else []),
        "<h4>Stats</h4>",
        _stats(result),
        "</div>",
    ]
    return "\n".join(parts)


def _summary(result: Result) -> str:
    strategy = result.strategy or "no strategy"
    state = "complete" if result.complete else "partial (interrupted or failed)"
    return f"collab result: {strategy}, visibility {result.visibility}, {len(result.workers)} workers, {state}"


def _answer(result: Result) -> str:
    if result.answer is None:
        body = '<span class="collab-meta">no final answer (the strategy gives none, or none was found)</span>'
    else:
        body = escape(result.answer)
    extra = []
    if result.answers:
        extra.append("votes: " + ", ".join(escape(repr(a)) for a in result.answers))
    if result.scores:
        extra.append("scores: " + ", ".join(f"{s:.3g}" for s in result.scores))
    note = f'<div class="collab-meta">{"; ".join(extra)}</div>' if extra else ""
    return f'<h4>Answer</h4><div class="collab-answer">{body}{note}</div>'


def _column(result: Result, w: Worker) -> str:
    parent = f", child of {escape(result.workers[w.parent].name)}" if w.parent is not None else ""
    reason = escape(w.finish_reason or "running")
    meta = f"{escape(w.role)}{parent} &middot; {len(w.token_ids)} tokens &middot; {reason}"
    task = f'<div class="collab-meta collab-task">task: {escape(w.head.strip())}</div>' if w.head else ""
    return (
        f'<div class="collab-worker" style="border-top-color: {color(w.index)}">'
        f'<div class="collab-head"><b>{escape(w.name)}</b><div class="collab-meta">{meta}</div>{task}</div>'
        f"<pre>{_text(w)}</pre></div>"
    )


def _text(w: Worker) -> str:
    if w.text is not None:
        return escape(w.text.strip()) or '<span class="collab-meta">(no text)</span>'
    # without a tokenizer there is no text: the sampled ids are what the worker wrote
    ids = " ".join(map(str, w.token_ids[:MAX_IDS_SHOWN]))
    more = f" &hellip; (+{len(w.token_ids) - MAX_IDS_SHOWN})" if len(w.token_ids) > MAX_IDS_SHOWN else ""
    return f'<span class="collab-meta">token ids (no tokenizer):</span> {ids}{more}'


def _tree(result: Result) -> str:
    def item(w: Worker) -> str:
        joined = f", joined at {', '.join(map(str, w.join_steps))}" if w.join_steps else ""
        retired = f"retired at {w.retire_step}" if w.retire_step is not None else "not retired"
        label = (
            f'<span class="collab-dot" style="background: {color(w.index)}"></span><b>{escape(w.name)}</b> '
            f'<span class="collab-meta">[{escape(w.role)}] spawned at step {w.spawn_step}{joined}, {retired} '
            f"({escape(w.finish_reason or 'running')})</span>"
        )
        kids = "".join(item(result.workers[c]) for c in w.children)
        return f"<li>{label}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>"

    return "<ul>" + "".join(item(w) for w in result.workers if w.parent is None) + "</ul>"


def _stats(result: Result) -> str:
    s = result.stats
    rows = [
        ("generated tokens", f"{s.generated_tokens:,}"),
        ("tokens fed", f"{s.tokens_fed:,}"),
        ("forward passes", f"{s.forward_passes:,}"),
        ("tokens / s", f"{s.tokens_per_s:.1f}"),
        ("KV tokens", f"{s.kv_tokens:,}"),
        ("KV bytes", f"{format_bytes(s.kv_bytes)} (reserved {format_bytes(s.kv_reserved_bytes)})"),
        ("wall time", f"{s.wall_time_s:.2f} s (prefill {s.prefill_time_s:.2f} s)"),
        ("attention", escape(s.attention)),
    ]
    return "<table>" + "".join(f"<tr><td>{k}</td><td><b>{v}</b></td></tr>" for k, v in rows) + "</table>"
